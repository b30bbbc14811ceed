import { DigestMismatchError, InvalidInputError, LimitExceededError, UnsupportedError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';
import {
  type Descriptor,
  formatPlatform,
  type ImageManifest,
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

export interface BlobReader {
  /** Bytes of a manifest or config blob, verified against the descriptor's digest and size. */
  fetch(descriptor: Descriptor, maxBytes: number, limitName: string): Promise<ManifestBytes>;
}

export interface ResolvedManifest {
  readonly manifestDigest: Digest;
  readonly manifest: ImageManifest;
  readonly configDigest: Digest;
  readonly config: ImageConfig;
}

/** Nested indexes deeper than this are refused (real images use one level). */
const MAX_INDEX_DEPTH = 4;

/**
 * Follows index → manifest (by platform) → config, shared by every source that has manifests.
 * Invariants checked: one diff_id per layer; an image's own platform matches the request.
 */
export async function resolveManifest(
  top: ManifestBytes,
  reader: BlobReader,
  platform: Platform,
  limits: Limits,
): Promise<ResolvedManifest> {
  let current = top;
  for (let depth = 0; ; depth++) {
    const parsed = parseManifestOrIndex(current.bytes, limits, current.contentType);
    if (parsed.kind === 'manifest') {
      const configBytes = await reader.fetch(parsed.config, limits.maxConfigBytes, 'maxConfigBytes');
      const config = parseImageConfig(configBytes.bytes, limits);
      if (config.diffIds.length !== parsed.layers.length) {
        throw new InvalidInputError(
          `manifest ${current.digest} has ${parsed.layers.length} layers but its config lists ${config.diffIds.length} diff_ids`,
        );
      }
      if (depth === 0 && !platformMatches(config.platform, platform)) {
        throw new UnsupportedError(
          `image is ${formatPlatform(config.platform)}, not the requested ${formatPlatform(platform)} (use --platform)`,
        );
      }
      return { manifestDigest: current.digest, manifest: parsed, configDigest: configBytes.digest, config };
    }
    if (depth >= MAX_INDEX_DEPTH) throw new LimitExceededError('MAX_INDEX_DEPTH', MAX_INDEX_DEPTH, 'nested image indexes');
    current = await reader.fetch(selectPlatform(parsed, platform), limits.maxManifestBytes, 'maxManifestBytes');
  }
}

function platformMatches(actual: Platform, wanted: Platform): boolean {
  // Images built without platform fields (docker import of old tools) are accepted as they are.
  if (!actual.os && !actual.architecture) return true;
  return actual.os === wanted.os && actual.architecture === wanted.architecture;
}

/** Checks bytes against a descriptor (OCI `descriptor.md`: size and digest MUST be verified). */
export function verifyBlob(bytes: Buffer, descriptor: Pick<Descriptor, 'digest' | 'size'>, what: string): ManifestBytes {
  const actual = sha256Digest(bytes);
  if (actual !== descriptor.digest || bytes.length !== descriptor.size) {
    throw new DigestMismatchError(`${descriptor.digest} (${descriptor.size} bytes)`, `${actual} (${bytes.length} bytes)`, what);
  }
  return { bytes, digest: actual };
}
