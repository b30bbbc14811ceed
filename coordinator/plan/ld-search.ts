/**
 * Library search inside an image, as the dynamic loaders do it.
 * glibc (ld.so(8)): DT_RPATH (when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the image's
 * /etc/ld.so.cache, then the default directories. musl (ldso/dynlink.c): LD_LIBRARY_PATH, RPATH and
 * RUNPATH, the loader's path file /etc/ld-musl-<arch>.path, then /lib:/usr/local/lib:/usr/lib.
 * `$ORIGIN` expands to the directory of the object that needs the library.
 */
import { parentOf } from '../../extractor/paths.js';
import type { ImageTree, TreeFile } from './image-tree.js';

/** glibc's trusted directories on Debian multiarch (x86_64), searched after the cache. */
const GLIBC_DEFAULT_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
const MUSL_DEFAULT_DIRS = ['/lib', '/usr/local/lib', '/usr/lib'];

export interface SearchContext {
  readonly tree: ImageTree;
  /** LD_LIBRARY_PATH of the image's environment, split. */
  readonly libraryPath: readonly string[];
  /** Library name → path, from the image's /etc/ld.so.cache (glibc). */
  readonly cache: ReadonlyMap<string, string>;
  /** Directories from /etc/ld-musl-*.path (musl). */
  readonly muslPath: readonly string[] | undefined;
}

export interface Requester {
  readonly path: string;
  readonly rpath: readonly string[];
  readonly runpath: readonly string[];
  /** The loader that will resolve this object's dependencies (its PT_INTERP, or the program's). */
  readonly loader: 'glibc' | 'musl';
}

function expandOrigin(dir: string, origin: string): string {
  return dir.replace(/\$(ORIGIN|\{ORIGIN\})/g, origin);
}

/** The file a DT_NEEDED name (or a dlopen name) resolves to, or undefined. */
export function findLibrary(name: string, requester: Requester, context: SearchContext): { path: string; file: TreeFile } | undefined {
  const tryPath = (candidate: string): { path: string; file: TreeFile } | undefined => {
    const file = safeResolve(context.tree, candidate);
    return file?.type === 'file' && file.kind === 'elf' ? { path: candidate, file } : undefined;
  };
  if (name.includes('/')) return tryPath(name.startsWith('/') ? name : `${parentOf(requester.path)}/${name}`);
  const origin = parentOf(requester.path);
  const dirs: string[] = [];
  if (requester.loader === 'glibc') {
    if (requester.runpath.length === 0) dirs.push(...requester.rpath);
    dirs.push(...context.libraryPath, ...requester.runpath);
  } else {
    dirs.push(...context.libraryPath, ...requester.rpath, ...requester.runpath);
  }
  for (const dir of dirs) {
    const found = tryPath(`${expandOrigin(dir, origin)}/${name}`);
    if (found) return found;
  }
  if (requester.loader === 'glibc') {
    const cached = context.cache.get(name);
    if (cached) {
      const found = tryPath(cached);
      if (found) return found;
    }
  }
  for (const dir of requester.loader === 'glibc' ? GLIBC_DEFAULT_DIRS : (context.muslPath ?? MUSL_DEFAULT_DIRS)) {
    const found = tryPath(`${dir}/${name}`);
    if (found) return found;
  }
  return undefined;
}

/** `resolve` that treats a symlink loop as absence (the loader would fail with ELOOP there too). */
export function safeResolve(tree: ImageTree, path: string): TreeFile | undefined {
  try {
    return tree.tryResolve(path);
  } catch {
    return undefined;
  }
}

/**
 * Parses glibc's /etc/ld.so.cache (the "glibc-ld.so.cache1.1" format of ldconfig, glibc
 * `elf/cache.c`): a header, then 24-byte entries whose key and value are string offsets from the
 * start of the file. The old "ld.so-1.7.0" prefix, when present, is skipped. Bounded: at most
 * `maxEntries` entries (`truncated` says more were declared), each string searched for its NUL
 * within 4 KiB only, and bad offsets end the parse with what was read.
 */
export function parseLdSoCache(bytes: Buffer, maxEntries: number): { entries: Map<string, string>; truncated: boolean } {
  const entries = new Map<string, string>();
  const magic = 'glibc-ld.so.cache1.1';
  const base = bytes.indexOf(magic, 0, 'latin1');
  if (base < 0 || base > 1 << 20) return { entries, truncated: false };
  const count = bytes.length >= base + 24 ? bytes.readUInt32LE(base + 20) : 0;
  const entriesStart = base + 48;
  const readString = (offset: number): string | undefined => {
    if (offset <= base || offset >= bytes.length) return undefined;
    const end = bytes.subarray(offset, offset + 4097).indexOf(0);
    return end < 0 ? undefined : bytes.toString('latin1', offset, offset + end);
  };
  const readable = Math.min(count, maxEntries);
  for (let i = 0; i < readable && entriesStart + (i + 1) * 24 <= bytes.length; i++) {
    const at = entriesStart + i * 24;
    // String offsets count from the new-format header (glibc `elf/dl-cache.c`: cache_data = cache_new).
    const key = readString(base + bytes.readUInt32LE(at + 4));
    const value = readString(base + bytes.readUInt32LE(at + 8));
    // The first entry for a name wins: ldconfig sorts the preferred (best hwcap) match first.
    if (key && value && !entries.has(key)) entries.set(key, value);
  }
  return { entries, truncated: count > maxEntries };
}
