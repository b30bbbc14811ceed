/**
 * The merged file tree of an image: layer records applied bottom first, with whiteouts and opaque
 * directories (OCI image spec `layer.md`, "Whiteouts"), the way Docker's layer applier does it.
 *
 * Invariants: every path is absolute and inside the image; path resolution follows symlinks as a
 * process chrooted into the image would (absolute targets restart at the image root, `..` at the
 * root stays there), so no link can point outside; at most `maxSymlinkHops` links per resolution.
 */
import { pathComponents } from '../../extractor/paths.js';
import type { FileKind, FileType, LayerFile, LayerRecord } from '../../extractor/types.js';
import { InvalidInputError, LimitExceededError, NotFoundError } from '../../infra/errors.js';
import type { Limits } from '../../infra/limits.js';

/** One path of the merged tree. Hard links appear as regular files with `hardlinkTo` set. */
export interface TreeFile {
  readonly path: string;
  readonly type: Exclude<FileType, 'hardlink'>;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly linkTarget?: string;
  readonly hardlinkTo?: string;
  readonly sha256?: string;
  readonly kind?: FileKind;
  readonly elfMachine?: string;
  readonly interpreter?: string;
  /** Index of the layer that last wrote this path. */
  readonly layer: number;
}

interface DirNode {
  readonly kind: 'dir';
  meta: TreeFile;
  readonly children: Map<string, Node>;
  /**
   * Directories from the root to this one in the tree (not in its path: a parent reached through
   * a symlink puts a child deeper than its path says). Bounded by `maxPathDepth`, so that no walk
   * of the tree, and no path it builds, grows without bound.
   */
  readonly depth: number;
}

interface LeafNode {
  readonly kind: 'leaf';
  readonly meta: TreeFile;
}

type Node = DirNode | LeafNode;

export class SymlinkLoopError extends InvalidInputError {}

const IMPLICIT_DIR = { type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 } as const;

export class ImageTree {
  private readonly root: DirNode = { kind: 'dir', meta: { ...IMPLICIT_DIR, path: '/', layer: -1 }, children: new Map(), depth: 0 };
  private fileCount = 0;

  constructor(private readonly limits: Limits) {}

  static fromLayers(records: readonly LayerRecord[], limits: Limits): ImageTree {
    const tree = new ImageTree(limits);
    records.forEach((record, index) => tree.applyLayer(record, index));
    return tree;
  }

  /** Whiteouts hide lower layers only, so they go first; then the layer's own entries, in tar order. */
  applyLayer(record: LayerRecord, layer: number): void {
    for (const dir of record.opaqueDirs) {
      const node = this.lookup(dir, true);
      if (node?.kind === 'dir') {
        this.fileCount -= countBelow(node);
        node.children.clear();
      }
    }
    for (const deleted of record.whiteouts) {
      const parent = this.lookupParent(deleted);
      const name = lastComponent(deleted);
      const victim = parent?.children.get(name);
      if (parent && victim) {
        this.fileCount -= 1 + (victim.kind === 'dir' ? countBelow(victim) : 0);
        parent.children.delete(name);
      }
    }
    for (const file of record.files) this.add(file, layer);
  }

  private add(file: LayerFile, layer: number): void {
    if (file.path === '/') {
      this.root.meta = { ...this.root.meta, mode: file.mode, uid: file.uid, gid: file.gid, layer };
      return;
    }
    const parent = this.ensureParent(file.path, layer);
    const name = lastComponent(file.path);
    const existing = parent.children.get(name);
    const meta = this.toTreeFile(file, layer);
    if (existing?.kind === 'dir' && meta.type === 'dir') {
      existing.meta = meta;
      return;
    }
    if (existing) this.fileCount -= 1 + (existing.kind === 'dir' ? countBelow(existing) : 0);
    if (this.fileCount >= this.limits.maxFilesPerImage) {
      throw new LimitExceededError('maxFilesPerImage', this.limits.maxFilesPerImage, 'merged image tree');
    }
    parent.children.set(name, meta.type === 'dir' ? { kind: 'dir', meta, children: new Map(), depth: this.childDepth(parent, file.path) } : { kind: 'leaf', meta });
    this.fileCount++;
  }

  /** A hard link takes its content from its target, which the tar wrote earlier (or a lower layer). */
  private toTreeFile(file: LayerFile, layer: number): TreeFile {
    const { type, linkTarget, ...rest } = file;
    if (type !== 'hardlink') return { ...rest, type, layer, ...(linkTarget !== undefined ? { linkTarget } : {}) };
    const target = linkTarget ? this.lookup(linkTarget, false) : undefined;
    if (target?.kind !== 'leaf' || target.meta.type !== 'file') {
      throw new InvalidInputError(`hard link ${file.path} points to ${JSON.stringify(linkTarget)}, which is not a regular file`);
    }
    const { path: _path, layer: _layer, hardlinkTo: _h, ...content } = target.meta;
    return { ...content, path: file.path, mode: file.mode, uid: file.uid, gid: file.gid, layer, hardlinkTo: linkTarget };
  }

  /** The directory that will hold `path`, created as Docker's applier does (`MkdirAll`) if missing. */
  private ensureParent(path: string, layer: number): DirNode {
    const parts = pathComponents(path);
    parts.pop();
    let dir = this.root;
    let walked = '';
    for (const part of parts) {
      walked += `/${part}`;
      let child = dir.children.get(part);
      if (child?.kind === 'leaf' && child.meta.type === 'symlink') {
        const resolved = this.lookup(walked, true);
        if (resolved?.kind !== 'dir') {
          throw new InvalidInputError(`${path}: parent ${walked} is a symlink to ${JSON.stringify(child.meta.linkTarget)}, not a directory`);
        }
        child = resolved;
      }
      if (!child) {
        if (this.fileCount >= this.limits.maxFilesPerImage) {
          throw new LimitExceededError('maxFilesPerImage', this.limits.maxFilesPerImage, 'merged image tree');
        }
        child = { kind: 'dir', meta: { ...IMPLICIT_DIR, path: walked, layer }, children: new Map(), depth: this.childDepth(dir, path) };
        dir.children.set(part, child);
        this.fileCount++;
      }
      if (child.kind !== 'dir') throw new InvalidInputError(`${path}: parent ${walked} is a ${child.meta.type}, not a directory`);
      dir = child;
    }
    return dir;
  }

  private childDepth(parent: DirNode, path: string): number {
    if (parent.depth >= this.limits.maxPathDepth) {
      throw new LimitExceededError('maxPathDepth', this.limits.maxPathDepth, `${path}: directories nested through symlinked parents`);
    }
    return parent.depth + 1;
  }

  private lookupParent(path: string): DirNode | undefined {
    const parts = pathComponents(path);
    parts.pop();
    const parent = this.lookup('/' + parts.join('/'), true);
    return parent?.kind === 'dir' ? parent : undefined;
  }

  /**
   * Resolves `path` inside the image, following symlinks in every component (and in the last one
   * when `followLast`). Returns undefined when a component is missing.
   */
  private lookup(path: string, followLast: boolean): Node | undefined {
    return this.resolveNode(path, followLast)?.node;
  }

  private resolveNode(path: string, followLast: boolean): { node: Node; path: string } | undefined {
    let hops = 0;
    let pending = pathComponents(normalisePath(path));
    let stack: DirNode[] = [this.root];
    let names: string[] = [];
    while (pending.length > 0) {
      const part = pending.shift()!;
      if (part === '.' || part === '') continue;
      if (part === '..') {
        // chroot semantics: `..` of the root is the root.
        if (stack.length > 1) {
          stack.pop();
          names.pop();
        }
        continue;
      }
      const dir = stack[stack.length - 1]!;
      const child = dir.children.get(part);
      if (!child) return undefined;
      const isLast = pending.length === 0;
      if (child.kind === 'leaf' && child.meta.type === 'symlink' && (!isLast || followLast)) {
        if (++hops > this.limits.maxSymlinkHops) {
          throw new SymlinkLoopError(`too many levels of symbolic links resolving ${path}`);
        }
        const target = child.meta.linkTarget ?? '';
        const targetParts = pathComponents(normalisePath(target.startsWith('/') ? target : `/${target}`));
        if (target.startsWith('/')) {
          stack = [this.root];
          names = [];
        }
        pending = [...targetParts, ...pending];
        continue;
      }
      if (isLast) return { node: child, path: '/' + [...names, part].join('/') };
      if (child.kind !== 'dir') return undefined;
      stack.push(child);
      names.push(part);
    }
    return { node: stack[stack.length - 1]!, path: '/' + names.join('/') };
  }

  /** The file at `path` after following every symlink, confined to the image; throws if absent. */
  resolve(path: string): TreeFile {
    const found = this.resolveNode(path, true);
    if (!found) throw new NotFoundError(`${path}: no such file in the image`);
    return { ...found.node.meta, path: found.path };
  }

  /** Like `resolve`, but undefined when missing. */
  tryResolve(path: string): TreeFile | undefined {
    const found = this.resolveNode(path, true);
    return found ? { ...found.node.meta, path: found.path } : undefined;
  }

  /** The entry at `path` itself (a symlink stays a symlink); parents are still resolved. */
  lstat(path: string): TreeFile | undefined {
    const found = this.resolveNode(path, false);
    return found ? { ...found.node.meta, path: found.path } : undefined;
  }

  get size(): number {
    return this.fileCount;
  }

  /** Every path except the root, depth-first in byte order of names: stable across runs. */
  /** Every file, depth first in sorted order; iterative (an explicit stack), whatever the depth. */
  *files(): Generator<TreeFile> {
    const stack: { readonly dir: DirNode; readonly prefix: string; readonly names: string[]; next: number }[] = [
      { dir: this.root, prefix: '', names: [...this.root.children.keys()].sort(), next: 0 },
    ];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next >= top.names.length) {
        stack.pop();
        continue;
      }
      const name = top.names[top.next++]!;
      const node = top.dir.children.get(name)!;
      const path = `${top.prefix}/${name}`;
      yield { ...node.meta, path };
      if (node.kind === 'dir') stack.push({ dir: node, prefix: path, names: [...node.children.keys()].sort(), next: 0 });
    }
  }
}

function countBelow(dir: DirNode): number {
  let count = 0;
  const pending: DirNode[] = [dir];
  while (pending.length > 0) {
    for (const child of pending.pop()!.children.values()) {
      count++;
      if (child.kind === 'dir') pending.push(child);
    }
  }
  return count;
}

function lastComponent(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Lexical clean-up only (`//`, `.`); `..` is kept for the resolver, which knows about symlinks. */
function normalisePath(path: string): string {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  return '/' + parts.join('/');
}
