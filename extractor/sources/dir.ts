/**
 * `dir:/path`: a plain root filesystem on disk. It becomes one synthetic uncompressed layer,
 * streamed as a tar of the tree (symlinks recorded, never followed); the image config comes from
 * the user (`--entrypoint`, `--cmd`, `--env`, `--workdir`, `--user`).
 * The layer's digest is the SHA-256 of a listing (path, type, mode, size, mtime, link) rather than
 * of the tar, so that a rescan of an unchanged tree is recognised without reading every file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';
import { fileError, InvalidInputError, LimitExceededError, NotFoundError } from '../../infra/errors.js';
import type { Limits } from '../../infra/limits.js';
import type { SourceReference } from '../reference.js';
import type { ImageSource } from '../source.js';
import { sha256Digest } from '../streams.js';
import type { ImageConfig, LayerDescriptor, OpenedImage } from '../types.js';

type DirReference = Extract<SourceReference, { transport: 'dir' }>;

interface TreeEntry {
  readonly relative: string;
  readonly stat: import('node:fs').Stats;
  readonly linkTarget?: string;
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const dirSource: ImageSource<DirReference> = {
  transport: 'dir',
  async open(reference, options): Promise<OpenedImage> {
    const root = path.resolve(reference.path);
    const stat = await fs.stat(root).catch((err: unknown) => {
      throw new NotFoundError(`dir:${root}: no such directory`, { cause: err });
    });
    if (!stat.isDirectory()) throw new InvalidInputError(`dir:${root} is not a directory`);
    const entries = await walk(root, options.limits);
    const listing = createHash('sha256');
    for (const { relative, stat: s, linkTarget } of entries) {
      listing.update(`${relative}\0${s.mode}\0${s.size}\0${s.mtimeMs}\0${s.uid}:${s.gid}\0${linkTarget ?? ''}\n`);
    }
    const layer: LayerDescriptor = {
      digest: `sha256:${listing.digest('hex')}`,
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      size: 0,
    };
    const given = options.dirConfig ?? {};
    const config: ImageConfig = {
      platform: options.platform,
      entrypoint: given.entrypoint ?? null,
      cmd: given.cmd ?? null,
      env: given.env ?? [DEFAULT_PATH],
      workingDir: given.workingDir ?? '',
      user: given.user ?? '',
      healthcheck: null,
      labels: {},
      // No diff_id: the tar is made here from the tree, so there is nothing independent to check
      // it against (the listing digest names the layer, not its bytes).
      diffIds: [],
    };
    const configDigest = sha256Digest(Buffer.from(JSON.stringify(config)));
    return {
      reference: `dir:${root}`,
      // What the scan cache keys on: the config and the listing together.
      manifestDigest: sha256Digest(Buffer.from(JSON.stringify({ config: configDigest, layers: [layer.digest] }))),
      configDigest,
      config,
      layers: [layer],
      openLayer: async () => packTree(root, entries),
      close: async () => {},
    };
  },
};

/**
 * Lists the tree, each directory's entries in sorted order and every directory before what it
 * holds (iteratively: depth comes from the input), without
 * following symlinks or leaving the device. Names are read as bytes: one that is not valid UTF-8
 * (tar and the image tree hold text) is an `InvalidInputError`, and a path past `maxPathBytes` or
 * `maxPathDepth` a `LimitExceededError`, before the file is touched.
 */
async function walk(root: string, limits: Limits): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const rootDevice = (await fs.lstat(root)).dev;
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  // Directories still to list; each is listed when popped, its children pushed in reverse order.
  const pending: { relative: string; depth: number }[] = [{ relative: '', depth: 0 }];
  const where = (relative: string): string => `dir:${root}${relative ? `/${relative}` : ''}`;
  // Bytes of the tar packTree will make, at least (a header per entry, data padded to 512): the one
  // layer of the tree is bounded by its sizes before a file is read, so that a huge (even sparse) file is
  // refused at once instead of streamed until a limit of the extraction trips.
  let tarBytes = 1024;
  while (pending.length > 0) {
    const { relative, depth } = pending.pop()!;
    let raw: Buffer[];
    try {
      raw = await fs.readdir(path.join(root, relative), { encoding: 'buffer' });
    } catch (err) {
      throw treeError(err, where(relative), 'directory', 'list');
    }
    const names = raw.map((bytes) => {
      try {
        return utf8.decode(bytes);
      } catch {
        throw new InvalidInputError(`${where(relative)}: the name ${JSON.stringify(bytes.toString('latin1'))} is not valid UTF-8; image file names must be`);
      }
    });
    const children: { relative: string; depth: number }[] = [];
    for (const name of names.sort()) {
      const child = relative ? `${relative}/${name}` : name;
      if (Buffer.byteLength(child) + 1 > limits.maxPathBytes) throw new LimitExceededError('maxPathBytes', limits.maxPathBytes, where(child));
      if (depth + 1 > limits.maxPathDepth) throw new LimitExceededError('maxPathDepth', limits.maxPathDepth, where(child));
      if (entries.length >= limits.maxEntriesPerLayer) throw new LimitExceededError('maxEntriesPerLayer', limits.maxEntriesPerLayer, `dir:${root}`);
      let stat: import('node:fs').Stats;
      try {
        stat = await fs.lstat(path.join(root, child));
      } catch (err) {
        // Removed while listed, or unreadable: the tree is not what it was a moment ago.
        throw treeError(err, where(child), 'file', 'stat');
      }
      const linkTarget = stat.isSymbolicLink() ? await fs.readlink(path.join(root, child)) : undefined;
      if (linkTarget !== undefined && Buffer.byteLength(linkTarget) > limits.maxPathBytes) throw new LimitExceededError('maxPathBytes', limits.maxPathBytes, `link target of ${where(child)}`);
      tarBytes += 512 + (stat.isFile() ? Math.ceil(stat.size / 512) * 512 : 0);
      for (const [name, max] of [['maxLayerBlobBytes', limits.maxLayerBlobBytes], ['maxLayerTarBytes', limits.maxLayerTarBytes]] as const) {
        if (tarBytes > max) throw new LimitExceededError(name, max, `the tree of ${where('')} (${where(child)} is ${stat.size} bytes)`);
      }
      entries.push({ relative: child, stat, ...(linkTarget !== undefined ? { linkTarget } : {}) });
      if (stat.isDirectory() && stat.dev === rootDevice) children.push({ relative: child, depth: depth + 1 });
    }
    // The first child directory is listed next.
    for (let i = children.length - 1; i >= 0; i--) pending.push(children[i]!);
  }
  return entries;
}

/**
 * A file or directory of the tree that cannot be listed, stat'ed or read: permission-denied (the
 * user may not read it) or not-found (gone meanwhile), named, as fileError words them; anything
 * else (ENAMETOOLONG, ELOOP, ...) is the tree's own fault: invalid-input.
 */
function treeError(err: unknown, where: string, what: 'file' | 'directory', verb: 'list' | 'stat' | 'read'): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'ENOENT' || code === 'ENOTDIR') return fileError(err, where, what);
  return new InvalidInputError(`${where}: cannot ${verb} (${code ?? String(err)})`, { cause: err });
}

function packTree(root: string, entries: readonly TreeEntry[]): Readable {
  const pack = tar.pack();
  const output = new PassThrough({ highWaterMark: 1024 * 1024 });
  // The consumer may stop reading midway (a limit, a digest, an abort): the file being read is then
  // closed and the walk ends, leaving no descriptor open and no entry waiting for ever.
  let reading: ReturnType<typeof createReadStream> | undefined;
  let stopped = false;
  output.once('close', () => {
    stopped = true;
    reading?.destroy();
    pack.destroy();
  });
  (async () => {
    for (const { relative, stat, linkTarget } of entries) {
      if (stopped) return;
      const header = { name: relative, mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, mtime: stat.mtime };
      if (stat.isDirectory()) pack.entry({ ...header, type: 'directory' });
      else if (stat.isSymbolicLink()) pack.entry({ ...header, type: 'symlink', linkname: linkTarget ?? '' });
      // An empty file has no bytes to read (and a read stream cannot be bounded to none).
      else if (stat.isFile() && stat.size === 0) pack.entry({ ...header, type: 'file', size: 0 }, Buffer.alloc(0));
      else if (stat.isFile()) {
        const sink = pack.entry({ ...header, type: 'file', size: stat.size });
        await new Promise<void>((resolve, reject) => {
          // No more than the size listed (and written in the tar header): bytes appended since
          // would run past the entry and be read as the tar's next headers.
          const input = createReadStream(path.join(root, relative), { start: 0, end: stat.size - 1 });
          reading = input;
          // A file the user cannot read fails the scan naming it (permission-denied): left out, it
          // could be a program the entrypoint runs.
          input.on('error', (err) => reject(treeError(err, `dir:${path.join(root, relative)}`, 'file', 'read')));
          input.on('close', () => {
            if (!input.readableEnded) reject(new Error(`${relative}: closed before it was packed`));
          });
          sink.on('error', reject);
          sink.on('finish', () => resolve());
          input.pipe(sink as unknown as NodeJS.WritableStream);
        });
      } else if (stat.isFIFO()) pack.entry({ ...header, type: 'fifo' });
      // Sockets and device nodes of a host directory carry no code: they are left out.
    }
    pack.finalize();
  })().catch((err: unknown) => output.destroy(err as Error));
  pack.on('error', (err: Error) => output.destroy(err));
  return (pack as unknown as Readable).pipe(output);
}

