/**
 * `scan --attach`, `attach` and `fetch-profile`: profiles pushed next to their images, and read
 * back verified (`coordinator/attach/attach.ts`).
 */
import type { Command } from 'commander';
import { formatPlatform, parseManifestOrIndex, parsePlatformSpec, selectPlatform } from '../../extractor/manifest.js';
import { parseReference, type RegistryReference } from '../../extractor/reference.js';
import { RegistryClient, type RegistryOptions } from '../../extractor/sources/registry.js';
import type { Digest } from '../../extractor/types.js';
import { InvalidInputError, UsageError } from '../../infra/errors.js';
import { writeNamedFile } from './files.js';
import { DEFAULT_LIMITS } from '../../infra/limits.js';
import { PACKAGE_VERSION } from '../../infra/versions.js';
import type { AnalyserIdentity } from '../../worker/analysers.js';
import { ANNOTATIONS, type Attached, attachProfile, fetchProfile } from '../attach/attach.js';
import { analysisState } from '../plan/analysis-state.js';
import type { ScanResult } from '../plan/scan.js';

export interface AttachFlags {
  readonly insecure?: boolean;
  readonly dockerConfig?: string;
  readonly strict?: boolean;
}

/** A `docker://` reference (profiles live in registries only); checked before any scan. */
export function registryReferenceOf(text: string, command: string): RegistryReference {
  const ref = parseReference(text);
  if (ref.transport !== 'docker') throw new UsageError(`${command} needs a registry image (docker://host/repo:tag), not ${text}`);
  return ref;
}

const registryOptions = (flags: AttachFlags): RegistryOptions => ({ limits: DEFAULT_LIMITS, insecure: Boolean(flags.insecure), ...(flags.dockerConfig ? { dockerConfigPath: flags.dockerConfig } : {}) });

/** Pushes a scan's profile as an artifact whose subject is the platform manifest it was made for. */
export async function attachScanResult(text: string, result: ScanResult, profileJson: string, kubernetesYaml: string, analyser: AnalyserIdentity, flags: AttachFlags): Promise<Attached> {
  const ref = registryReferenceOf(text, 'attach');
  return attachProfile({
    registry: ref.registry,
    repository: ref.repository,
    subject: result.manifestDigest as Digest,
    profileJson: Buffer.from(profileJson),
    kubernetesYaml: Buffer.from(kubernetesYaml),
    annotations: {
      [ANNOTATIONS.created]: new Date().toISOString(),
      [ANNOTATIONS.state]: analysisState(analyser, { strict: Boolean(flags.strict) }),
      [ANNOTATIONS.syscalls]: String(result.syscalls.size),
      [ANNOTATIONS.fallback]: String(result.unsure),
      [ANNOTATIONS.version]: PACKAGE_VERSION,
    },
    options: registryOptions(flags),
  });
}

export const attachedText = (text: string, result: ScanResult, attached: Attached): string =>
  `attached ${attached.artifact} to ${text} (subject ${result.manifestDigest}, ${attached.via === 'referrers-api' ? 'indexed by the registry\'s referrers API' : `listed in the referrers tag ${attached.tag}`})\n`;

/** The platform manifest `ref` names for `platform` (through its index when it has one). */
async function subjectOf(ref: RegistryReference, platformText: string, options: RegistryOptions): Promise<Digest> {
  const client = new RegistryClient(ref, options);
  const reference = ref.digest ?? ref.tag!;
  const top = await client.getManifest(reference, `manifest ${ref.repository}:${reference}`, ref.digest);
  const parsed = parseManifestOrIndex(top.bytes, options.limits, top.contentType);
  return parsed.kind === 'index' ? selectPlatform(parsed, parsePlatformSpec(platformText)).digest : top.digest;
}

export function registerFetchProfile(program: Command): void {
  program
    .command('fetch-profile')
    .description('fetch and verify the profile dockergate attached to a registry image')
    .argument('<ref>', 'docker://host/repo:tag (or @sha256:…)')
    .option('-o, --output <file>', 'write the Docker/OCI seccomp profile here (default: stdout)')
    .option('--k8s <file>', 'also write the Kubernetes SeccompProfile YAML')
    .option('--platform <os/arch[/variant]>', 'platform of a multi-platform image', 'linux/amd64')
    .option('--insecure', 'allow http and unverified TLS for non-loopback registries')
    .option('--docker-config <file>', 'registry credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
    .action(async (text: string, flags: AttachFlags & { output?: string; k8s?: string; platform: string }) => {
      const ref = registryReferenceOf(text, 'fetch-profile');
      const options = registryOptions(flags);
      const subject = await subjectOf(ref, flags.platform, options);
      const fetched = await fetchProfile(ref.registry, ref.repository, subject, options);
      if (flags.output) await writeNamedFile(flags.output, fetched.profileJson, 'output');
      else process.stdout.write(fetched.profileJson);
      if (flags.k8s) {
        if (!fetched.kubernetesYaml) throw new InvalidInputError(`the attached profile ${fetched.artifact} has no Kubernetes profile`);
        await writeNamedFile(flags.k8s, fetched.kubernetesYaml, 'Kubernetes profile');
      }
      const state = fetched.annotations[ANNOTATIONS.state];
      process.stderr.write(
        `fetched ${fetched.artifact} for ${text} (${formatPlatform(parsePlatformSpec(flags.platform))}, subject ${subject}${state ? `, analysis state ${state}` : ''}, created ${fetched.annotations[ANNOTATIONS.created] ?? '?'})\n`,
      );
    });
}
