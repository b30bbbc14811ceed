/**
 * Profiles next to the images (`scan --attach`, `attach`, `fetch-profile`): a profile is pushed
 * as an OCI 1.1 artifact (image-spec `manifest.md`, "Guidelines for Artifact Usage") whose
 * `subject` is the platform manifest it was made for, with the Docker JSON and the Kubernetes
 * YAML as its two layers and the analysis state in its annotations.
 *
 * Registries with the referrers API (distribution-spec 1.1 `GET /v2/<name>/referrers/<digest>`)
 * index the artifact themselves. For the others (Debian's docker-registry 2.8 answers 404) the
 * spec's fallback applies ("Referrers Tag Schema"): an image index tagged `sha256-<hex>` of the
 * subject lists its referrers; it is read, our older profiles replaced, others kept, and written
 * back, so it stays consistent however often a profile is attached.
 */
import { createHash } from 'node:crypto';
import { MEDIA_TYPES } from '../../extractor/manifest.js';
import { RegistryClient, type RegistryOptions } from '../../extractor/sources/registry.js';
import type { Digest } from '../../extractor/types.js';
import { InvalidInputError, NotFoundError } from '../../infra/errors.js';

export const ARTIFACT_TYPE = 'application/vnd.dockergate.seccomp.v1+json';
/** Media types of the artifact's layers: the Docker/OCI seccomp JSON and the SeccompProfile YAML. */
export const PROFILE_MEDIA_TYPE = 'application/vnd.dockergate.seccomp.profile.v1+json';
export const KUBERNETES_MEDIA_TYPE = 'application/vnd.dockergate.seccomp.kubernetes.v1+yaml';
/** Annotation keys of the artifact (and of its entry in a referrers index). */
export const ANNOTATIONS = {
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
  state: 'dev.dockergate.analysis-state',
  syscalls: 'dev.dockergate.syscalls',
  fallback: 'dev.dockergate.fallback',
  version: 'dev.dockergate.version',
} as const;

/** The empty config of artifacts (image-spec `manifest.md`, "Guidance for an Empty Descriptor"). */
const EMPTY_CONFIG = Buffer.from('{}');

interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Record<string, string>;
}

const digestOf = (bytes: Buffer): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
const descriptorOf = (mediaType: string, bytes: Buffer, annotations?: Record<string, string>): Descriptor => ({ mediaType, digest: digestOf(bytes), size: bytes.length, ...(annotations ? { annotations } : {}) });

/** The fallback tag of a subject: `sha256-<hex>`. */
export const fallbackTag = (subject: Digest): string => subject.replace(':', '-');

export interface AttachRequest {
  readonly registry: string;
  readonly repository: string;
  /** The platform manifest the profile was made for. */
  readonly subject: Digest;
  readonly profileJson: Buffer;
  readonly kubernetesYaml: Buffer;
  readonly annotations: Readonly<Record<string, string>>;
  readonly options: RegistryOptions;
}

export interface Attached {
  readonly artifact: Digest;
  /** `referrers-api` when the registry indexes it, else `fallback-tag` (and the tag written). */
  readonly via: 'referrers-api' | 'fallback-tag';
  readonly tag?: string;
}

export async function attachProfile(request: AttachRequest): Promise<Attached> {
  const { registry, repository, subject } = request;
  const client = new RegistryClient({ transport: 'docker', registry, repository }, request.options, `repository:${repository}:pull,push`);
  const subjectManifest = await client.getManifest(subject, `manifest ${repository}@${subject}`, subject);
  const subjectType = manifestMediaType(subjectManifest.bytes, subjectManifest.contentType);
  for (const [bytes, what] of [
    [EMPTY_CONFIG, 'empty config'],
    [request.profileJson, 'profile'],
    [request.kubernetesYaml, 'Kubernetes profile'],
  ] as const) {
    await client.pushBlob(bytes, digestOf(bytes), `${what} blob of ${repository}`);
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: ARTIFACT_TYPE,
    config: { ...descriptorOf('application/vnd.oci.empty.v1+json', EMPTY_CONFIG), data: EMPTY_CONFIG.toString('base64') },
    layers: [
      descriptorOf(PROFILE_MEDIA_TYPE, request.profileJson, { [ANNOTATIONS.title]: 'profile.json' }),
      descriptorOf(KUBERNETES_MEDIA_TYPE, request.kubernetesYaml, { [ANNOTATIONS.title]: 'profile.yaml' }),
    ],
    subject: { mediaType: subjectType, digest: subject, size: subjectManifest.bytes.length },
    annotations: request.annotations,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const artifact = digestOf(bytes);
  await client.putManifest(artifact, bytes, MEDIA_TYPES.ociManifest, `profile artifact of ${repository}@${subject}`);
  if ((await client.referrers(subject, `referrers of ${repository}@${subject}`)) !== undefined) return { artifact, via: 'referrers-api' };
  // Fallback tag schema: the index of every referrer of the subject, ours replacing our older ones.
  const tag = fallbackTag(subject);
  const existing = await fallbackIndex(client, repository, subject);
  const entry: Descriptor = { mediaType: MEDIA_TYPES.ociManifest, digest: artifact, size: bytes.length, artifactType: ARTIFACT_TYPE, annotations: { ...request.annotations } };
  const index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [...existing.filter((d) => d.artifactType !== ARTIFACT_TYPE && d.digest !== artifact), entry] };
  await client.putManifest(tag, Buffer.from(JSON.stringify(index)), MEDIA_TYPES.ociIndex, `referrers tag ${repository}:${tag}`);
  return { artifact, via: 'fallback-tag', tag };
}

export interface FetchedProfile {
  readonly artifact: Digest;
  readonly profileJson: Buffer;
  readonly kubernetesYaml?: Buffer;
  readonly annotations: Readonly<Record<string, string>>;
}

/** The newest dockergate profile attached to `subject`, verified (artifact, subject and layer digests). */
export async function fetchProfile(registry: string, repository: string, subject: Digest, options: RegistryOptions): Promise<FetchedProfile> {
  const client = new RegistryClient({ transport: 'docker', registry, repository }, options);
  const where = `${registry}/${repository}@${subject}`;
  const fromApi = await client.referrers(subject, `referrers of ${where}`);
  const referrers = fromApi !== undefined ? descriptorsOf(fromApi, `the referrers of ${where}`) : await fallbackIndex(client, repository, subject);
  const ours = referrers.filter((descriptor) => descriptor.artifactType === ARTIFACT_TYPE);
  if (ours.length === 0) throw new NotFoundError(`no dockergate profile is attached to ${where} (attach one with dockergate attach)`);
  // The newest by its creation annotation (RFC 3339 strings sort by time).
  const chosen = [...ours].sort((a, b) => (a.annotations?.[ANNOTATIONS.created] ?? '').localeCompare(b.annotations?.[ANNOTATIONS.created] ?? '')).pop()!;
  const manifestBytes = (await client.getManifest(chosen.digest, `profile artifact ${chosen.digest}`, chosen.digest, chosen.size)).bytes;
  const manifest = parseObject(manifestBytes, `profile artifact ${chosen.digest}`) as { subject?: { digest?: string }; layers?: Descriptor[]; annotations?: Record<string, string> };
  if (manifest.subject?.digest !== subject) throw new InvalidInputError(`profile artifact ${chosen.digest} names subject ${String(manifest.subject?.digest)}, not ${subject}`);
  const layer = (mediaType: string) => (Array.isArray(manifest.layers) ? manifest.layers.find((entry) => entry?.mediaType === mediaType) : undefined);
  const profile = layer(PROFILE_MEDIA_TYPE);
  if (!profile) throw new InvalidInputError(`profile artifact ${chosen.digest} has no ${PROFILE_MEDIA_TYPE} layer`);
  const maxBytes = options.limits.maxManifestBytes;
  const profileJson = await client.getBlob(profile, maxBytes, 'maxManifestBytes', 'profile');
  const kubernetes = layer(KUBERNETES_MEDIA_TYPE);
  const kubernetesYaml = kubernetes ? await client.getBlob(kubernetes, maxBytes, 'maxManifestBytes', 'Kubernetes profile') : undefined;
  return { artifact: chosen.digest, profileJson, ...(kubernetesYaml ? { kubernetesYaml } : {}), annotations: manifest.annotations ?? {} };
}

/** The descriptors of the fallback tag's index; none when the tag does not exist. */
async function fallbackIndex(client: RegistryClient, repository: string, subject: Digest): Promise<Descriptor[]> {
  const tag = fallbackTag(subject);
  try {
    const { bytes } = await client.getManifest(tag, `referrers tag ${repository}:${tag}`);
    return descriptorsOf(bytes, `referrers tag ${repository}:${tag}`);
  } catch (err) {
    if (err instanceof NotFoundError) return [];
    throw err;
  }
}

function parseObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidInputError(`${what} is not JSON`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function descriptorsOf(bytes: Buffer, what: string): Descriptor[] {
  const index = parseObject(bytes, what);
  if (!Array.isArray(index.manifests)) throw new InvalidInputError(`${what} is not an image index`);
  return index.manifests.filter((entry): entry is Descriptor => typeof entry === 'object' && entry !== null && typeof (entry as Descriptor).digest === 'string');
}

function manifestMediaType(bytes: Buffer, contentType: string | undefined): string {
  const declared = parseObject(bytes, 'subject manifest').mediaType;
  return typeof declared === 'string' && declared ? declared : (contentType?.split(';')[0]?.trim() || MEDIA_TYPES.ociManifest);
}
