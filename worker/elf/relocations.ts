/**
 * Relocation tables (gABI "Relocation"; SHT_RELR / DT_RELR as adopted by the gABI in 2022,
 * binutils 2.38 and glibc 2.36). Entries come from the tables the loader reads, found through
 * the dynamic section (DT_RELA, DT_REL, DT_JMPREL, DT_RELR), then from SHT_RELA / SHT_REL /
 * SHT_RELR sections whose file bytes those tables did not already cover, so each entry is decoded
 * once. The total is bounded by `maxElfRelocations` before a table is decoded (RELR: as it expands).
 *
 * Entries are kept in typed arrays (a PIE Go binary holds hundreds of thousands); `ElfRelocation`
 * objects, which need symbol names, are only built when `ElfFile.relocations` is read.
 */
import * as C from './constants.js';
import type { ElfContext } from './context.js';
import { checkLimit, ElfFormatError } from './errors.js';
import type { ByteReader } from './reader.js';
import type { ElfRelocation, ElfSymbol } from './types.js';

type TableKind = 'rela' | 'rel' | 'relr';
/** Which symbol table a relocation table's entries index. */
export type SymbolSource = 'dynamic' | 'static' | 'none';

interface Table {
  readonly kind: TableKind;
  readonly r: ByteReader;
  readonly name: string;
  readonly symbols: SymbolSource;
}

const entrySize = (kind: TableKind, is64: boolean): number => {
  switch (kind) {
    case 'rela':
      return is64 ? 24 : 12;
    case 'rel':
      return is64 ? 16 : 8;
    case 'relr':
      return is64 ? 8 : 4;
  }
};

/** Struct-of-arrays storage of decoded relocations. */
export class Relocations {
  count = 0;
  offsets = new Float64Array(0);
  types = new Uint32Array(0);
  symbolIndexes = new Uint32Array(0);
  addends = new Float64Array(0);
  /** Index into `tables` of the table each entry came from. */
  tableIds = new Uint16Array(0);
  /** File offset of each entry (of the bitmap word for RELR), for error messages. */
  entryOffsets = new Float64Array(0);
  readonly tables: Array<{ readonly name: string; readonly kind: TableKind; readonly symbols: SymbolSource }> = [];

  reserve(extra: number): void {
    const need = this.count + extra;
    if (need <= this.offsets.length) return;
    const size = Math.max(need, this.offsets.length * 2, 64);
    const grow = <T extends Float64Array | Uint32Array | Uint16Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a.subarray(0, this.count));
      return b;
    };
    this.offsets = grow(this.offsets, (n) => new Float64Array(n));
    this.types = grow(this.types, (n) => new Uint32Array(n));
    this.symbolIndexes = grow(this.symbolIndexes, (n) => new Uint32Array(n));
    this.addends = grow(this.addends, (n) => new Float64Array(n));
    this.tableIds = grow(this.tableIds, (n) => new Uint16Array(n));
    this.entryOffsets = grow(this.entryOffsets, (n) => new Float64Array(n));
  }

  push(offset: number, type: number, symbolIndex: number, addend: number, tableId: number, entryOffset: number): void {
    if (this.count === this.offsets.length) this.reserve(1);
    const i = this.count++;
    this.offsets[i] = offset;
    this.types[i] = type;
    this.symbolIndexes[i] = symbolIndex;
    this.addends[i] = addend;
    this.tableIds[i] = tableId;
    this.entryOffsets[i] = entryOffset;
  }
}

export function parseRelocations(ctx: ElfContext): Relocations {
  const is64 = ctx.header.is64;
  const tables: Table[] = [];
  const raw = ctx.rawDynamic();
  if (raw && ctx.header.kind !== 'rel') {
    const fromDynamic = (kind: TableKind, addrTag: number, sizeTag: number, entTag: number | undefined, name: string): void => {
      const addr = raw.get(addrTag);
      if (!addr) return;
      const size = raw.get(sizeTag);
      if (!size) throw new ElfFormatError(`${name} without its size tag`, addr.offset);
      const want = entrySize(kind, is64);
      const ent = entTag === undefined ? undefined : raw.get(entTag);
      if (ent && ent.value !== want) throw new ElfFormatError(`${name}: entry size ${ent.value}, expected ${want}`, ent.offset);
      if (size.value === 0) return;
      const window = ctx.memory.window(addr.value, name);
      if (!window) throw new ElfFormatError(`${name} 0x${addr.value.toString(16)} is not file-backed by any PT_LOAD`, addr.offset);
      if (!window.has(0, size.value)) throw new ElfFormatError(`${name}: ${size.value} bytes run past the segment holding the table`, size.offset);
      const r = window.sub(0, size.value, name);
      // Named after the section holding the table when there is one (`.rela.dyn`), else the tag.
      const section = ctx.sections.find((s) => s.hasFileData && s.offset === r.base && (s.type === C.SHT_RELA || s.type === C.SHT_REL || s.type === C.SHT_RELR));
      tables.push({ kind, r, name: section?.name || name, symbols: 'dynamic' });
    };
    fromDynamic('rela', C.DT_RELA, C.DT_RELASZ, C.DT_RELAENT, 'DT_RELA');
    fromDynamic('rel', C.DT_REL, C.DT_RELSZ, C.DT_RELENT, 'DT_REL');
    const jmprel = raw.get(C.DT_JMPREL);
    if (jmprel) {
      const pltrel = raw.get(C.DT_PLTREL);
      const kind: TableKind | undefined = pltrel?.value === C.DT_RELA ? 'rela' : pltrel?.value === C.DT_REL ? 'rel' : undefined;
      if (!kind) throw new ElfFormatError(`DT_PLTREL is ${pltrel ? pltrel.value : 'missing'}, expected DT_RELA (7) or DT_REL (17)`, pltrel?.offset ?? jmprel.offset);
      fromDynamic(kind, C.DT_JMPREL, C.DT_PLTRELSZ, undefined, 'DT_JMPREL');
    }
    fromDynamic('relr', C.DT_RELR, C.DT_RELRSZ, C.DT_RELRENT, 'DT_RELR');
  }
  for (const section of ctx.sections) {
    const kind: TableKind | undefined =
      section.type === C.SHT_RELA ? 'rela' : section.type === C.SHT_REL ? 'rel' : section.type === C.SHT_RELR ? 'relr' : undefined;
    if (!kind || section.size === 0) continue;
    const linked = ctx.sections[section.link];
    const symbols: SymbolSource =
      kind === 'relr' || section.link === 0 || !linked ? 'none' : linked.type === C.SHT_DYNSYM ? 'dynamic' : linked.type === C.SHT_SYMTAB ? 'static' : 'none';
    tables.push({ kind, r: ctx.sectionData(section), name: section.name, symbols });
  }

  const out = new Relocations();
  const covered: Array<readonly [number, number]> = [];
  for (const t of tables) {
    const parts = uncovered(t.r.base, t.r.base + t.r.length, entrySize(t.kind, is64), covered);
    covered.push([t.r.base, t.r.base + t.r.length]);
    if (parts.length === 0) continue;
    if (out.tables.length === 0xffff) throw new ElfFormatError('too many relocation tables', t.r.base);
    out.tables.push({ name: t.name, kind: t.kind, symbols: t.symbols });
    for (const [s, e] of parts) decode(ctx, { ...t, r: ctx.file.sub(s, e - s, t.name) }, out, out.tables.length - 1);
  }
  return out;
}

/** Parts of `[start, end)` not inside any `covered` range, cut at entry boundaries of the table. */
function uncovered(start: number, end: number, ent: number, covered: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  let parts: Array<[number, number]> = [[start, end]];
  for (const [cs, ce] of covered) {
    const next: Array<[number, number]> = [];
    for (const [s, e] of parts) {
      if (ce <= s || cs >= e) {
        next.push([s, e]);
        continue;
      }
      if (cs > s) next.push([s, s + Math.floor((cs - s) / ent) * ent]);
      if (ce < e) next.push([start + Math.ceil((ce - start) / ent) * ent, e]);
    }
    parts = next.filter(([s, e]) => e - s >= ent);
  }
  return parts;
}

function decode(ctx: ElfContext, t: Table, out: Relocations, tableId: number): void {
  if (t.kind === 'relr') return decodeRelr(ctx, t, out, tableId);
  const is64 = ctx.header.is64;
  const le = ctx.header.littleEndian;
  const r = t.r;
  const ent = entrySize(t.kind, is64);
  const count = Math.floor(r.length / ent);
  checkLimit(ctx.limits, 'maxElfRelocations', out.count + count, 'relocation count', r.base);
  out.reserve(count);
  const rela = t.kind === 'rela';
  // MIPS64 splits r_info into r_sym (u32), r_ssym, r_type3, r_type2, r_type (bytes), in that
  // order whatever the byte order (MIPS64 ELF ABI); the primary type is the last byte.
  const mips64 = is64 && ctx.header.machine === C.EM_MIPS;
  // REL entries keep their addend in the slot; read it where the slot is mapped (not in ET_REL).
  const slotAddends = !rela && ctx.header.kind !== 'rel';
  for (let i = 0; i < count; i++) {
    const at = i * ent;
    let offset: number;
    let type: number;
    let symbolIndex: number;
    let addend = 0;
    if (is64) {
      offset = r.u64(at, 'r_offset');
      if (mips64) {
        symbolIndex = r.u32(at + 8, 'r_info');
        type = r.u8(at + 15, 'r_info');
      } else {
        // ELF64_R_SYM(info) = info >> 32, ELF64_R_TYPE(info) = info & 0xffffffff.
        type = r.u32(at + (le ? 8 : 12), 'r_info');
        symbolIndex = r.u32(at + (le ? 12 : 8), 'r_info');
      }
      if (rela) addend = r.s64(at + 16, 'r_addend');
    } else {
      offset = r.u32(at, 'r_offset');
      const info = r.u32(at + 4, 'r_info');
      symbolIndex = info >>> 8;
      type = info & 0xff;
      if (rela) addend = r.s32(at + 8, 'r_addend');
    }
    if (slotAddends) addend = slotWord(ctx, offset) ?? 0;
    out.push(offset, type, symbolIndex, addend, tableId, r.base + at);
  }
}

/**
 * RELR: an even word is the address of a relative relocation; an odd word is a bitmap whose
 * bit i (i >= 1) relocates the (i-1)-th word after the last address, then advances that address
 * by (wordbits - 1) words. The implicit addend is the word stored in the slot.
 */
function decodeRelr(ctx: ElfContext, t: Table, out: Relocations, tableId: number): void {
  const is64 = ctx.header.is64;
  const ws = is64 ? 8 : 4;
  const type = ctx.relocationKinds()?.relative ?? 0;
  const count = Math.floor(t.r.length / ws);
  const max = ctx.limits.maxElfRelocations;
  let where = -1;
  const emit = (addr: number, at: number): void => {
    if (out.count >= max) checkLimit(ctx.limits, 'maxElfRelocations', out.count + 1, 'relocation count (RELR)', t.r.base + at);
    out.push(addr, type, 0, slotWord(ctx, addr) ?? 0, tableId, t.r.base + at);
  };
  for (let i = 0; i < count; i++) {
    const at = i * ws;
    const lo = t.r.u32(at + (is64 && !t.r.littleEndian ? 4 : 0), 'RELR entry');
    if ((lo & 1) === 0) {
      const addr = t.r.word(at, is64, 'RELR address');
      emit(addr, at);
      where = addr + ws;
      continue;
    }
    if (where < 0) throw new ElfFormatError('RELR bitmap before any address entry', t.r.base + at);
    for (let b = 1; b < 32; b++) if ((lo >>> b) & 1) emit(where + (b - 1) * ws, at);
    if (is64) {
      const hi = t.r.u32(at + (t.r.littleEndian ? 4 : 0), 'RELR entry');
      for (let b = 0; b < 32; b++) if ((hi >>> b) & 1) emit(where + (b + 31) * ws, at);
    }
    where += (ws * 8 - 1) * ws;
    if (where > Number.MAX_SAFE_INTEGER) throw new ElfFormatError('RELR address overflows 2^53', t.r.base + at);
  }
}

/** The word stored in the file at virtual address `vaddr` (implicit addends), if mapped and safe. */
export function slotWord(ctx: ElfContext, vaddr: number): number | undefined {
  const ws = ctx.wordSize;
  const off = ctx.memory.fileOffset(vaddr, ws);
  if (off === undefined) {
    const bytes = ctx.memory.read(vaddr, ws); // straddles p_filesz, or lies in .bss
    if (!bytes) return undefined;
    if (ws === 4) return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, ctx.header.littleEndian);
    const v = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, ctx.header.littleEndian);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
  }
  const bytes = ctx.file.bytes;
  const le = ctx.header.littleEndian;
  const u32 = (o: number): number =>
    le ? (bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0 : ((bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!) >>> 0;
  if (ws === 4) return u32(off);
  const lo = u32(le ? off : off + 4);
  const hi = u32(le ? off + 4 : off);
  return hi > 0x1f_ffff ? undefined : hi * 0x1_0000_0000 + lo;
}

/**
 * An index from slot address to the first relocation at it. Offsets below 2^32 and counts below
 * 2^21 are packed into one exactly representable double (offset * 2^21 + index) and sorted
 * natively; other inputs fall back to a Map.
 */
export class SlotIndex {
  private packed: Float64Array | undefined;
  private map: Map<number, number> | undefined;
  private static readonly SHIFT = 2 ** 21;

  constructor(relocations: Relocations) {
    const n = relocations.count;
    const offsets = relocations.offsets;
    let small = n < SlotIndex.SHIFT;
    for (let i = 0; small && i < n; i++) if (offsets[i]! >= 0x1_0000_0000) small = false;
    if (small) {
      const packed = new Float64Array(n);
      for (let i = 0; i < n; i++) packed[i] = offsets[i]! * SlotIndex.SHIFT + i;
      this.packed = packed.sort();
    } else {
      const map = new Map<number, number>();
      for (let i = 0; i < n; i++) if (!map.has(offsets[i]!)) map.set(offsets[i]!, i);
      this.map = map;
    }
  }

  /** Index of the first relocation (in table order) whose slot is `vaddr`. */
  get(vaddr: number): number | undefined {
    if (this.map) return this.map.get(vaddr);
    const packed = this.packed!;
    if (!(vaddr >= 0 && vaddr < 0x1_0000_0000)) return undefined;
    const key = vaddr * SlotIndex.SHIFT;
    let lo = 0;
    let hi = packed.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (packed[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    if (lo < packed.length && packed[lo]! < key + SlotIndex.SHIFT) return packed[lo]! - key;
    return undefined;
  }
}

/** The value the loader stores at the slot of relocation `i`, when it is known statically. */
export function relocatedValue(ctx: ElfContext, rel: Relocations, i: number): number | undefined {
  const kinds = ctx.relocationKinds();
  if (!kinds) return undefined;
  const type = rel.types[i]!;
  const addend = rel.addends[i]!;
  if (type === kinds.relative || type === kinds.irelative) return addend;
  if (type === kinds.absolute || type === kinds.globDat || type === kinds.jumpSlot) {
    const symbolIndex = rel.symbolIndexes[i]!;
    if (symbolIndex === 0) return addend;
    const sym = symbolsOf(ctx, rel.tables[rel.tableIds[i]!]!.symbols)[symbolIndex];
    if (!sym || !sym.defined || sym.sectionIndex === C.SHN_COMMON) return undefined;
    const v = sym.value + (type === kinds.absolute ? addend : 0);
    return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  }
  return undefined;
}

function symbolsOf(ctx: ElfContext, source: SymbolSource): readonly ElfSymbol[] {
  return source === 'dynamic' ? ctx.dynamicSymbolTable() : source === 'static' ? ctx.staticSymbolTable() : [];
}

/** Name of the symbol relocation `i` refers to; `ElfFormatError` when its index is out of range. */
export function relocationSymbolName(ctx: ElfContext, rel: Relocations, i: number): string | undefined {
  const symbolIndex = rel.symbolIndexes[i]!;
  const table = rel.tables[rel.tableIds[i]!]!;
  if (symbolIndex === 0 || table.symbols === 'none') return undefined;
  const symbols = symbolsOf(ctx, table.symbols);
  const sym = symbols[symbolIndex];
  if (!sym) throw new ElfFormatError(`${table.name}: relocation ${i} names symbol ${symbolIndex}, outside its symbol table (${symbols.length} entries)`, rel.entryOffsets[i]!);
  return sym.name;
}

/** Builds the public objects. */
export function materialize(ctx: ElfContext, rel: Relocations): ElfRelocation[] {
  const out: ElfRelocation[] = new Array(rel.count);
  for (let i = 0; i < rel.count; i++) {
    const table = rel.tables[rel.tableIds[i]!]!;
    out[i] = {
      offset: rel.offsets[i]!,
      type: rel.types[i]!,
      symbolIndex: rel.symbolIndexes[i]!,
      symbolName: relocationSymbolName(ctx, rel, i),
      addend: rel.addends[i]!,
      explicitAddend: table.kind === 'rela',
      table: table.name,
    };
  }
  return out;
}
