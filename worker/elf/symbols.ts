/**
 * Symbol tables (gABI "Symbol Table") and GNU symbol versioning (LSB "Symbol Versioning":
 * `.gnu.version`, `.gnu.version_d`, `.gnu.version_r`).
 *
 * `.dynsym` comes from its section when there is one (what readelf shows); otherwise from DT_SYMTAB
 * with the count taken from DT_HASH (nchain) or DT_GNU_HASH (last chain end), as a loader sees it.
 * Counts are checked against `maxElfSymbols` before anything is decoded.
 */
import * as C from './constants.js';
import type { ElfContext } from './context.js';
import { linkedStrings } from './dynamic.js';
import { checkLimit, ElfFormatError } from './errors.js';
import type { ByteReader } from './reader.js';
import type { StringTable } from './strings.js';
import type { ElfSymbol, ElfSymbolBind, ElfSymbolType, ElfSymbolVisibility } from './types.js';

const TYPES: readonly ElfSymbolType[] = ['notype', 'object', 'func', 'section', 'file', 'common', 'tls'];
const BINDS: readonly ElfSymbolBind[] = ['local', 'global', 'weak'];
const VISIBILITIES: readonly ElfSymbolVisibility[] = ['default', 'internal', 'hidden', 'protected'];

/** All 16 values of the 4-bit st_info fields, precomputed. */
const TYPE_NAMES: readonly ElfSymbolType[] = Array.from({ length: 16 }, (_, t) => TYPES[t] ?? (t === C.STT_GNU_IFUNC ? 'ifunc' : (`stt-${t}` as const)));
const BIND_NAMES: readonly ElfSymbolBind[] = Array.from({ length: 16 }, (_, b) => BINDS[b] ?? (b === C.STB_GNU_UNIQUE ? 'unique' : (`stb-${b}` as const)));

interface VersionName {
  readonly name: string;
  readonly source: 'verdef' | 'verneed';
}

interface Versions {
  /** `.gnu.version` entries, one per symbol. */
  readonly versym: ByteReader;
  /** Version index -> name and where it is declared, from verdef and verneed. */
  readonly names: ReadonlyMap<number, VersionName>;
}

const SHN_UNDEF = C.SHN_UNDEF;
const INDEX_MASK = C.VERSYM_INDEX_MASK;
const HIDDEN = C.VERSYM_HIDDEN;

type MutableSymbol = { -readonly [K in keyof ElfSymbol]: ElfSymbol[K] };

function decodeSymbols(ctx: ElfContext, r: ByteReader, entSize: number, count: number, strings: StringTable, versions: Versions | undefined): ElfSymbol[] {
  const is64 = ctx.header.is64;
  const le = r.littleEndian;
  r.need(0, count * entSize, 'symbol table');
  if (versions) versions.versym.need(0, count * 2, '.gnu.version (one entry per dynamic symbol)');
  const view = r.view;
  const out: ElfSymbol[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * entSize;
    const nameOffset = view.getUint32(at, le);
    let info: number;
    let other: number;
    let shndx: number;
    let value: number;
    let size: number;
    if (is64) {
      info = view.getUint8(at + 4);
      other = view.getUint8(at + 5);
      shndx = view.getUint16(at + 6, le);
      const valueHi = view.getUint32(at + (le ? 12 : 8), le);
      const sizeHi = view.getUint32(at + (le ? 20 : 16), le);
      // Values above 2^53 are refused with the field's offset (u64 throws).
      value = valueHi > 0x1f_ffff ? r.u64(at + 8, 'st_value') : valueHi * 0x1_0000_0000 + view.getUint32(at + (le ? 8 : 12), le);
      size = sizeHi > 0x1f_ffff ? r.u64(at + 16, 'st_size') : sizeHi * 0x1_0000_0000 + view.getUint32(at + (le ? 16 : 20), le);
    } else {
      value = view.getUint32(at + 4, le);
      size = view.getUint32(at + 8, le);
      info = view.getUint8(at + 12);
      other = view.getUint8(at + 13);
      shndx = view.getUint16(at + 14, le);
    }
    // One object shape for every symbol (version fields always present) keeps consumers monomorphic.
    const sym: MutableSymbol = {
      index: i,
      name: nameOffset === 0 ? '' : strings.get(nameOffset, r.base + at),
      value,
      size,
      type: TYPE_NAMES[info & 0xf]!,
      bind: BIND_NAMES[info >> 4]!,
      visibility: VISIBILITIES[other & 3]!,
      sectionIndex: shndx,
      defined: shndx !== SHN_UNDEF,
      version: undefined,
      defaultVersion: undefined,
      versionSource: undefined,
    };
    if (versions) {
      const v = versions.versym.view.getUint16(i * 2, versions.versym.littleEndian);
      const index = v & INDEX_MASK;
      // 0 = local, 1 = global unversioned (or the base definition): no version to show. An index
      // naming no definition or requirement is left unversioned (readelf prints "<corrupt>"): the
      // symbol itself is still usable.
      if (index >= 2) {
        const named = versions.names.get(index);
        if (named !== undefined) {
          sym.version = named.name;
          sym.defaultVersion = (v & HIDDEN) === 0;
          sym.versionSource = named.source;
        }
      }
    }
    out.push(sym);
  }
  return out;
}

/** `.symtab`, when present. */
export function parseStaticSymbols(ctx: ElfContext): ElfSymbol[] {
  const section = ctx.sectionByType(C.SHT_SYMTAB);
  if (!section) return [];
  return sectionSymbols(ctx, section.index, undefined);
}

function sectionSymbols(ctx: ElfContext, index: number, versions: Versions | undefined): ElfSymbol[] {
  const section = ctx.sections[index]!;
  const want = ctx.header.is64 ? 24 : 16;
  if (section.entsize !== 0 && section.entsize !== want) throw new ElfFormatError(`${section.name}: sh_entsize ${section.entsize}, expected ${want}`, section.headerOffset);
  const r = ctx.sectionData(section);
  const count = Math.floor(r.length / want);
  checkLimit(ctx.limits, 'maxElfSymbols', count, `${section.name} symbol count`, section.headerOffset);
  const strings = linkedStrings(ctx, section, `${section.name} string table`);
  return decodeSymbols(ctx, r, want, count, strings, versions);
}

export function parseDynamicSymbols(ctx: ElfContext): ElfSymbol[] {
  const section = ctx.sectionByType(C.SHT_DYNSYM);
  if (section) {
    const count = Math.floor(section.size / (ctx.header.is64 ? 24 : 16));
    checkLimit(ctx.limits, 'maxElfSymbols', count, `${section.name} symbol count`, section.headerOffset);
    return sectionSymbols(ctx, section.index, sectionVersions(ctx));
  }
  const raw = ctx.rawDynamic();
  const symtab = raw?.get(C.DT_SYMTAB);
  if (!raw || !symtab) return [];
  const strings = ctx.dynamicStrings();
  if (!strings) throw new ElfFormatError('DT_SYMTAB without a dynamic string table', symtab.offset);
  const want = ctx.header.is64 ? 24 : 16;
  const syment = raw.get(C.DT_SYMENT);
  if (syment && syment.value !== want) throw new ElfFormatError(`DT_SYMENT ${syment.value}, expected ${want}`, syment.offset);
  const count = dynamicSymbolCount(ctx);
  if (count === undefined) return [];
  checkLimit(ctx.limits, 'maxElfSymbols', count, 'DT_SYMTAB symbol count', symtab.offset);
  const window = ctx.memory.window(symtab.value, 'DT_SYMTAB');
  if (!window) throw new ElfFormatError(`DT_SYMTAB 0x${symtab.value.toString(16)} is not file-backed by any PT_LOAD`, symtab.offset);
  if (!window.has(0, count * want)) throw new ElfFormatError(`DT_SYMTAB: ${count} symbols run past their segment`, symtab.offset);
  return decodeSymbols(ctx, window.sub(0, count * want, 'DT_SYMTAB'), want, count, strings, dynamicVersions(ctx));
}

/** Symbol count from DT_HASH (nchain) or DT_GNU_HASH; undefined when neither is present. */
function dynamicSymbolCount(ctx: ElfContext): number | undefined {
  const raw = ctx.rawDynamic()!;
  const hash = raw.get(C.DT_HASH);
  if (hash) {
    const w = ctx.memory.window(hash.value, 'DT_HASH');
    if (!w) throw new ElfFormatError('DT_HASH is not file-backed by any PT_LOAD', hash.offset);
    return w.u32(4, 'DT_HASH nchain');
  }
  const gnu = raw.get(C.DT_GNU_HASH);
  if (!gnu) return undefined;
  const w = ctx.memory.window(gnu.value, 'DT_GNU_HASH');
  if (!w) throw new ElfFormatError('DT_GNU_HASH is not file-backed by any PT_LOAD', gnu.offset);
  const nbuckets = w.u32(0, 'GNU hash nbuckets');
  const symoffset = w.u32(4, 'GNU hash symoffset');
  const bloomSize = w.u32(8, 'GNU hash bloom size');
  const buckets = 16 + bloomSize * ctx.wordSize;
  w.need(buckets, nbuckets * 4, 'GNU hash buckets');
  let last = 0;
  for (let i = 0; i < nbuckets; i++) last = Math.max(last, w.u32(buckets + i * 4, 'GNU hash bucket'));
  if (last < symoffset) return symoffset;
  // Walk the last bucket's chain to its terminator (low bit set); bounded by the window.
  const chains = buckets + nbuckets * 4;
  for (let i = last - symoffset; ; i++) {
    if ((w.u32(chains + i * 4, 'GNU hash chain') & 1) !== 0) return symoffset + i + 1;
  }
}

/** Version tables from sections (`.gnu.version`, `.gnu.version_d`, `.gnu.version_r`). */
function sectionVersions(ctx: ElfContext): Versions | undefined {
  const versymSection = ctx.sectionByType(C.SHT_GNU_VERSYM);
  if (!versymSection) return undefined;
  const versym = ctx.sectionData(versymSection);
  const names = new Map<number, VersionName>();
  const verdef = ctx.sectionByType(C.SHT_GNU_VERDEF);
  if (verdef) readVerdef(ctx.sectionData(verdef), verdef.info, linkedStrings(ctx, verdef, '.gnu.version_d strings'), names);
  const verneed = ctx.sectionByType(C.SHT_GNU_VERNEED);
  if (verneed) readVerneed(ctx.sectionData(verneed), verneed.info, linkedStrings(ctx, verneed, '.gnu.version_r strings'), names);
  return { versym, names };
}

/** Version tables from DT_VERSYM, DT_VERDEF(NUM), DT_VERNEED(NUM) when there are no sections. */
function dynamicVersions(ctx: ElfContext): Versions | undefined {
  const raw = ctx.rawDynamic()!;
  const versymTag = raw.get(C.DT_VERSYM);
  if (!versymTag) return undefined;
  const strings = ctx.dynamicStrings()!;
  const versym = ctx.memory.window(versymTag.value, 'DT_VERSYM');
  if (!versym) throw new ElfFormatError('DT_VERSYM is not file-backed by any PT_LOAD', versymTag.offset);
  const names = new Map<number, VersionName>();
  const table = (addrTag: number, numTag: number, name: string): [ByteReader, number] | undefined => {
    const addr = raw.get(addrTag);
    if (!addr) return undefined;
    const num = raw.get(numTag);
    if (!num) throw new ElfFormatError(`${name} without its count tag`, addr.offset);
    const w = ctx.memory.window(addr.value, name);
    if (!w) throw new ElfFormatError(`${name} is not file-backed by any PT_LOAD`, addr.offset);
    return [w, num.value];
  };
  const def = table(C.DT_VERDEF, C.DT_VERDEFNUM, 'DT_VERDEF');
  if (def) readVerdef(def[0], def[1], strings, names);
  const need = table(C.DT_VERNEED, C.DT_VERNEEDNUM, 'DT_VERNEED');
  if (need) readVerneed(need[0], need[1], strings, names);
  return { versym, names };
}

/**
 * Verdef entries: vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32, vd_aux u32,
 * vd_next u32; the first Verdaux (vda_name u32, vda_next u32) names the version. Every hop must
 * move forward inside the table, and the entry count is bounded by the table size.
 */
function readVerdef(r: ByteReader, count: number, strings: StringTable, names: Map<number, VersionName>): void {
  if (count > r.length / 20) throw new ElfFormatError(`version definition count ${count} does not fit its table`, r.base);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const version = r.u16(at, 'vd_version');
    if (version !== 1) throw new ElfFormatError(`vd_version ${version}, expected 1`, r.base + at);
    const ndx = r.u16(at + 4, 'vd_ndx');
    const cnt = r.u16(at + 6, 'vd_cnt');
    const aux = r.u32(at + 12, 'vd_aux');
    const next = r.u32(at + 16, 'vd_next');
    if (cnt > 0) {
      const nameOffset = r.u32(at + aux, 'vda_name');
      if (!names.has(ndx & C.VERSYM_INDEX_MASK)) names.set(ndx & C.VERSYM_INDEX_MASK, { name: strings.get(nameOffset, r.base + at + aux), source: 'verdef' });
    }
    if (i + 1 < count) {
      if (next === 0) throw new ElfFormatError('vd_next is 0 before the last version definition', r.base + at + 16);
      at += next;
    }
  }
}

/**
 * Verneed entries: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32; each Vernaux:
 * vna_hash u32, vna_flags u16, vna_other u16 (the version index), vna_name u32, vna_next u32.
 * Total Vernaux visits are bounded by the table size, so crafted chains cannot loop.
 */
function readVerneed(r: ByteReader, count: number, strings: StringTable, names: Map<number, VersionName>): void {
  if (count > r.length / 16) throw new ElfFormatError(`version requirement count ${count} does not fit its table`, r.base);
  let budget = Math.floor(r.length / 16) + 1;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const version = r.u16(at, 'vn_version');
    if (version !== 1) throw new ElfFormatError(`vn_version ${version}, expected 1`, r.base + at);
    const cnt = r.u16(at + 2, 'vn_cnt');
    let aux = at + r.u32(at + 8, 'vn_aux');
    for (let j = 0; j < cnt; j++) {
      if (--budget < 0) throw new ElfFormatError('version requirement entries exceed their table', r.base + at);
      const other = r.u16(aux + 6, 'vna_other');
      const nameOffset = r.u32(aux + 8, 'vna_name');
      if (!names.has(other & C.VERSYM_INDEX_MASK)) names.set(other & C.VERSYM_INDEX_MASK, { name: strings.get(nameOffset, r.base + aux + 8), source: 'verneed' });
      const next = r.u32(aux + 12, 'vna_next');
      if (j + 1 < cnt && next === 0) throw new ElfFormatError('vna_next is 0 before the last auxiliary entry', r.base + aux + 12);
      aux += next;
    }
    const next = r.u32(at + 12, 'vn_next');
    if (i + 1 < count) {
      if (next === 0) throw new ElfFormatError('vn_next is 0 before the last version requirement', r.base + at + 12);
      at += next;
    }
  }
}
