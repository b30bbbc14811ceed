/**
 * Parsing and validation of image manifests, indexes and configs (OCI image spec `manifest.md`,
 * `image-index.md`, `config.md`; Docker image manifest v2 schema 2 and manifest lists).
 * Everything here is untrusted JSON: each field is checked before use.
 */
import { InvalidInputError, LimitExceededError, NotFoundError, UnsupportedError } from '../infra/errors.js';
import { LAYER_MEDIA_TYPES, type Limits } from '../infra/limits.js';
import type { Digest, ImageConfig, LayerDescriptor, Platform } from './types.js';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** Accept header for manifest requests: every manifest and index form we can read. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.dockerManifest,
].join(', ');

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageManifest {
  readonly kind: 'manifest';
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly LayerDescriptor[];
}

export interface ImageIndex {
  readonly kind: 'index';
  readonly mediaType: string;
  readonly manifests: readonly Descriptor[];
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function parseDigest(value: unknown, what: string): Digest {
  if (typeof value !== 'string' || !DIGEST.test(value)) {
    throw new InvalidInputError(`${what}: not a sha256 digest: ${JSON.stringify(value)?.slice(0, 100)}`);
  }
  return value as Digest;
}

export function parseJson(bytes: Uint8Array, maxBytes: number, limitName: string, what: string): unknown {
  if (bytes.length > maxBytes) throw new LimitExceededError(limitName, maxBytes, what);
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch (err) {
    throw new InvalidInputError(`${what} is not valid JSON`, { cause: err });
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objectField(value: unknown, what: string): Record<string, unknown> {
  if (!isObject(value)) throw new InvalidInputError(`${what} is not a JSON object`);
  return value;
}

function stringArray(value: unknown, what: string): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new InvalidInputError(`${what} is not an array of strings`);
  }
  return value as string[];
}

function optionalString(value: unknown, what: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new InvalidInputError(`${what} is not a string`);
  return value;
}

function parseSize(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidInputError(`${what}: size is not a non-negative integer`);
  }
  return value;
}

/** The string-valued entries of a JSON object (labels, annotations); others are dropped. */
function stringValues(object: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(object).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

function parsePlatform(value: unknown, what: string): Platform | undefined {
  if (value === undefined) return undefined;
  const platform = objectField(value, what);
  const variant = optionalString(platform.variant, `${what}.variant`);
  return {
    os: optionalString(platform.os, `${what}.os`),
    architecture: optionalString(platform.architecture, `${what}.architecture`),
    ...(variant ? { variant } : {}),
  };
}

function parseDescriptor(value: unknown, what: string): Descriptor {
  const object = objectField(value, what);
  const platform = parsePlatform(object.platform, `${what}.platform`);
  const annotations = isObject(object.annotations) ? stringValues(object.annotations) : undefined;
  return {
    mediaType: optionalString(object.mediaType, `${what}.mediaType`),
    digest: parseDigest(object.digest, `${what}.digest`),
    size: parseSize(object.size, what),
    ...(platform ? { platform } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

/** Parses a manifest or an index. `contentType` (from HTTP) wins when the JSON has no mediaType. */
export function parseManifestOrIndex(
  bytes: Uint8Array,
  limits: Limits,
  contentType = '',
): ImageManifest | ImageIndex {
  const root = objectField(parseJson(bytes, limits.maxManifestBytes, 'maxManifestBytes', 'manifest'), 'manifest');
  const mediaType = optionalString(root.mediaType, 'manifest.mediaType') || contentType.split(';')[0]!.trim();
  if (root.schemaVersion !== 2) {
    throw new UnsupportedError(`manifest schemaVersion ${JSON.stringify(root.schemaVersion)} (only schema 2 is supported)`);
  }
  const isIndex =
    mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerList || (!mediaType && Array.isArray(root.manifests));
  if (isIndex) {
    if (!Array.isArray(root.manifests)) throw new InvalidInputError('index has no manifests array');
    if (root.manifests.length > limits.maxIndexEntries) {
      throw new LimitExceededError('maxIndexEntries', limits.maxIndexEntries, 'image index');
    }
    return {
      kind: 'index',
      mediaType: mediaType || MEDIA_TYPES.ociIndex,
      manifests: root.manifests.map((entry, i) => parseDescriptor(entry, `index.manifests[${i}]`)),
    };
  }
  if (mediaType && mediaType !== MEDIA_TYPES.ociManifest && mediaType !== MEDIA_TYPES.dockerManifest) {
    throw new UnsupportedError(`unsupported manifest media type ${JSON.stringify(mediaType)}`);
  }
  if (!Array.isArray(root.layers)) throw new InvalidInputError('manifest has no layers array');
  if (root.layers.length > limits.maxLayersPerImage) {
    throw new LimitExceededError('maxLayersPerImage', limits.maxLayersPerImage, 'manifest layers');
  }
  const layers = root.layers.map((entry, i) => {
    const descriptor = parseDescriptor(entry, `manifest.layers[${i}]`);
    checkLayerMediaType(descriptor.mediaType);
    return { digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size };
  });
  return {
    kind: 'manifest',
    mediaType: mediaType || MEDIA_TYPES.ociManifest,
    config: parseDescriptor(root.config, 'manifest.config'),
    layers,
  };
}

/** Checked up front, before any layer work is dispatched. */
export function checkLayerMediaType(mediaType: string): void {
  if (!LAYER_MEDIA_TYPES.has(mediaType)) {
    throw new UnsupportedError(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  }
}

/** `linux/amd64`, `linux/arm64/v8`. */
export function parsePlatformSpec(spec: string): Platform {
  const [os, architecture, variant] = spec.split('/');
  if (!os || !architecture) throw new InvalidInputError(`platform ${JSON.stringify(spec)} is not os/arch[/variant]`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/**
 * Picks the manifest for a platform from an index, as containerd's platform matcher does:
 * os and architecture must match; a requested variant must match, an absent one accepts any
 * (arm64 entries without a variant are treated as v8).
 */
export function selectPlatform(index: ImageIndex, wanted: Platform): Descriptor {
  const normalisedVariant = (p: Platform): string | undefined =>
    p.architecture === 'arm64' && !p.variant ? 'v8' : p.variant;
  const candidates = index.manifests.filter(
    (entry) =>
      entry.platform &&
      entry.platform.os === wanted.os &&
      entry.platform.architecture === wanted.architecture &&
      (!wanted.variant || normalisedVariant(entry.platform) === normalisedVariant(wanted)),
  );
  const chosen = candidates[0];
  if (!chosen) {
    const available = index.manifests.map((entry) => (entry.platform ? formatPlatform(entry.platform) : '?')).join(', ');
    throw new NotFoundError(`no manifest for platform ${formatPlatform(wanted)} (available: ${available || 'none'})`);
  }
  return chosen;
}

/** Parses an image config (OCI `config.md`; Docker's uses the same field names). */
export function parseImageConfig(bytes: Uint8Array, limits: Limits): ImageConfig {
  const root = objectField(parseJson(bytes, limits.maxConfigBytes, 'maxConfigBytes', 'image config'), 'image config');
  const config = root.config === undefined || root.config === null ? {} : objectField(root.config, 'config.config');
  const rootfs = objectField(root.rootfs, 'config.rootfs');
  const diffIds = stringArray(rootfs.diff_ids, 'config.rootfs.diff_ids') ?? [];
  const healthcheck = config.Healthcheck === undefined || config.Healthcheck === null ? null : objectField(config.Healthcheck, 'config.Healthcheck');
  const labels = config.Labels === undefined || config.Labels === null ? {} : objectField(config.Labels, 'config.Labels');
  const variant = optionalString(root.variant, 'config.variant');
  return {
    platform: {
      os: optionalString(root.os, 'config.os'),
      architecture: optionalString(root.architecture, 'config.architecture'),
      ...(variant ? { variant } : {}),
    },
    entrypoint: stringArray(config.Entrypoint, 'config.Entrypoint'),
    cmd: stringArray(config.Cmd, 'config.Cmd'),
    env: stringArray(config.Env, 'config.Env') ?? [],
    workingDir: optionalString(config.WorkingDir, 'config.WorkingDir'),
    user: optionalString(config.User, 'config.User'),
    healthcheck: healthcheck ? stringArray(healthcheck.Test, 'config.Healthcheck.Test') : null,
    labels: stringValues(labels),
    diffIds: diffIds.map((id, i) => parseDigest(id, `config.rootfs.diff_ids[${i}]`)),
  };
}
