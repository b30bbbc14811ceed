/**
 * `inspect`: open an image, extract each layer once as a work unit on the bus, merge the layer
 * records into the image tree, and describe what later stages need.
 */
import { PassThrough, type Readable } from 'node:stream';
import { EXTRACTOR_VERSION } from '../../extractor/version.js';
import { checkLayerMediaType, formatPlatform } from '../../extractor/manifest.js';
import { parseReference } from '../../extractor/reference.js';
import type { SourceOptions } from '../../extractor/source.js';
import { openImage } from '../../extractor/sources/index.js';
import type { ImageConfig, LayerRecord, OpenedImage } from '../../extractor/types.js';
import { withDeadline } from '../../infra/deadline.js';
import { DigestMismatchError, InvalidInputError } from '../../infra/errors.js';
import { type Progress, silentProgress } from '../../infra/progress.js';
import { type ExtractLayerDone, type ExtractLayerUnit, extractLayerUnitId, UNIT_EXTRACT_LAYER } from '../../worker/contracts.js';
import type { Runtime } from '../runtime/runtime.js';
import { type ResolvedEntrypoint, resolveEntrypoint } from './entrypoint.js';
import { ImageTree, type TreeFile } from './image-tree.js';

export interface LayerSummary {
  readonly digest: string;
  readonly diffId: string;
  readonly mediaType: string;
  readonly size: number;
  readonly uncompressedSize: number;
  readonly files: number;
  readonly whiteouts: number;
  readonly opaqueDirs: number;
  readonly cached: boolean;
}

export interface InspectResult {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly platform: string;
  readonly config: ImageConfig;
  readonly layers: readonly LayerSummary[];
  readonly counts: {
    readonly files: number;
    readonly elfByMachine: Readonly<Record<string, number>>;
    readonly scripts: number;
  };
  readonly entrypoint: ResolvedEntrypoint;
  readonly tree: ImageTree;
}

export interface InspectOptions {
  readonly source: Omit<SourceOptions, 'limits' | 'spoolDir'>;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
}

/** Opens an image from its reference (manifest and config only; no layer is read yet). */
export async function openImageFor(runtime: Runtime, referenceText: string, options: InspectOptions): Promise<OpenedImage> {
  const image = await openImage(parseReference(referenceText), {
    ...options.source,
    limits: runtime.limits,
    spoolDir: runtime.cas.spoolDir,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  for (const layer of image.layers) checkLayerMediaType(layer.mediaType);
  if (image.layers.length > runtime.limits.maxLayersPerImage) {
    await image.close();
    throw new InvalidInputError(`${image.reference} has ${image.layers.length} layers (limit ${runtime.limits.maxLayersPerImage})`);
  }
  return image;
}

/** Loads an image into layer records, extracting only layers not already recorded. */
export async function loadImage(
  runtime: Runtime,
  referenceText: string,
  options: InspectOptions,
): Promise<{ image: OpenedImage; records: LayerRecord[]; cached: boolean[] }> {
  return extractImage(runtime, await openImageFor(runtime, referenceText, options), options);
}

/** One `extract-layer` unit per layer on the bus; then the records, checked against the diff_ids. */
export async function extractImage(
  runtime: Runtime,
  image: OpenedImage,
  options: InspectOptions,
): Promise<{ image: OpenedImage; records: LayerRecord[]; cached: boolean[] }> {
  const progress = options.progress ?? silentProgress;
  try {
    const unshare = await runtime.share(image, (layer, blob) => countProgress(blob, progress, layer.digest, layer.size));
    let done: ExtractLayerDone[];
    try {
      done = await Promise.all(
        image.layers.map((layer) =>
          runtime.bus.request<ExtractLayerUnit, ExtractLayerDone>(
            UNIT_EXTRACT_LAYER,
            extractLayerUnitId(layer, EXTRACTOR_VERSION),
            { image: image.reference, layer, ...(options.source.insecure ? { insecure: true } : {}) },
            options.signal,
          ),
        ),
      );
    } finally {
      unshare();
      progress.stop();
    }
    const records: LayerRecord[] = [];
    for (const [index, layer] of image.layers.entries()) {
      const record = await runtime.records.get(layer.digest, EXTRACTOR_VERSION);
      if (!record) throw new InvalidInputError(`layer ${layer.digest} was extracted but its record is missing`);
      const diffId = image.config.diffIds[index];
      // OCI config.md: rootfs.diff_ids[i] is the digest of layer i's uncompressed tar.
      if (diffId && record.diffId !== diffId) {
        throw new DigestMismatchError(diffId, record.diffId, `uncompressed layer ${index} (${layer.digest}) vs config diff_id`);
      }
      records.push(record);
    }
    return { image, records, cached: done.map((unit) => unit.cached) };
  } catch (err) {
    await image.close();
    throw err;
  }
}

/** Inspects one image within `scanTimeoutMs` (past it: that limit's error, every unit cancelled). */
export function inspectImage(runtime: Runtime, referenceText: string, options: InspectOptions): Promise<InspectResult> {
  return withDeadline(runtime.limits, 'scanTimeoutMs', `the inspection of ${referenceText}`, options.signal, (signal) => inspectWithin(runtime, referenceText, { ...options, signal }));
}

async function inspectWithin(runtime: Runtime, referenceText: string, options: InspectOptions): Promise<InspectResult> {
  const { image, records, cached } = await loadImage(runtime, referenceText, options);
  try {
    const tree = ImageTree.fromLayers(records, runtime.limits);
    return {
      reference: image.reference,
      manifestDigest: image.manifestDigest,
      configDigest: image.configDigest,
      platform: formatPlatform(image.config.platform),
      config: image.config,
      layers: records.map((record, index) => ({
        digest: record.digest,
        diffId: record.diffId,
        mediaType: record.mediaType,
        size: record.compressedBytes,
        uncompressedSize: record.uncompressedBytes,
        files: record.files.length,
        whiteouts: record.whiteouts.length,
        opaqueDirs: record.opaqueDirs.length,
        cached: cached[index] ?? false,
      })),
      counts: countKinds(tree),
      entrypoint: resolveEntrypoint(image.config, tree),
      tree,
    };
  } finally {
    await image.close();
  }
}

function countKinds(tree: ImageTree): InspectResult['counts'] {
  const elfByMachine: Record<string, number> = {};
  let scripts = 0;
  let files = 0;
  for (const file of tree.files()) {
    files++;
    if (file.type !== 'file') continue;
    if (file.kind === 'elf') elfByMachine[file.elfMachine ?? 'unknown'] = (elfByMachine[file.elfMachine ?? 'unknown'] ?? 0) + 1;
    else if (file.kind === 'script') scripts++;
  }
  return { files, elfByMachine, scripts };
}

function countProgress(blob: Readable, progress: Progress, label: string, total: number): Readable {
  const task = progress.task(label.slice(0, 19), total);
  const counted = new PassThrough({ highWaterMark: 1024 * 1024 });
  blob.on('data', (chunk: Buffer) => task.advance(chunk.length));
  blob.on('end', () => task.finish());
  blob.on('error', (err) => counted.destroy(err));
  // `pipe` does not carry destruction back: when the extraction stops early (a limit, a digest,
  // an abort) the source must close too, or its descriptor or HTTP connection stays open.
  counted.once('close', () => {
    if (!blob.destroyed) blob.destroy();
  });
  return blob.pipe(counted);
}

/** The JSON form of one tree entry, as `inspect --json` prints it (stable field order). */
export function fileJson(file: TreeFile): Record<string, unknown> {
  return {
    path: file.path,
    type: file.type,
    mode: `0${file.mode.toString(8)}`,
    uid: file.uid,
    gid: file.gid,
    size: file.size,
    ...(file.linkTarget !== undefined ? { linkTarget: file.linkTarget } : {}),
    ...(file.hardlinkTo !== undefined ? { hardlinkTo: file.hardlinkTo } : {}),
    ...(file.sha256 ? { sha256: file.sha256 } : {}),
    ...(file.kind && file.kind !== 'other' ? { kind: file.kind } : {}),
    ...(file.elfMachine ? { elfMachine: file.elfMachine } : {}),
    ...(file.interpreter ? { interpreter: file.interpreter } : {}),
  };
}
