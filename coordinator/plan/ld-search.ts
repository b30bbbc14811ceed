/**
 * Library search inside an image, as the dynamic loaders do it.
 * glibc (ld.so(8)): DT_RPATH (when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the image's
 * /etc/ld.so.cache, then the default directories. musl (ldso/dynlink.c): LD_LIBRARY_PATH, RPATH and
 * RUNPATH, the loader's path file /etc/ld-musl-<arch>.path, then /lib:/usr/local/lib:/usr/lib.
 * `$ORIGIN` expands to the directory of the object that needs the library. A name with `/` is a
 * path, opened as is: relative to the process's working directory (both loaders).
 *
 * The cost of one lookup is bounded by the number of search directories, not by what they spell:
 * each directory is resolved in the tree once per image (memoised), a directory that resolves
 * where one already tried did is not tried again, and a candidate the kernel could not open
 * (longer than PATH_MAX) is neither built nor looked up.
 */
import { parentOf } from '../../extractor/paths.js';
import type { ImageTree, TreeFile } from './image-tree.js';

/** glibc's trusted directories on Debian multiarch (x86_64), searched after the cache. */
const GLIBC_DEFAULT_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
const MUSL_DEFAULT_DIRS = ['/lib', '/usr/local/lib', '/usr/lib'];
/**
 * PATH_MAX of Linux (include/uapi/linux/limits.h), the terminating NUL included: a longer path
 * fails with ENAMETOOLONG before any lookup, so no loader can find a library there.
 */
const PATH_MAX = 4096;
const ORIGIN = /\$(ORIGIN|\{ORIGIN\})/g;

export interface SearchContext {
  readonly tree: ImageTree;
  /** LD_LIBRARY_PATH of the image's environment, split. */
  readonly libraryPath: readonly string[];
  /** Library name → path, from the image's /etc/ld.so.cache (glibc). */
  readonly cache: ReadonlyMap<string, string>;
  /** Directories from /etc/ld-musl-*.path (musl). */
  readonly muslPath: readonly string[] | undefined;
  /** The process's working directory (the image's WorkingDir; `/` when absent, as runc does). */
  readonly workingDir?: string;
}

export interface Requester {
  readonly path: string;
  readonly rpath: readonly string[];
  readonly runpath: readonly string[];
  /** The loader that will resolve this object's dependencies (its PT_INTERP, or the program's). */
  readonly loader: 'glibc' | 'musl';
}

/**
 * `dir` with `$ORIGIN` expanded, or undefined when the result would be longer than `max`.
 * Invariant: nothing longer than `max` is built — 585 `$ORIGIN`s in one 4 KiB DT_RPATH entry,
 * expanded from a 4 KiB-deep directory, would otherwise be a 2.4 MB string per entry and lookup.
 */
function expandOrigin(dir: string, origin: string, max: number): string | undefined {
  if (dir.length > max) return undefined;
  if (!dir.includes('$')) return dir;
  let length = dir.length;
  for (const token of dir.match(ORIGIN) ?? []) length += origin.length - token.length;
  return length > max ? undefined : dir.replace(ORIGIN, origin);
}

/** Bound of the memo below (entries); past it the memo starts again (only speed is lost). */
const MAX_REMEMBERED_DIRS = 1 << 18;
/** Per image tree (trees do not change once built): search directory → its resolved path, or null when it is not a directory. */
const resolvedDirs = new WeakMap<ImageTree, Map<string, string | null>>();

/** Where search directory `dir` is in the image after following its symlinks, or undefined if it is not a directory there. */
function searchDirectory(tree: ImageTree, dir: string): string | undefined {
  let memo = resolvedDirs.get(tree);
  if (!memo) resolvedDirs.set(tree, (memo = new Map()));
  let resolved = memo.get(dir);
  if (resolved === undefined) {
    const file = safeResolve(tree, dir);
    resolved = file?.type === 'dir' ? file.path : null;
    if (memo.size >= MAX_REMEMBERED_DIRS) memo.clear();
    memo.set(dir, resolved);
  }
  return resolved ?? undefined;
}

/** The file a DT_NEEDED name (or a dlopen name) resolves to, or undefined. */
export function findLibrary(name: string, requester: Requester, context: SearchContext): { path: string; file: TreeFile } | undefined {
  /** `candidate` is the path as the loader spells it (reported); `lookup` the same file, resolved. */
  const tryPath = (candidate: string, lookup = candidate): { path: string; file: TreeFile } | undefined => {
    if (candidate.length >= PATH_MAX) return undefined;
    const file = safeResolve(context.tree, lookup);
    return file?.type === 'file' && file.kind === 'elf' ? { path: candidate, file } : undefined;
  };
  if (name.includes('/')) {
    const cwd = context.workingDir || '/';
    return tryPath(name.startsWith('/') ? name : `${cwd === '/' ? '' : cwd}/${name}`);
  }
  const origin = parentOf(requester.path);
  const dirs: string[] = [];
  if (requester.loader === 'glibc') {
    if (requester.runpath.length === 0) dirs.push(...requester.rpath);
    dirs.push(...context.libraryPath, ...requester.runpath);
  } else {
    dirs.push(...context.libraryPath, ...requester.rpath, ...requester.runpath);
  }
  // Canonical directories already tried for this name: trying one again finds nothing new.
  const tried = new Set<string>();
  const inDirectory = (dir: string): { path: string; file: TreeFile } | undefined => {
    // `<dir>/<name>` and its NUL must fit PATH_MAX.
    const expanded = expandOrigin(dir, origin, PATH_MAX - 2 - name.length);
    if (expanded === undefined) return undefined;
    const at = searchDirectory(context.tree, expanded);
    if (at === undefined || tried.has(at)) return undefined;
    tried.add(at);
    // Looked up from the resolved directory: a 4 KiB entry of `/..` is resolved once per image,
    // not once per name. (Symlink hops of the directory and of the name are counted apart.)
    return tryPath(`${expanded}/${name}`, `${at === '/' ? '' : at}/${name}`);
  };
  for (const dir of dirs) {
    const found = inDirectory(dir);
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
    const found = inDirectory(dir);
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
