/**
 * Function ranges from `.eh_frame` (LSB "Exception Frames"; DWARF CFI with the GNU pointer
 * encodings). When `.eh_frame_hdr` (or PT_GNU_EH_FRAME) carries a binary-search table, each table
 * entry's FDE is decoded; otherwise every CIE/FDE record of `.eh_frame` is walked. Loops are bounded:
 * each record advances by at least 4 bytes inside its table, and the FDE count is checked against
 * `maxFdes` before it is used.
 */
import * as C from './constants.js';
import type { ElfContext } from './context.js';
import { checkLimit, ElfFormatError } from './errors.js';
import { type ByteReader, Cursor } from './reader.js';
import type { EhFrameFunction } from './types.js';

const DW_EH_PE_absptr = 0x00;
const DW_EH_PE_uleb128 = 0x01;
const DW_EH_PE_udata2 = 0x02;
const DW_EH_PE_udata4 = 0x03;
const DW_EH_PE_udata8 = 0x04;
const DW_EH_PE_sleb128 = 0x09;
const DW_EH_PE_sdata2 = 0x0a;
const DW_EH_PE_sdata4 = 0x0b;
const DW_EH_PE_sdata8 = 0x0c;
const DW_EH_PE_pcrel = 0x10;
const DW_EH_PE_textrel = 0x20;
const DW_EH_PE_datarel = 0x30;
const DW_EH_PE_omit = 0xff;

/** A table of CFI records: its bytes and the virtual address of its first byte. */
interface FrameTable {
  readonly r: ByteReader;
  readonly vaddr: number;
  /** False when bounded only by a segment: the walk then stops at the first zero terminator. */
  readonly exact: boolean;
}

interface Cie {
  /** The 'R' augmentation: how FDEs of this CIE encode pc_begin and pc_range. */
  readonly fdeEncoding: number;
}

/**
 * Decodes a pointer at `c` with `encoding`. `fieldVaddr` is the address of the field (pcrel),
 * `dataBase` the base of datarel (`.eh_frame_hdr`'s own address inside the header).
 */
function readPointer(c: Cursor, is64: boolean, encoding: number, fieldVaddr: number, dataBase: number | undefined, what: string): number {
  const start = c.pos;
  if (encoding === DW_EH_PE_omit) throw new ElfFormatError(`${what}: pointer encoding is DW_EH_PE_omit`, c.r.base + start);
  let value: number;
  switch (encoding & 0x0f) {
    case DW_EH_PE_absptr:
      value = is64 ? c.s64(what) : c.u32(what);
      break;
    case DW_EH_PE_uleb128:
      value = c.uleb(what);
      break;
    case DW_EH_PE_udata2:
      value = c.u16(what);
      break;
    case DW_EH_PE_udata4:
      value = c.u32(what);
      break;
    case DW_EH_PE_udata8:
      value = c.u64(what);
      break;
    case DW_EH_PE_sleb128:
      value = c.sleb(what);
      break;
    case DW_EH_PE_sdata2: {
      const v = c.u16(what);
      value = v >= 0x8000 ? v - 0x10000 : v;
      break;
    }
    case DW_EH_PE_sdata4:
      value = c.s32(what);
      break;
    case DW_EH_PE_sdata8:
      value = c.s64(what);
      break;
    default:
      throw new ElfFormatError(`${what}: unsupported pointer format 0x${encoding.toString(16)}`, c.r.base + start);
  }
  switch (encoding & 0x70) {
    case 0:
      break;
    case DW_EH_PE_pcrel:
      value += fieldVaddr;
      break;
    case DW_EH_PE_datarel:
      if (dataBase === undefined) throw new ElfFormatError(`${what}: DW_EH_PE_datarel has no base here`, c.r.base + start);
      value += dataBase;
      break;
    case DW_EH_PE_textrel:
    default:
      throw new ElfFormatError(`${what}: unsupported pointer application 0x${(encoding & 0x70).toString(16)}`, c.r.base + start);
  }
  // Addresses wrap in 32-bit objects; in 64-bit ones a negative or > 2^53 result is malformed.
  if (!is64) return ((value % 0x1_0000_0000) + 0x1_0000_0000) % 0x1_0000_0000;
  if (value < 0 || !Number.isSafeInteger(value)) throw new ElfFormatError(`${what}: address out of range`, c.r.base + start);
  return value;
}

export function parseEhFrame(ctx: ElfContext): EhFrameFunction[] {
  const hdr = findHeader(ctx);
  if (hdr) {
    const fromTable = viaHeader(ctx, hdr);
    if (fromTable) return fromTable;
  }
  const section = ctx.sectionByName('.eh_frame');
  if (section && section.hasFileData && section.size > 0) {
    return walk(ctx, { r: ctx.sectionData(section), vaddr: section.addr, exact: true });
  }
  if (hdr) {
    const table = ehFrameFromHeader(ctx, hdr);
    if (table) return walk(ctx, table);
  }
  return [];
}

interface Header {
  readonly r: ByteReader;
  readonly vaddr: number;
}

function findHeader(ctx: ElfContext): Header | undefined {
  const section = ctx.sectionByName('.eh_frame_hdr');
  if (section && section.hasFileData && section.size > 0) return { r: ctx.sectionData(section), vaddr: section.addr };
  const seg = ctx.segments.find((s) => s.type === C.PT_GNU_EH_FRAME);
  if (seg && seg.filesz > 0) {
    if (!ctx.file.has(seg.offset, seg.filesz)) throw new ElfFormatError('PT_GNU_EH_FRAME runs past the end of the file', seg.headerOffset);
    return { r: ctx.file.sub(seg.offset, seg.filesz, 'PT_GNU_EH_FRAME'), vaddr: seg.vaddr };
  }
  return undefined;
}

/** `.eh_frame_hdr`: version u8 (1), eh_frame_ptr_enc, fde_count_enc, table_enc, then the values. */
function readHeader(ctx: ElfContext, hdr: Header): { ehFramePtr: number; count: number; tableEnc: number; tablePos: number } | undefined {
  const is64 = ctx.header.is64;
  const c = new Cursor(hdr.r, 0);
  const version = c.u8('eh_frame_hdr version');
  if (version !== 1) throw new ElfFormatError(`.eh_frame_hdr version ${version}, expected 1`, hdr.r.base);
  const ptrEnc = c.u8('eh_frame_ptr_enc');
  const countEnc = c.u8('fde_count_enc');
  const tableEnc = c.u8('table_enc');
  if (ptrEnc === DW_EH_PE_omit) return undefined;
  const ehFramePtr = readPointer(c, is64, ptrEnc, hdr.vaddr + c.pos, hdr.vaddr, 'eh_frame_ptr');
  if (countEnc === DW_EH_PE_omit || tableEnc === DW_EH_PE_omit) return { ehFramePtr, count: -1, tableEnc, tablePos: c.pos };
  const count = readPointer(c, is64, countEnc, hdr.vaddr + c.pos, hdr.vaddr, 'fde_count');
  return { ehFramePtr, count, tableEnc, tablePos: c.pos };
}

function fixedSize(encoding: number, is64: boolean): number | undefined {
  switch (encoding & 0x0f) {
    case DW_EH_PE_absptr:
      return is64 ? 8 : 4;
    case DW_EH_PE_udata2:
    case DW_EH_PE_sdata2:
      return 2;
    case DW_EH_PE_udata4:
    case DW_EH_PE_sdata4:
      return 4;
    case DW_EH_PE_udata8:
    case DW_EH_PE_sdata8:
      return 8;
    default:
      return undefined;
  }
}

/** The table of `.eh_frame_hdr`, each FDE decoded for its range; undefined when there is no table. */
function viaHeader(ctx: ElfContext, hdr: Header): EhFrameFunction[] | undefined {
  const h = readHeader(ctx, hdr);
  if (!h || h.count < 0) return undefined;
  const is64 = ctx.header.is64;
  const size = fixedSize(h.tableEnc, is64);
  if (size === undefined) return undefined;
  checkLimit(ctx.limits, 'maxFdes', h.count, '.eh_frame_hdr FDE count', hdr.r.base + 4);
  hdr.r.need(h.tablePos, h.count * 2 * size, '.eh_frame_hdr search table');
  const frames = ehFrameFromHeader(ctx, hdr, h.ehFramePtr);
  if (!frames) return undefined;
  const c = new Cursor(hdr.r, h.tablePos);
  const cies = new Map<number, Cie>();
  const out: EhFrameFunction[] = new Array(h.count);
  for (let i = 0; i < h.count; i++) {
    const entryAt = c.pos;
    readPointer(c, is64, h.tableEnc, hdr.vaddr + c.pos, hdr.vaddr, 'initial_loc');
    const fdeVaddr = readPointer(c, is64, h.tableEnc, hdr.vaddr + c.pos, hdr.vaddr, 'fde address');
    const fdeOffset = fdeVaddr - frames.vaddr;
    if (fdeOffset < 0 || fdeOffset >= frames.r.length) throw new ElfFormatError(`.eh_frame_hdr entry ${i}: FDE address 0x${fdeVaddr.toString(16)} is outside .eh_frame`, hdr.r.base + entryAt);
    const fn = readFde(ctx, frames, fdeOffset, cies);
    if (!fn) throw new ElfFormatError(`.eh_frame_hdr entry ${i}: no FDE at 0x${fdeVaddr.toString(16)}`, hdr.r.base + entryAt);
    out[i] = fn;
  }
  return out;
}

/** `.eh_frame` located by the header's eh_frame_ptr: the section when it starts there, else the segment. */
function ehFrameFromHeader(ctx: ElfContext, hdr: Header, ptr?: number): FrameTable | undefined {
  const ehFramePtr = ptr ?? readHeader(ctx, hdr)?.ehFramePtr;
  if (ehFramePtr === undefined) return undefined;
  const section = ctx.sectionByName('.eh_frame');
  if (section && section.hasFileData && section.addr === ehFramePtr) return { r: ctx.sectionData(section), vaddr: section.addr, exact: true };
  const window = ctx.memory.window(ehFramePtr, '.eh_frame (eh_frame_ptr)');
  if (!window) throw new ElfFormatError(`eh_frame_ptr 0x${ehFramePtr.toString(16)} is not file-backed by any PT_LOAD`, hdr.r.base);
  return { r: window, vaddr: ehFramePtr, exact: false };
}

interface Record {
  /** Offset of the record's CIE id / CIE pointer field. */
  readonly idAt: number;
  /** Offset just past the record. */
  readonly end: number;
  /** 0 for a CIE, else the CIE pointer. */
  readonly id: number;
}

/** Reads the record header at `at`: length (0xffffffff: 64-bit extended length), then the id. */
function readRecord(t: FrameTable, at: number): Record | 'terminator' {
  const length = t.r.u32(at, 'CFI record length');
  if (length === 0) return 'terminator';
  let idAt = at + 4;
  let size = length;
  if (length === 0xffff_ffff) {
    size = t.r.u64(at + 4, 'CFI extended length');
    idAt = at + 12;
  }
  if (!t.r.has(idAt, size) || size < 4) throw new ElfFormatError(`CFI record length ${size} runs past .eh_frame`, t.r.base + at);
  // In .eh_frame the CIE id / CIE pointer is 4 bytes even with a 64-bit length (LSB 10.6.1).
  return { idAt, end: idAt + size, id: t.r.u32(idAt, 'CIE id') };
}

function readCie(ctx: ElfContext, t: FrameTable, at: number, cies: Map<number, Cie>): Cie {
  const cached = cies.get(at);
  if (cached) return cached;
  const rec = readRecord(t, at);
  if (rec === 'terminator' || rec.id !== 0) throw new ElfFormatError('FDE points at a record that is not a CIE', t.r.base + at);
  const r = t.r.sub(0, rec.end, '.eh_frame CIE');
  const c = new Cursor(r, rec.idAt + 4);
  const version = c.u8('CIE version');
  if (version !== 1 && version !== 3 && version !== 4) throw new ElfFormatError(`CIE version ${version}`, t.r.base + at);
  const augmentation = c.cstr(64, 'CIE augmentation');
  let fdeEncoding = DW_EH_PE_absptr;
  const hasZ = augmentation.startsWith('z');
  let rest = augmentation;
  if (rest.startsWith('eh')) {
    c.skip(ctx.wordSize, 'CIE eh data');
    rest = rest.slice(2);
  }
  if (version === 4) c.skip(2, 'CIE address/segment size');
  c.uleb('code alignment');
  c.sleb('data alignment');
  if (version === 1) c.u8('return address register');
  else c.uleb('return address register');
  if (hasZ) {
    const augLength = c.uleb('augmentation length');
    const augEnd = c.pos + augLength;
    r.need(c.pos, augLength, 'CIE augmentation data');
    for (const ch of augmentation.slice(1)) {
      if (ch === 'R') fdeEncoding = c.u8('FDE pointer encoding');
      else if (ch === 'L') c.u8('LSDA encoding');
      else if (ch === 'P') {
        const enc = c.u8('personality encoding');
        readPointer(c, ctx.header.is64, enc & 0x7f, t.vaddr + c.pos, undefined, 'personality routine');
      } else if (ch === 'S' || ch === 'B' || ch === 'G') continue;
      else break; // Unknown: the length in 'z' lets us skip the rest.
      if (c.pos > augEnd) throw new ElfFormatError('CIE augmentation data overruns its length', t.r.base + at);
    }
  } else if (rest !== '') {
    throw new ElfFormatError(`unsupported CIE augmentation "${augmentation}"`, t.r.base + at);
  }
  const cie = { fdeEncoding };
  cies.set(at, cie);
  return cie;
}

/** The FDE at `at` as a function range, or undefined when the record there is a CIE. */
function readFde(ctx: ElfContext, t: FrameTable, at: number, cies: Map<number, Cie>): EhFrameFunction | undefined {
  const rec = readRecord(t, at);
  if (rec === 'terminator' || rec.id === 0) return undefined;
  const cieAt = rec.idAt - rec.id;
  if (cieAt < 0) throw new ElfFormatError(`FDE CIE pointer ${rec.id} points before .eh_frame`, t.r.base + rec.idAt);
  const cie = readCie(ctx, t, cieAt, cies);
  const c = new Cursor(t.r, rec.idAt + 4);
  const is64 = ctx.header.is64;
  const start = readPointer(c, is64, cie.fdeEncoding, t.vaddr + c.pos, undefined, 'FDE pc_begin');
  // pc_range uses only the format part of the encoding: it is a length, not an address.
  const range = readPointer(c, is64, cie.fdeEncoding & 0x0f, 0, undefined, 'FDE pc_range');
  if (c.pos > rec.end) throw new ElfFormatError('FDE pc_begin / pc_range overrun the record', t.r.base + at);
  const end = start + range;
  if (!Number.isSafeInteger(end)) throw new ElfFormatError('FDE pc_begin + pc_range overflows', t.r.base + at);
  return { start, end };
}

/** Walks every record of `.eh_frame`; zero terminators end a segment-bounded walk only. */
function walk(ctx: ElfContext, t: FrameTable): EhFrameFunction[] {
  const cies = new Map<number, Cie>();
  const out: EhFrameFunction[] = [];
  let at = 0;
  while (at + 4 <= t.r.length) {
    const rec = readRecord(t, at);
    if (rec === 'terminator') {
      if (!t.exact) break;
      at += 4;
      continue;
    }
    if (rec.id !== 0) {
      const fn = readFde(ctx, t, at, cies);
      if (fn) {
        checkLimit(ctx.limits, 'maxFdes', out.length + 1, '.eh_frame FDE count', t.r.base + at);
        out.push(fn);
      }
    }
    at = rec.end;
  }
  return out;
}
