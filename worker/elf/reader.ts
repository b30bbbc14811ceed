/**
 * Bounds-checked random access over the bytes of one ELF file (or a window of it).
 *
 * Every read checks `offset + size <= length` without computing a sum that could lose precision,
 * and every 64-bit read refuses values above 2^53 (JS numbers are exact only up to there), so no
 * caller ever sees a wrapped or rounded offset. Errors carry the absolute file offset: a window
 * created with `sub()` remembers where it starts in the file.
 */
import { ElfFormatError, hex } from './errors.js';

const TWO_32 = 0x1_0000_0000;
const typedIndexOf = Uint8Array.prototype.indexOf;

/** Node's Buffer has an (undocumented, long-standing) `utf8Slice`; used when present. */
type SliceableBuffer = Buffer & { utf8Slice?: (start: number, end: number) => string };
/** Largest high word of a u64 whose value stays <= Number.MAX_SAFE_INTEGER (2^53 - 1). */
const MAX_SAFE_HIGH = 0x1f_ffff;

export class ByteReader {
  readonly length: number;
  /** For hot loops that checked a whole table's bounds once (`need`) and then read fields directly. */
  readonly view: DataView;
  private buffer: SliceableBuffer | undefined;

  constructor(
    readonly bytes: Uint8Array,
    readonly littleEndian: boolean,
    /** File offset of `bytes[0]`, for error messages. */
    readonly base = 0,
  ) {
    this.length = bytes.byteLength;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** True when `[offset, offset + size)` lies inside this window. */
  has(offset: number, size: number): boolean {
    return offset >= 0 && size >= 0 && offset <= this.length && size <= this.length - offset;
  }

  /** Throws `ElfFormatError` unless `[offset, offset + size)` lies inside this window. */
  need(offset: number, size: number, what: string): void {
    if (!this.has(offset, size)) {
      throw new ElfFormatError(
        `${what}: ${size} bytes at ${hex(offset)} run past the end of ${this.base === 0 ? 'the file' : 'its table'} (${this.length} bytes)`,
        this.base + Math.max(0, Math.min(offset, this.length)),
      );
    }
  }

  /** A window `[offset, offset + length)` of this one; offsets in errors stay file offsets. */
  sub(offset: number, length: number, what: string): ByteReader {
    this.need(offset, length, what);
    return new ByteReader(this.bytes.subarray(offset, offset + length), this.littleEndian, this.base + offset);
  }

  /** The window from `offset` to the end of this one. */
  from(offset: number, what: string): ByteReader {
    this.need(offset, 0, what);
    return this.sub(offset, this.length - offset, what);
  }

  u8(offset: number, what = 'byte'): number {
    this.need(offset, 1, what);
    return this.view.getUint8(offset);
  }

  u16(offset: number, what = 'u16'): number {
    this.need(offset, 2, what);
    return this.view.getUint16(offset, this.littleEndian);
  }

  u32(offset: number, what = 'u32'): number {
    this.need(offset, 4, what);
    return this.view.getUint32(offset, this.littleEndian);
  }

  s32(offset: number, what = 's32'): number {
    this.need(offset, 4, what);
    return this.view.getInt32(offset, this.littleEndian);
  }

  /** An unsigned 64-bit value; values above 2^53 are refused (`ElfFormatError`). */
  u64(offset: number, what = 'u64'): number {
    this.need(offset, 8, what);
    const lo = this.view.getUint32(offset + (this.littleEndian ? 0 : 4), this.littleEndian);
    const hi = this.view.getUint32(offset + (this.littleEndian ? 4 : 0), this.littleEndian);
    if (hi > MAX_SAFE_HIGH) throw new ElfFormatError(`${what}: value 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} is above 2^53`, this.base + offset);
    return hi * TWO_32 + lo;
  }

  /** A signed 64-bit value; magnitudes above 2^53 are refused (`ElfFormatError`). */
  s64(offset: number, what = 's64'): number {
    this.need(offset, 8, what);
    const lo = this.view.getUint32(offset + (this.littleEndian ? 0 : 4), this.littleEndian);
    const hi = this.view.getInt32(offset + (this.littleEndian ? 4 : 0), this.littleEndian);
    if (hi > MAX_SAFE_HIGH || hi < -MAX_SAFE_HIGH - 1) throw new ElfFormatError(`${what}: signed value out of the 2^53 range`, this.base + offset);
    return hi * TWO_32 + lo;
  }

  /** An address-sized unsigned word: 4 bytes for ELFCLASS32, 8 for ELFCLASS64. */
  word(offset: number, is64: boolean, what = 'word'): number {
    return is64 ? this.u64(offset, what) : this.u32(offset, what);
  }

  /** An address-sized signed word (RELA addends). */
  sword(offset: number, is64: boolean, what = 'sword'): number {
    return is64 ? this.s64(offset, what) : this.s32(offset, what);
  }

  /** Decodes `[start, end)` as UTF-8 (invalid sequences become U+FFFD). */
  text(start: number, end: number): string {
    this.need(start, end - start, 'string');
    const b = this.buffer ?? (this.buffer = Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength) as SliceableBuffer);
    // Buffer#utf8Slice skips toString's argument normalisation: twice as fast for short names.
    return b.utf8Slice ? b.utf8Slice(start, end) : b.toString('utf8', start, end);
  }

  /** Index of the first NUL at or after `offset`, or -1. Native scan, bounded by the window. */
  indexOfNul(offset: number): number {
    // Uint8Array's builtin, not Buffer#indexOf (whose argument handling costs more than short scans).
    return typedIndexOf.call(this.bytes, 0, offset);
  }
}

/** A sequential cursor over a `ByteReader`, for variable-length formats (LEB128, CIEs, notes). */
export class Cursor {
  constructor(
    readonly r: ByteReader,
    public pos: number,
  ) {}

  u8(what?: string): number {
    const v = this.r.u8(this.pos, what);
    this.pos += 1;
    return v;
  }

  u16(what?: string): number {
    const v = this.r.u16(this.pos, what);
    this.pos += 2;
    return v;
  }

  u32(what?: string): number {
    const v = this.r.u32(this.pos, what);
    this.pos += 4;
    return v;
  }

  s32(what?: string): number {
    const v = this.r.s32(this.pos, what);
    this.pos += 4;
    return v;
  }

  u64(what?: string): number {
    const v = this.r.u64(this.pos, what);
    this.pos += 8;
    return v;
  }

  s64(what?: string): number {
    const v = this.r.s64(this.pos, what);
    this.pos += 8;
    return v;
  }

  skip(n: number, what = 'skip'): void {
    this.r.need(this.pos, n, what);
    this.pos += n;
  }

  /** Unsigned LEB128, at most 8 bytes (56 bits, exact in a JS number). */
  uleb(what = 'ULEB128'): number {
    const start = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8(what);
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new ElfFormatError(`${what}: LEB128 longer than 8 bytes`, this.r.base + start);
  }

  /** Signed LEB128, at most 8 bytes. */
  sleb(what = 'SLEB128'): number {
    const start = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8(what);
      result += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return (b & 0x40) !== 0 ? result - scale : result;
    }
    throw new ElfFormatError(`${what}: LEB128 longer than 8 bytes`, this.r.base + start);
  }

  /** A NUL-terminated byte string of at most `max` bytes (terminator excluded). */
  cstr(max: number, what = 'string'): string {
    const start = this.pos;
    this.r.need(start, 0, what);
    const found = this.r.bytes.subarray(start, start + max + 1).indexOf(0);
    const nul = found < 0 ? -1 : start + found;
    if (nul < 0) throw new ElfFormatError(`${what}: no NUL terminator within ${max} bytes`, this.r.base + start);
    this.pos = nul + 1;
    return this.r.text(start, nul);
  }
}
