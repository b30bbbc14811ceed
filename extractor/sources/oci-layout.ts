/**
 * `oci:path[:tag]`: an OCI image layout (OCI image spec `image-layout.md`), as a directory or a tar.
 * Blobs live at `blobs/<alg>/<hex>`; `index.json` names the images, tagged by the annotation
 * `org.opencontainers.image.ref.name`. The `oci-layout` marker file is never opened: index.json
 * and the blobs are the layout, so one without the marker, or whatever `imageLayoutVersion` it
 * claims, is read the same way.
 */
import type { Readable } from 'node:stream';
import { InvalidInputError, NotFoundError } from '../../infra/errors.js';
import { type ArchiveFs, openArchive } from '../archive-fs.js';
import { type Descriptor, MEDIA_TYPES, parseManifestOrIndex } from '../manifest.js';
import { formatReference, type SourceReference } from '../reference.js';
import { type BlobReader, type ManifestBytes, resolveManifest, verifyBlob } from '../resolve-image.js';
import type { Limits } from '../../infra/limits.js';
import type { ImageSource, SourceOptions } from '../source.js';
import { VerifyingStream } from '../streams.js';
import type { Digest, LayerDescriptor, OpenedImage } from '../types.js';

type OciReference = Extract<SourceReference, { transport: 'oci' }>;

const REF_NAME = 'org.opencontainers.image.ref.name';

export function blobPath(digest: Digest): string {
  return `blobs/${digest.replace(':', '/')}`;
}

/** Verified manifests and configs of an archive, for `resolveManifest`. */
export function archiveBlobReader(archive: ArchiveFs, where: string, limits: Limits): BlobReader {
  const read = async (descriptor: Descriptor, maxBytes: number, limitName: string): Promise<ManifestBytes> => {
    const bytes = await archive.readSmall(blobPath(descriptor.digest), maxBytes, limitName);
    return { ...verifyBlob(bytes, descriptor, `${where}: blob ${descriptor.digest}`), contentType: descriptor.mediaType };
  };
  return {
    manifest: (descriptor) => read(descriptor, limits.maxManifestBytes, 'maxManifestBytes'),
    config: (descriptor) => read(descriptor, limits.maxConfigBytes, 'maxConfigBytes'),
  };
}

/** A layer blob of an archive, verified (digest and size) while it streams. */
export async function openArchiveLayer(
  archive: ArchiveFs,
  member: string,
  layer: LayerDescriptor,
  options: SourceOptions,
): Promise<Readable> {
  const verify = new VerifyingStream({
    digest: layer.digest,
    size: layer.size,
    maxBytes: options.limits.maxLayerBlobBytes,
    limitName: 'maxLayerBlobBytes',
    what: 'layer',
  });
  const input = await archive.open(member);
  input.on('error', (err) => verify.destroy(err));
  return input.pipe(verify);
}

export const ociLayoutSource: ImageSource<OciReference> = {
  transport: 'oci',
  async open(reference, options): Promise<OpenedImage> {
    const where = formatReference(reference);
    const archive = await openArchive(reference.path, options.limits);
    const indexBytes = await archive.readSmall('index.json', options.limits.maxManifestBytes, 'maxManifestBytes');
    const index = parseManifestOrIndex(indexBytes, options.limits, MEDIA_TYPES.ociIndex);
    if (index.kind !== 'index') throw new InvalidInputError(`${where}: index.json is not an image index`);
    const top = chooseByTag(index.manifests, reference.tag, where);
    const reader = archiveBlobReader(archive, where, options.limits);
    const resolved = await resolveManifest(await reader.manifest(top), reader, options.platform, options.limits, where);
    return {
      reference: where,
      manifestDigest: resolved.manifestDigest,
      configDigest: resolved.configDigest,
      config: resolved.config,
      layers: resolved.manifest.layers,
      openLayer: (layer) => openArchiveLayer(archive, blobPath(layer.digest), layer, options),
      close: async () => {},
    };
  },
};

/** The index entry tagged `tag`, or the only entry when no tag is given. */
function chooseByTag(manifests: readonly Descriptor[], tag: string | undefined, where: string): Descriptor {
  if (tag) {
    const found = manifests.find((entry) => entry.annotations?.[REF_NAME] === tag);
    if (!found) {
      const tags = manifests.map((entry) => entry.annotations?.[REF_NAME]).filter(Boolean);
      throw new NotFoundError(`${where}: no image tagged ${JSON.stringify(tag)} (tags: ${tags.join(', ') || 'none'})`);
    }
    return found;
  }
  if (manifests.length !== 1) {
    throw new InvalidInputError(`${where}: the layout holds ${manifests.length} images; name one as oci:<path>:<tag>`);
  }
  return manifests[0]!;
}
