/**
 * String tables (gABI "String Table"): NUL-terminated names addressed by byte offset.
 *
 * Lookups must stay linear in the table size even when a crafted table has no NULs and thousands of
 * symbols point into it: a lookup scans natively to the next NUL, and the first time a scan runs
 * longer than `LONG_SCAN` bytes the positions of all NULs are indexed once, so later lookups are a
 * binary search instead of a rescan.
 */
import { ElfFormatError } from './errors.js';
import type { ByteReader } from './reader.js';

const LONG_SCAN = 4096;

export class StringTable {
  private nuls: Int32Array | undefined;

  constructor(
    readonly r: ByteReader,
    readonly what: string,
  ) {}

  get length(): number {
    return this.r.length;
  }

  /** The string at `offset`; `at` is the file offset of the field that held `offset`. */
  get(offset: number, at: number): string {
    if (offset >= this.r.length || offset < 0) {
      if (offset === 0) return '';
      throw new ElfFormatError(`${this.what}: string offset ${offset} is outside the table (${this.r.length} bytes)`, at);
    }
    const end = this.endOf(offset);
    if (end < 0) throw new ElfFormatError(`${this.what}: string at ${offset} is not NUL-terminated`, at);
    return this.r.text(offset, end);
  }

  private endOf(offset: number): number {
    if (this.nuls) return firstAtOrAfter(this.nuls, offset);
    const end = this.r.indexOfNul(offset);
    if (end < 0 || end - offset > LONG_SCAN) this.nuls = indexNuls(this.r.bytes);
    return end;
  }
}

function indexNuls(bytes: Uint8Array): Int32Array {
  let count = 0;
  for (let i = bytes.indexOf(0); i >= 0; i = bytes.indexOf(0, i + 1)) count++;
  const out = new Int32Array(count);
  let n = 0;
  for (let i = bytes.indexOf(0); i >= 0; i = bytes.indexOf(0, i + 1)) out[n++] = i;
  return out;
}

function firstAtOrAfter(sorted: Int32Array, offset: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length ? sorted[lo]! : -1;
}
