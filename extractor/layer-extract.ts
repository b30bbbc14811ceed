import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { DecompressStream } from 'zstd-napi';
import {
  AbortedError,
  asInputError,
  LimitExceededError,
  UnsafePathError,
  UnsupportedError,
} from '../infra/errors.js';
import { LAYER_MEDIA_TYPES, type LayerCompression, type Limits, MiB } from '../infra/limits.js';
import type { Cas } from '../store/cas.js';
import { classify, type Classification } from './classify.js';
import { baseName, normaliseEntryPath, parentOf } from './paths.js';
import { HashingStream } from './streams.js';
import type { Digest, FileType, LayerDescriptor, LayerFile, LayerRecord } from './types.js';
import { EXTRACTOR_VERSION } from './version.js';

/**
 * Configuration files that decide how programs load code, kept in the CAS like ELF files and
 * scripts: the loader cache and path files, and NSS's configuration.
 */
export const KEPT_FILES: ReadonlySet<string> = new Set([
  '/etc/ld.so.cache',
  '/etc/nsswitch.conf',
  '/etc/ld-musl-x86_64.path',
  '/etc/ld-musl-aarch64.path',
]);

/**
 * Text a shell may read with `.`/`source` though it has no `#!` line (`/etc/apache2/envvars`,
 * `/etc/default/*`, `*.sh` libraries): kept in the CAS when it is at most `maxShellScriptBytes`
 * (more is not an error: the planner then reports the file as unreadable).
 */
function mayBeSourced(entryPath: string): boolean {
  return entryPath.startsWith('/etc/') || /\.(sh|bash|ksh|env)$/.test(entryPath) || /\/(s?bin|libexec)\//.test(entryPath);
}

/** Whiteout prefix and opaque marker (OCI image spec `layer.md`, "Whiteouts"). */
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** ELF files and scripts larger than this are spooled to disk instead of held in memory. */
const IN_MEMORY_BLOB_BYTES = 32 * MiB;

export interface ExtractOptions {
  readonly cas: Cas;
  readonly limits: Limits;
  readonly signal?: AbortSignal;
  /** Called with the number of compressed bytes consumed since the last call. */
  readonly onProgress?: (compressedBytes: number) => void;
}

export function compressionOf(mediaType: string): LayerCompression {
  const compression = LAYER_MEDIA_TYPES.get(mediaType);
  if (!compression) throw new UnsupportedError(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return compression;
}

function decompressor(compression: LayerCompression): Transform {
  switch (compression) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: 256 * 1024 });
    case 'zstd':
      return new DecompressStream();
    case 'none':
      return new PassThrough();
  }
}

/**
 * Streams one layer blob (compressed as its media type says) and returns its `LayerRecord`.
 * The layer is never written to disk: each regular file is hashed as it passes, and only ELF files
 * and scripts are kept, in the CAS. The input must already be digest-verified by the source.
 */
export async function extractLayer(
  blob: Readable,
  layer: LayerDescriptor,
  options: ExtractOptions,
): Promise<LayerRecord> {
  const { limits, signal } = options;
  const compression = compressionOf(layer.mediaType);
  if (signal?.aborted) throw new AbortedError('layer extraction aborted');

  const compressed = new HashingStream(limits.maxLayerBlobBytes, 'maxLayerBlobBytes', `layer ${layer.digest}`, options.onProgress);
  const uncompressed = new HashingStream(limits.maxLayerTarBytes, 'maxLayerTarBytes', `uncompressed layer ${layer.digest}`);
  const bombGuard = new CompressionRatioGuard(compressed, limits, layer.digest);
  const collector = new LayerCollector(options);
  const extract = tar.extract();
  // The first error of an entry handler is the real cause; the pipeline only sees "premature close".
  let entryError: unknown;
  /** The entry being handled: a failed layer waits for it, so no CAS write is left half done. */
  let handling: Promise<void> = Promise.resolve();
  extract.on('entry', (header, stream, next) => {
    handling = collector.onEntry(header, stream as AsyncIterable<Buffer>).then(
      () => next(),
      (err: unknown) => {
        entryError ??= err;
        next(err as Error);
      },
    );
  });

  try {
    await pipeline([blob, compressed, decompressor(compression), bombGuard, uncompressed, extract], { signal });
  } catch (err) {
    await handling;
    if (signal?.aborted) throw new AbortedError('layer extraction aborted', { cause: err });
    throw asInputError(entryError ?? err, `layer ${layer.digest}`);
  } finally {
    await collector.discardSpool();
  }

  return {
    digest: layer.digest,
    diffId: uncompressed.digest(),
    mediaType: layer.mediaType,
    compressedBytes: compressed.bytes,
    uncompressedBytes: uncompressed.bytes,
    extractorVersion: EXTRACTOR_VERSION,
    files: collector.files,
    whiteouts: collector.whiteouts,
    opaqueDirs: collector.opaqueDirs,
  };
}

/** Fails a layer whose uncompressed size outgrows its compressed size by more than the limit. */
class CompressionRatioGuard extends Transform {
  private bytes = 0;

  constructor(
    private readonly compressed: HashingStream,
    private readonly limits: Limits,
    private readonly digest: Digest,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    const { bombRatioGraceBytes, maxCompressionRatio } = this.limits;
    if (this.bytes > bombRatioGraceBytes && this.bytes > this.compressed.bytes * maxCompressionRatio) {
      callback(new LimitExceededError('maxCompressionRatio', maxCompressionRatio, `decompressed layer ${this.digest} (decompression bomb)`));
      return;
    }
    callback(null, chunk);
  }
}

const TAR_TYPES: Readonly<Record<string, FileType>> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'dir',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};

/** JSON bytes of one `LayerFile` besides its path and link target (keys, numbers, a sha256). */
const RECORD_BYTES_PER_ENTRY = 160;

/** Turns tar entries into `LayerFile`s, whiteouts and CAS blobs. */
class LayerCollector {
  readonly files: LayerFile[] = [];
  readonly whiteouts: string[] = [];
  readonly opaqueDirs: string[] = [];
  /** Regular files of this layer by path: hard links (which point backwards in a tar) copy from it. */
  private readonly regularFiles = new Map<string, LayerFile>();
  private readonly spoolFiles = new Set<string>();
  /** Bytes of paths and link targets recorded so far: what the layer record's JSON will hold. */
  private recordBytes = 0;

  constructor(private readonly options: ExtractOptions) {}

  async onEntry(header: tar.Header, content: AsyncIterable<Buffer>): Promise<void> {
    const { limits } = this.options;
    const entries = this.files.length + this.whiteouts.length + this.opaqueDirs.length;
    if (entries >= limits.maxEntriesPerLayer) {
      throw new LimitExceededError('maxEntriesPerLayer', limits.maxEntriesPerLayer, 'layer entry count');
    }
    // Each record (a JSON document in the embedded store) stays far below V8's string limit.
    this.recordBytes += RECORD_BYTES_PER_ENTRY + Buffer.byteLength(header.name) + Buffer.byteLength(header.linkname ?? '');
    if (this.recordBytes > limits.maxLayerRecordBytes) {
      throw new LimitExceededError('maxLayerRecordBytes', limits.maxLayerRecordBytes, 'paths and link targets of one layer');
    }
    const type = TAR_TYPES[header.type ?? 'file'];
    if (!type) throw new UnsupportedError(`tar entry ${JSON.stringify(header.name)} has unsupported type ${header.type}`);
    const entryPath = normaliseEntryPath(header.name, limits);
    if (entryPath === '/' && type !== 'dir') throw new UnsafePathError(header.name, 'a non-directory entry for the image root');

    const name = baseName(entryPath);
    if (name.startsWith(WHITEOUT_PREFIX)) {
      await drain(content);
      if (name === OPAQUE_MARKER) {
        this.opaqueDirs.push(parentOf(entryPath));
        return;
      }
      const hidden = name.slice(WHITEOUT_PREFIX.length);
      // A whiteout names one sibling; `.wh.`, `.wh..` or `.wh...` would name the dir or its parent.
      if (hidden === '' || hidden === '.' || hidden === '..') throw new UnsafePathError(header.name, 'whiteout of a directory itself');
      this.whiteouts.push(`${parentOf(entryPath) === '/' ? '' : parentOf(entryPath)}/${hidden}`);
      return;
    }

    const base = {
      path: entryPath,
      type,
      mode: (header.mode ?? 0) & 0o7777,
      uid: header.uid ?? 0,
      gid: header.gid ?? 0,
    };

    if (type === 'file') {
      const file = { ...base, ...(await this.readFile(content, entryPath)) };
      this.files.push(file);
      this.regularFiles.set(entryPath, file);
      return;
    }
    await drain(content);
    const linkname = header.linkname ?? '';
    if (Buffer.byteLength(linkname) > limits.maxPathBytes) {
      throw new LimitExceededError('maxPathBytes', limits.maxPathBytes, `link target of ${entryPath}`);
    }
    if (type === 'symlink') {
      // Symlink targets are data: resolution happens in the image tree, confined to the root.
      this.files.push({ ...base, size: 0, linkTarget: linkname });
    } else if (type === 'hardlink') {
      const target = normaliseEntryPath(linkname, limits);
      const source = this.regularFiles.get(target);
      this.files.push({
        ...base,
        size: source?.size ?? 0,
        linkTarget: target,
        ...(source?.sha256 ? { sha256: source.sha256 } : {}),
        ...(source?.kind ? { kind: source.kind } : {}),
        ...(source?.elfMachine ? { elfMachine: source.elfMachine } : {}),
        ...(source?.interpreter ? { interpreter: source.interpreter } : {}),
      });
    } else {
      this.files.push({ ...base, size: 0 });
    }
  }

  /** Hashes a regular file; keeps ELF files and scripts in the CAS. */
  private async readFile(
    content: AsyncIterable<Buffer>,
    entryPath: string,
  ): Promise<{ size: number; sha256: string } & Partial<Classification>> {
    const { cas, limits } = this.options;
    const hash = createHash('sha256');
    let size = 0;
    let head: Buffer | undefined;
    let classification: Classification | undefined;
    let kept: Buffer[] | undefined;
    let spool: { path: string; stream: WriteStream } | undefined;
    let keptBytes = 0;
    /** Kept only because a shell may source it: dropped (not an error) past maxShellScriptBytes. */
    let sourcedOnly = false;

    for await (const chunk of content) {
      size += chunk.length;
      hash.update(chunk);
      if (!classification) {
        head = head ? Buffer.concat([head, chunk]) : chunk;
        // Wait for enough bytes to classify; after the loop, short files are classified.
        if (head.length < limits.classifyHeadBytes) continue;
        classification = classify(head.subarray(0, limits.classifyHeadBytes));
        sourcedOnly = classification.kind === 'other' && !KEPT_FILES.has(entryPath) && mayBeSourced(entryPath);
        if (classification.kind !== 'other' || KEPT_FILES.has(entryPath) || sourcedOnly) kept = [head];
        keptBytes = head.length;
        head = undefined;
        if (sourcedOnly && keptBytes > limits.maxShellScriptBytes) kept = undefined;
        continue;
      }
      if (!kept && !spool) continue;
      keptBytes += chunk.length;
      if (sourcedOnly && keptBytes > limits.maxShellScriptBytes) {
        kept = undefined;
        continue;
      }
      if (keptBytes > limits.maxBlobBytes) {
        throw new LimitExceededError('maxBlobBytes', limits.maxBlobBytes, `file ${entryPath}`);
      }
      if (kept && keptBytes > IN_MEMORY_BLOB_BYTES) {
        spool = await this.openSpool();
        for (const held of kept) await write(spool.stream, held);
        kept = undefined;
      }
      if (spool) await write(spool.stream, chunk);
      else kept?.push(chunk);
    }
    if (!classification) {
      classification = classify(head ?? Buffer.alloc(0));
      sourcedOnly = classification.kind === 'other' && !KEPT_FILES.has(entryPath) && mayBeSourced(entryPath);
      if (classification.kind !== 'other' || KEPT_FILES.has(entryPath) || (sourcedOnly && size <= limits.maxShellScriptBytes)) kept = head ? [head] : [];
    }
    const sha256 = hash.digest('hex');
    if (spool) {
      await new Promise<void>((resolve, reject) => spool.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
      await cas.putFile(sha256, spool.path);
      this.spoolFiles.delete(spool.path);
    } else if (kept) {
      await cas.put(sha256, Buffer.concat(kept));
    }
    return { size, sha256, ...classification };
  }

  private async openSpool(): Promise<{ path: string; stream: WriteStream }> {
    const spoolDir = this.options.cas.spoolDir;
    await fs.mkdir(spoolDir, { recursive: true });
    const spoolPath = path.join(spoolDir, `layer-${randomUUID()}`);
    this.spoolFiles.add(spoolPath);
    return { path: spoolPath, stream: createWriteStream(spoolPath) };
  }

  async discardSpool(): Promise<void> {
    await Promise.all([...this.spoolFiles].map((file) => fs.rm(file, { force: true })));
  }
}

function write(stream: WriteStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

async function drain(content: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of content) {
    // Content of non-regular entries is skipped; its length was bounded by the tar reader.
  }
}
