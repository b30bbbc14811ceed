/**
 * The process image as the loader would map it: PT_LOAD segments only (gABI "Program Loading").
 * Bytes past p_filesz and up to p_memsz read as zeros (.bss). Segments were validated by
 * `parseTables` (inside the file, p_filesz <= p_memsz, no address overflow).
 */
import type { Limits } from '../../infra/limits.js';
import { PT_LOAD } from './constants.js';
import { ElfLimitError } from './errors.js';
import { ByteReader } from './reader.js';
import type { ElfSegment } from './types.js';

export class VirtualMemory {
  /** PT_LOAD segments sorted by vaddr. */
  readonly loads: readonly ElfSegment[];

  constructor(
    private readonly file: ByteReader,
    segments: readonly ElfSegment[],
    private readonly limits: Limits,
  ) {
    this.loads = segments.filter((s) => s.type === PT_LOAD && s.memsz > 0).sort((a, b) => a.vaddr - b.vaddr);
  }

  /** The PT_LOAD segment containing `vaddr`, if any (the first one when crafted segments overlap). */
  segmentAt(vaddr: number): ElfSegment | undefined {
    const loads = this.loads;
    let lo = 0;
    let hi = loads.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (loads[mid]!.vaddr <= vaddr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Overlapping segments are malformed but possible; scan back for any that contains vaddr.
    for (let i = found; i >= 0; i--) {
      const s = loads[i]!;
      if (vaddr - s.vaddr < s.memsz) return s;
      if (i < found - 8) break;
    }
    return undefined;
  }

  /** File offset backing `[vaddr, vaddr + size)` when it lies in the file-backed part of one segment. */
  fileOffset(vaddr: number, size = 1): number | undefined {
    const s = this.segmentAt(vaddr);
    if (!s) return undefined;
    const delta = vaddr - s.vaddr;
    return delta < s.filesz && size <= s.filesz - delta ? s.offset + delta : undefined;
  }

  /** Virtual address of file offset `offset` when a PT_LOAD maps it. */
  vaddrOfOffset(offset: number): number | undefined {
    for (const s of this.loads) if (offset >= s.offset && offset - s.offset < s.filesz) return s.vaddr + (offset - s.offset);
    return undefined;
  }

  /**
   * A reader over the file-backed bytes from `vaddr` to the end of its segment's file data, or
   * undefined when `vaddr` is not file-backed. Tables located by address (DT_SYMTAB, DT_STRTAB,
   * eh_frame_ptr) are bounded by this window.
   */
  window(vaddr: number, what: string): ByteReader | undefined {
    const s = this.segmentAt(vaddr);
    if (!s) return undefined;
    const delta = vaddr - s.vaddr;
    if (delta >= s.filesz) return undefined;
    return this.file.sub(s.offset + delta, s.filesz - delta, what);
  }

  /**
   * `length` bytes at `vaddr`, or undefined unless the whole range lies inside one PT_LOAD segment.
   * Returns a view of the file when the range is file-backed, else a copy with the .bss part zeroed.
   */
  read(vaddr: number, length: number): Uint8Array | undefined {
    if (!Number.isSafeInteger(vaddr) || !Number.isSafeInteger(length) || vaddr < 0 || length < 0) return undefined;
    const s = this.segmentAt(vaddr);
    if (!s) return undefined;
    const delta = vaddr - s.vaddr;
    if (length > s.memsz - delta) return undefined;
    if (length <= s.filesz - delta) return this.file.bytes.subarray(s.offset + delta, s.offset + delta + length);
    if (length > this.limits.maxElfBytes) throw new ElfLimitError('maxElfBytes', this.limits.maxElfBytes, `virtual read of ${length} bytes`, s.headerOffset);
    const out = new Uint8Array(length);
    if (delta < s.filesz) out.set(this.file.bytes.subarray(s.offset + delta, s.offset + s.filesz));
    return out;
  }
}
