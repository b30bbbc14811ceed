/**
 * index → manifest (by platform) → config: the one resolution chain of every source that has
 * manifests (registry, OCI layout). Sources supply verified bytes; this module decides.
 */
import { DigestMismatchError, DockergateError, InvalidInputError, LimitExceededError, NotFoundError, UnsupportedError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';
import {
  type Descriptor,
  formatPlatform,
  type ImageManifest,
  MEDIA_TYPES,
  parseImageConfig,
  parseManifestOrIndex,
  selectPlatform,
} from './manifest.js';
import { sha256Digest } from './streams.js';
import type { Digest, ImageConfig, Platform } from './types.js';

export interface ManifestBytes {
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly contentType?: string;
}

/** Fetches manifests and configs named by descriptors; each result is verified (digest and size). */
export interface BlobReader {
  manifest(descriptor: Descriptor): Promise<ManifestBytes>;
  config(descriptor: Descriptor): Promise<ManifestBytes>;
}

export interface ResolvedManifest {
  readonly manifestDigest: Digest;
  readonly manifest: ImageManifest;
  readonly configDigest: Digest;
  readonly config: ImageConfig;
}

/** Nested indexes deeper than this are refused (real images use one level). */
const MAX_INDEX_DEPTH = 4;
/** An empty media type is accepted: old Docker manifests omit it. */
const CONFIG_MEDIA_TYPES = new Set<string>(['', MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig]);

/**
 * Follows `top` to one image. Invariants checked: the config is an image config; one diff_id per
 * layer; a single-platform image (not chosen from an index) is of the requested platform.
 * `where` names the image in error messages.
 */
export async function resolveManifest(
  top: ManifestBytes,
  reader: BlobReader,
  platform: Platform,
  limits: Limits,
  where: string,
): Promise<ResolvedManifest> {
  let current = top;
  for (let depth = 0; ; depth++) {
    const manifestBytes = current;
    const parsed = inContext(() => parseManifestOrIndex(manifestBytes.bytes, limits, manifestBytes.contentType), `${where}, manifest ${current.digest}`);
    if (parsed.kind === 'index') {
      if (depth >= MAX_INDEX_DEPTH) throw new LimitExceededError('MAX_INDEX_DEPTH', MAX_INDEX_DEPTH, `${where}: nested image indexes`);
      let chosen: Descriptor;
      try {
        chosen = selectPlatform(parsed, platform);
      } catch (err) {
        throw err instanceof NotFoundError ? new NotFoundError(`${where} (index ${current.digest}): ${err.message}`) : err;
      }
      current = await reader.manifest(chosen);
      continue;
    }
    if (!CONFIG_MEDIA_TYPES.has(parsed.config.mediaType)) {
      throw new UnsupportedError(
        `${where}: manifest ${current.digest} is not a container image (config media type ${JSON.stringify(parsed.config.mediaType)})`,
      );
    }
    // Counts the manifest declares are checked before the work they imply.
    if (parsed.layers.length > limits.maxLayersPerImage) {
      throw new LimitExceededError('maxLayersPerImage', limits.maxLayersPerImage, `${where}: manifest ${current.digest} lists ${parsed.layers.length} layers`);
    }
    const configBytes = await reader.config(parsed.config);
    const config = inContext(() => parseImageConfig(configBytes.bytes, limits), `${where}, config ${configBytes.digest}`);
    if (config.diffIds.length !== parsed.layers.length) {
      throw new InvalidInputError(
        `${where}: manifest ${current.digest} has ${parsed.layers.length} layers but config ${parsed.config.digest} lists ${config.diffIds.length} diff_ids`,
      );
    }
    if (depth === 0 && !platformMatches(config.platform, platform)) {
      throw new NotFoundError(
        `${where} (manifest ${current.digest}) is a single-platform image for ${formatPlatform(config.platform)}, not the requested ${formatPlatform(platform)} (use --platform)`,
      );
    }
    return { manifestDigest: current.digest, manifest: parsed, configDigest: configBytes.digest, config };
  }
}

/** Runs a parser, prefixing the image and blob to the message of any typed error it throws. */
function inContext<T>(parse: () => T, context: string): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof DockergateError) err.message = `${context}: ${err.message}`;
    throw err;
  }
}

function platformMatches(actual: Platform, wanted: Platform): boolean {
  // Configs without platform fields (old builders, docker import) cannot be checked and are accepted.
  if (!actual.os && !actual.architecture) return true;
  // A variant is compared only when both sides have one (arm64 without one counts as v8);
  // single-platform configs often omit it.
  const variant = (p: Platform): string | undefined => (p.architecture === 'arm64' && !p.variant ? 'v8' : p.variant);
  const actualVariant = variant(actual);
  return (
    actual.os === wanted.os &&
    actual.architecture === wanted.architecture &&
    (!wanted.variant || !actualVariant || actualVariant === variant(wanted))
  );
}

/** Checks bytes against a descriptor (OCI `descriptor.md`: size and digest MUST be verified). */
export function verifyBlob(bytes: Buffer, descriptor: Pick<Descriptor, 'digest' | 'size'>, what: string): ManifestBytes {
  const actual = sha256Digest(bytes);
  if (bytes.length !== descriptor.size) {
    throw new DigestMismatchError(`${descriptor.size} bytes`, `${bytes.length} bytes`, `${what} has the wrong size`);
  }
  if (actual !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, actual, `${what} does not match its digest`);
  return { bytes, digest: actual };
}
