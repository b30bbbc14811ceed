/**
 * Read-only access to the members of an image archive, whether it is a directory (an OCI layout
 * on disk) or a tar file (`docker save` output, an OCI layout tarball). Members are read by their
 * archive path; nothing is extracted, and no path can reach outside the archive.
 */
import { constants as fsConstants, createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { asInputError, InvalidInputError, LimitExceededError, NotFoundError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';
import { normaliseEntryPath } from './paths.js';
import { indexTarFile, type TarMember } from './tar-index.js';

export interface ArchiveFs {
  /** Size of a regular member, or undefined when there is none at that path. */
  sizeOf(member: string): Promise<number | undefined>;
  /** Reads a small member whole, refusing more than `maxBytes`. */
  readSmall(member: string, maxBytes: number, limitName: string): Promise<Buffer>;
  /** Streams a member's bytes. */
  open(member: string): Promise<Readable>;
  /** First bytes of a member (to sniff compression). */
  head(member: string, bytes: number): Promise<Buffer>;
}

/** Opens `location` as a directory archive or a tar archive, whichever it is. */
export async function openArchive(location: string, limits: Limits): Promise<ArchiveFs> {
  let stat;
  try {
    stat = await fs.stat(location);
  } catch (err) {
    throw new NotFoundError(`${location}: no such file or directory`, { cause: err });
  }
  if (stat.isDirectory()) return new DirectoryArchive(location, limits);
  if (stat.isFile()) return TarArchive.index(location, limits);
  throw new InvalidInputError(`${location} is neither a directory nor a tar file`);
}

/**
 * The bytes of an empty member: none, and nothing opened (a read stream cannot be bounded to zero
 * bytes: `{ start: 1, end: 0 }` throws ERR_OUT_OF_RANGE, a raw RangeError).
 */
function emptyMember(): Readable {
  return Readable.from([], { objectMode: false });
}

class DirectoryArchive implements ArchiveFs {
  private rootReal: Promise<string> | undefined;

  constructor(
    private readonly root: string,
    private readonly limits: Limits,
  ) {}

  /**
   * The member's host path, confined to the root: the path must resolve to itself below the
   * root's real path (no symlink anywhere below the root, so nothing outside it is reached through
   * a symlinked file or parent directory), and name a regular file (no device, FIFO or socket).
   */
  private async locate(member: string): Promise<{ file: string; size: number } | undefined> {
    const relative = normaliseEntryPath(member, this.limits).slice(1);
    const root = await (this.rootReal ??= fs.realpath(this.root));
    const file = path.join(root, relative);
    let real: string;
    try {
      real = await fs.realpath(file);
    } catch {
      return undefined;
    }
    if (real !== file) throw new InvalidInputError(`${this.root}: member ${member} is reached through a symlink (${real}); archive directories are read without following links`);
    const stat = await fs.lstat(file);
    return stat.isFile() ? { file, size: stat.size } : undefined;
  }

  private async require(member: string): Promise<{ file: string; size: number }> {
    const found = await this.locate(member);
    if (!found) throw new NotFoundError(`${this.root}: no regular file ${member}`);
    return found;
  }

  async sizeOf(member: string): Promise<number | undefined> {
    return (await this.locate(member))?.size;
  }

  async readSmall(member: string, maxBytes: number, limitName: string): Promise<Buffer> {
    const { size } = await this.require(member);
    if (size > maxBytes) throw new LimitExceededError(limitName, maxBytes, `${member} in ${this.root}`);
    // At most the size checked above, even if the file grew since.
    return this.head(member, size);
  }

  async open(member: string): Promise<Readable> {
    const { file, size } = await this.require(member);
    if (size === 0) return emptyMember();
    return createReadStream(file, { start: 0, end: size - 1, highWaterMark: 1024 * 1024 });
  }

  async head(member: string, bytes: number): Promise<Buffer> {
    const { file, size } = await this.require(member);
    const handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const length = Math.min(bytes, size);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }
}

/** A tar archive indexed once from its headers (tar-index.ts); members are then read as byte ranges. */
class TarArchive implements ArchiveFs {
  private constructor(
    private readonly file: string,
    private readonly members: ReadonlyMap<string, TarMember>,
    private readonly limits: Limits,
  ) {}

  static async index(file: string, limits: Limits): Promise<TarArchive> {
    try {
      return new TarArchive(file, await indexTarFile(file, limits), limits);
    } catch (err) {
      throw asInputError(err, `archive ${file}`);
    }
  }

  private lookup(member: string): TarMember | undefined {
    return this.members.get(normaliseEntryPath(member, this.limits));
  }

  private require(member: string): TarMember {
    const found = this.lookup(member);
    if (!found) throw new NotFoundError(`${this.file}: no member ${member}`);
    return found;
  }

  async sizeOf(member: string): Promise<number | undefined> {
    return this.lookup(member)?.size;
  }

  async readSmall(member: string, maxBytes: number, limitName: string): Promise<Buffer> {
    const { size } = this.require(member);
    if (size > maxBytes) throw new LimitExceededError(limitName, maxBytes, `${member} in ${this.file}`);
    return this.head(member, size);
  }

  async open(member: string): Promise<Readable> {
    const { offset, size } = this.require(member);
    if (size === 0) return emptyMember();
    return createReadStream(this.file, { start: offset, end: offset + size - 1, highWaterMark: 1024 * 1024 });
  }

  async head(member: string, bytes: number): Promise<Buffer> {
    const { offset, size } = this.require(member);
    const length = Math.min(bytes, size);
    const handle = await fs.open(this.file, 'r');
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      if (bytesRead !== length) throw new InvalidInputError(`${this.file}: member ${member} is truncated`);
      return buffer;
    } finally {
      await handle.close();
    }
  }
}
