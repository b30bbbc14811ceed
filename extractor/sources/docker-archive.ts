/**
 * `docker-archive:path[:name]`: the `docker save` format. `manifest.json` lists, per image, the
 * config member, its tags and its layer members bottom first (Docker's image spec v1.2
 * "combined image JSON + filesystem changeset format"; Docker 25+ writes an OCI layout beside it,
 * with members under `blobs/sha256/`). Layers are uncompressed tars unless their bytes say otherwise.
 */
import { InvalidInputError, LimitExceededError, NotFoundError } from '../../infra/errors.js';
import { type ArchiveFs, openArchive } from '../archive-fs.js';
import { parseDigest, parseImageConfig, parseJson } from '../manifest.js';
import type { SourceReference } from '../reference.js';
import { verifyBlob } from '../resolve-image.js';
import type { ImageSource, SourceOptions } from '../source.js';
import { sha256Digest } from '../streams.js';
import type { Digest, LayerDescriptor, OpenedImage } from '../types.js';
import { openArchiveLayer } from './oci-layout.js';

type ArchiveReference = Extract<SourceReference, { transport: 'docker-archive' }>;

interface SavedImage {
  readonly config: string;
  readonly repoTags: readonly string[];
  readonly layers: readonly string[];
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

export const dockerArchiveSource: ImageSource<ArchiveReference> = {
  transport: 'docker-archive',
  async open(reference, options): Promise<OpenedImage> {
    const archive = await openArchive(reference.path, options.limits);
    return openSavedImage(archive, reference.name, `docker-archive:${reference.path}`, options);
  },
};

/** Reads one image of a `docker save` archive; shared with the daemon source, which saves to one. */
export async function openSavedImage(
  archive: ArchiveFs,
  name: string | undefined,
  where: string,
  options: SourceOptions,
): Promise<OpenedImage> {
  const { limits } = options;
  const images = parseSaveManifest(
    parseJson(await archive.readSmall('manifest.json', limits.maxArchiveMetadataBytes, 'maxArchiveMetadataBytes'), limits.maxArchiveMetadataBytes, 'maxArchiveMetadataBytes', `${where} manifest.json`),
    where,
  );
  const image = chooseImage(images, name, where);
  if (image.layers.length > limits.maxLayersPerImage) {
    throw new LimitExceededError('maxLayersPerImage', limits.maxLayersPerImage, `${where}: manifest.json lists ${image.layers.length} layers`);
  }
  const configBytes = await archive.readSmall(image.config, limits.maxConfigBytes, 'maxConfigBytes');
  const configDigest = sha256Digest(configBytes);
  // Members named by digest (`<hex>.json`, `blobs/sha256/<hex>`) must hash to that digest.
  const namedConfig = digestInMemberName(image.config);
  if (namedConfig) verifyBlob(configBytes, { digest: namedConfig, size: configBytes.length }, `${where}: config ${image.config}`);
  const config = parseImageConfig(configBytes, limits);
  if (config.diffIds.length !== image.layers.length) {
    throw new InvalidInputError(`${where}: ${image.layers.length} layers but the config lists ${config.diffIds.length} diff_ids`);
  }

  const layers: LayerDescriptor[] = [];
  const members = new Map<Digest, string>();
  for (const [i, member] of image.layers.entries()) {
    const size = await archive.sizeOf(member);
    if (size === undefined) throw new NotFoundError(`${where}: layer member ${member} is missing`);
    const compression = compressionOfBytes(await archive.head(member, 4));
    // An uncompressed layer's digest is its diff_id; a compressed one is named by its digest.
    const digest = compression === 'none' ? config.diffIds[i]! : (digestInMemberName(member) ?? config.diffIds[i]!);
    const mediaType =
      compression === 'gzip'
        ? 'application/vnd.oci.image.layer.v1.tar+gzip'
        : compression === 'zstd'
          ? 'application/vnd.oci.image.layer.v1.tar+zstd'
          : 'application/vnd.oci.image.layer.v1.tar';
    layers.push({ digest, mediaType, size });
    members.set(digest, member);
  }

  return {
    reference: where,
    manifestDigest: configDigest,
    configDigest,
    config,
    layers,
    openLayer: (layer) => openArchiveLayer(archive, members.get(layer.digest) ?? '', layer, options),
    close: async () => {},
  };
}

function compressionOfBytes(head: Buffer): 'gzip' | 'zstd' | 'none' {
  const startsWith = (magic: number[]): boolean => magic.every((byte, i) => head[i] === byte);
  if (startsWith(GZIP_MAGIC)) return 'gzip';
  if (startsWith(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

function digestInMemberName(member: string): Digest | undefined {
  const match = /(?:^|\/)(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(member);
  return match ? parseDigest(`sha256:${match[1]}`, member) : undefined;
}

function parseSaveManifest(value: unknown, where: string): SavedImage[] {
  if (!Array.isArray(value)) throw new InvalidInputError(`${where}: manifest.json is not an array`);
  return value.map((entry: unknown, i) => {
    const object = entry as { Config?: unknown; RepoTags?: unknown; Layers?: unknown } | null;
    const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
    if (!object || typeof object.Config !== 'string' || !isStrings(object.Layers)) {
      throw new InvalidInputError(`${where}: manifest.json[${i}] lacks Config or Layers`);
    }
    return { config: object.Config, repoTags: isStrings(object.RepoTags) ? object.RepoTags : [], layers: object.Layers };
  });
}

/** Docker names local images `repo:tag`; `name` may omit `:latest` and the `docker.io/library/` prefix. */
function chooseImage(images: readonly SavedImage[], name: string | undefined, where: string): SavedImage {
  if (name === undefined) {
    if (images.length !== 1) throw new InvalidInputError(`${where} holds ${images.length} images; name one as docker-archive:<path>:<name:tag>`);
    return images[0]!;
  }
  const wanted = name.includes(':') ? name : `${name}:latest`;
  const found = images.find((image) => image.repoTags.some((tag) => tag === wanted || tag === `docker.io/${wanted}` || tag === `docker.io/library/${wanted}`));
  if (!found) {
    const tags = images.flatMap((image) => image.repoTags);
    throw new NotFoundError(`${where}: no image named ${name} (has: ${tags.join(', ') || 'no tags'})`);
  }
  return found;
}
