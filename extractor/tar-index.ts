/**
 * The regular members of a tar file and where their data lies, found by reading its headers only:
 * one 512-byte read per header, member data skipped by offset, never read. The walk stops at the
 * end-of-archive marker (a zero block, POSIX.1-2017 `pax` "ustar Interchange Format": the archive
 * ends with two of them, and no header is all zeros), so whatever follows the archive's content (a
 * sparse tail of gigabytes of zeros, junk) is never read, and the cost is one read per member.
 *
 * Formats: ustar (name + prefix), pax extended headers (`x`: `path` and `size` records for the next
 * member; `g` global headers are skipped), GNU long names (`L`); numeric fields in octal or GNU
 * base-256. tar-stream cannot skip data without reading it, which is why this walk exists; layer
 * tars (streamed, never seekable) still go through tar-stream.
 */
import fs from 'node:fs/promises';
import { InvalidInputError, LimitExceededError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';
import { normaliseEntryPath } from './paths.js';

export interface TarMember {
  /** File offset of the member's first data byte. */
  readonly offset: number;
  readonly size: number;
}

const BLOCK = 512;

/** A numeric header field: octal text (NUL/space padded), or GNU base-256 when the top bit is set. */
function numeric(block: Buffer, start: number, length: number, what: string): number {
  const field = block.subarray(start, start + length);
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + field[i]!;
      if (!Number.isSafeInteger(value)) throw new InvalidInputError(`${what}: a base-256 number beyond 2^53`);
    }
    return value;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new InvalidInputError(`${what}: ${JSON.stringify(text)} is not an octal number`);
  return Number.parseInt(text, 8);
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** The header checksum (ustar): the byte sum with the checksum field read as spaces. */
function checksumMatches(block: Buffer, what: string): boolean {
  const stored = numeric(block, 148, 8, what);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === stored;
}

/** `length key=value\n` records of a pax extended header. */
function paxRecords(data: Buffer, what: string): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = space < 0 ? Number.NaN : Number.parseInt(data.subarray(at, space).toString('latin1'), 10);
    if (!Number.isSafeInteger(length) || length <= 0 || at + length > data.length) throw new InvalidInputError(`${what}: malformed pax record at byte ${at}`);
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1));
    at += length;
  }
  return records;
}

export async function indexTarFile(file: string, limits: Limits): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>();
  const handle = await fs.open(file, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const block = Buffer.alloc(BLOCK);
    const read = async (length: number, position: number, what: string): Promise<Buffer> => {
      const buffer = length === BLOCK ? block : Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      if (bytesRead !== length) throw new InvalidInputError(`${what}: truncated at byte ${position + bytesRead}`);
      return buffer;
    };
    let position = 0;
    let headers = 0;
    // Overrides for the next member, from a pax header (`x`) or a GNU long name (`L`).
    let nextPath: string | undefined;
    let nextSize: number | undefined;
    while (position + BLOCK <= fileSize) {
      const what = `archive ${file}, header at byte ${position}`;
      await read(BLOCK, position, what);
      if (block.every((byte) => byte === 0)) break;
      if (++headers > limits.maxEntriesPerLayer) throw new LimitExceededError('maxEntriesPerLayer', limits.maxEntriesPerLayer, `archive ${file}`);
      if (!checksumMatches(block, what)) throw new InvalidInputError(`${what}: not a tar header (checksum mismatch)`);
      const type = String.fromCharCode(block[156]!);
      const headerSize = numeric(block, 124, 12, what);
      const dataStart = position + BLOCK;
      const size = type === 'x' || type === 'g' || type === 'L' ? headerSize : (nextSize ?? headerSize);
      if (dataStart + size > fileSize) throw new InvalidInputError(`${what}: member data runs past the end of the file (${size} bytes)`);
      if (type === 'x' || type === 'L') {
        const limit = type === 'x' ? limits.maxArchiveMetadataBytes : limits.maxPathBytes;
        if (size > limit) throw new LimitExceededError(type === 'x' ? 'maxArchiveMetadataBytes' : 'maxPathBytes', limit, what);
        const data = await read(size, dataStart, what);
        if (type === 'L') nextPath = text(data, 0, data.length);
        else {
          const records = paxRecords(data, what);
          const paxPath = records.get('path');
          const paxSize = records.get('size');
          if (paxPath !== undefined) nextPath = paxPath;
          if (paxSize !== undefined) {
            if (!/^\d+$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) throw new InvalidInputError(`${what}: pax size ${JSON.stringify(paxSize)}`);
            nextSize = Number(paxSize);
          }
        }
      } else if (type !== 'g') {
        // A member proper: the overrides applied to it, then cleared.
        const ustar = block.subarray(257, 262).toString('latin1') === 'ustar';
        const prefix = ustar ? text(block, 345, 155) : '';
        const name = nextPath ?? (prefix ? `${prefix}/${text(block, 0, 100)}` : text(block, 0, 100));
        const member = normaliseEntryPath(name, limits);
        if (type === '0' || type === '\0' || type === '7') members.set(member, { offset: dataStart, size });
        // A later entry of the same name replaces the member, as extracting the archive would (what
        // `docker load` sees): a link, directory or FIFO leaves no regular member there, never the
        // stale bytes of the earlier one.
        else members.delete(member);
        nextPath = undefined;
        nextSize = undefined;
      }
      position = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await handle.close();
  }
  return members;
}
