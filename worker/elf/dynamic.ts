/**
 * The dynamic section (gABI "Dynamic Section"). It is found the way the loader finds it, through
 * PT_DYNAMIC; the SHT_DYNAMIC section is the fallback for files without program headers. Entries
 * end at DT_NULL or at the end of the table, and their count is bounded by `maxElfSections`
 * (a dynamic table is header data: real ones hold a few dozen entries).
 */
import * as C from './constants.js';
import type { ElfContext, RawDynamic } from './context.js';
import { checkLimit, ElfFormatError } from './errors.js';
import type { ByteReader } from './reader.js';
import { StringTable } from './strings.js';
import type { ElfDynamic, ElfDynamicEntry, ElfSection } from './types.js';

export function parseRawDynamic(ctx: ElfContext): RawDynamic | undefined {
  let table: ByteReader | undefined;
  const seg = ctx.segments.find((s) => s.type === C.PT_DYNAMIC);
  if (seg) {
    if (!ctx.file.has(seg.offset, seg.filesz)) throw new ElfFormatError('PT_DYNAMIC runs past the end of the file', seg.headerOffset);
    table = ctx.file.sub(seg.offset, seg.filesz, 'PT_DYNAMIC');
  } else {
    const section = ctx.sectionByType(C.SHT_DYNAMIC);
    if (section) table = ctx.sectionData(section);
  }
  if (!table) return undefined;
  const is64 = ctx.header.is64;
  const entSize = is64 ? 16 : 8;
  const max = Math.floor(table.length / entSize);
  const entries: ElfDynamicEntry[] = [];
  for (let i = 0; i < max; i++) {
    const at = i * entSize;
    // d_tag is signed in the gABI; every defined tag is a small positive number.
    const tag = is64 ? table.s64(at, 'd_tag') : table.s32(at, 'd_tag');
    if (tag === C.DT_NULL) break;
    checkLimit(ctx.limits, 'maxElfSections', entries.length + 1, 'dynamic entry count', table.base);
    entries.push({ tag, value: table.word(at + entSize / 2, is64, 'd_val'), offset: table.base + at });
  }
  const first = new Map<number, ElfDynamicEntry>();
  for (const e of entries) if (!first.has(e.tag)) first.set(e.tag, e);
  return { entries, get: (tag) => first.get(tag) };
}

/**
 * DT_STRTAB bounded by DT_STRSZ, read through the address map; without them, the string table the
 * SHT_DYNAMIC (or SHT_DYNSYM) section links to.
 */
export function parseDynamicStrings(ctx: ElfContext, raw: RawDynamic | undefined): StringTable | undefined {
  const strtab = raw?.get(C.DT_STRTAB);
  if (strtab) {
    const strsz = raw?.get(C.DT_STRSZ);
    if (!strsz) throw new ElfFormatError('DT_STRTAB without DT_STRSZ', strtab.offset);
    const window = ctx.memory.window(strtab.value, 'DT_STRTAB');
    if (window) {
      if (!window.has(0, strsz.value)) throw new ElfFormatError(`DT_STRSZ ${strsz.value} runs past the segment holding DT_STRTAB`, strsz.offset);
      return new StringTable(window.sub(0, strsz.value, 'DT_STRTAB'), 'dynamic string table');
    }
    if (ctx.memory.loads.length > 0) throw new ElfFormatError(`DT_STRTAB 0x${strtab.value.toString(16)} is not mapped by any PT_LOAD`, strtab.offset);
  }
  const holder = ctx.sectionByType(C.SHT_DYNAMIC) ?? ctx.sectionByType(C.SHT_DYNSYM);
  if (!holder) return undefined;
  return linkedStrings(ctx, holder, 'dynamic string table');
}

/** The SHT_STRTAB section `section.sh_link` names. */
export function linkedStrings(ctx: ElfContext, section: ElfSection, what: string): StringTable {
  const target = ctx.sections[section.link];
  if (!target || target.index === 0 || target.type !== C.SHT_STRTAB) {
    throw new ElfFormatError(`${section.name || 'section'}: sh_link ${section.link} is not a string table`, section.headerOffset);
  }
  return new StringTable(ctx.sectionData(target), what);
}

/** PATH_MAX of Linux (include/uapi/linux/limits.h), the longest path a loader can open. */
const MAX_DYNAMIC_PATH = 4096;

const splitPath = (value: string): string[] => value.split(':').filter((p) => p.length > 0);

export function parseDynamic(ctx: ElfContext): ElfDynamic {
  const raw = ctx.rawDynamic();
  const empty = { needed: [], rpath: [], runpath: [], flags: 0, flags1: 0, bindNow: false, pieFlag: false };
  if (!raw) return { entries: [], ...empty, ...staticInitArrays(ctx) };
  const strings = ctx.dynamicStrings();
  const str = (e: ElfDynamicEntry): string => {
    if (!strings) throw new ElfFormatError('dynamic entry names a string but there is no dynamic string table', e.offset);
    const value = strings.get(e.value, e.offset);
    // Library names and search paths are paths: beyond PATH_MAX the loader cannot use them
    // (open fails with ENAMETOOLONG), and facts must not carry megabyte strings per entry.
    if (value.length > MAX_DYNAMIC_PATH) throw new ElfFormatError(`dynamic entry (tag ${e.tag}) names a string of ${value.length} bytes, longer than PATH_MAX (${MAX_DYNAMIC_PATH})`, e.offset);
    return value;
  };
  const needed: string[] = [];
  // The loaders keep one entry per tag (glibc `elf_get_dynamic_info`, musl `decode_vec`: the last
  // one), so only the last DT_RPATH and DT_RUNPATH are search paths. Invariant: each list comes
  // from one string of at most PATH_MAX bytes, so at most PATH_MAX / 2 directories — never one per
  // repeated tag (4090 tags naming one 4 KiB string would be 8 million directories in the facts).
  let rpathEntry: ElfDynamicEntry | undefined;
  let runpathEntry: ElfDynamicEntry | undefined;
  let soname: string | undefined;
  let flags = 0;
  let flags1 = 0;
  let bindNowTag = false;
  for (const e of raw.entries) {
    switch (e.tag) {
      case C.DT_NEEDED:
        needed.push(str(e));
        break;
      case C.DT_SONAME:
        soname ??= str(e);
        break;
      case C.DT_RPATH:
        rpathEntry = e;
        break;
      case C.DT_RUNPATH:
        runpathEntry = e;
        break;
      case C.DT_FLAGS:
        flags |= e.value;
        break;
      case C.DT_FLAGS_1:
        flags1 |= e.value;
        break;
      case C.DT_BIND_NOW:
        bindNowTag = true;
        break;
    }
  }
  const rpath = rpathEntry ? splitPath(str(rpathEntry)) : [];
  const runpath = runpathEntry ? splitPath(str(runpathEntry)) : [];
  const array = (addrTag: number, sizeTag: number, name: string): number[] => {
    const addr = raw.get(addrTag);
    if (!addr) return [];
    const size = raw.get(sizeTag);
    if (!size) throw new ElfFormatError(`${name} without its size tag`, addr.offset);
    return pointerArray(ctx, addr.value, size.value, name, size.offset);
  };
  const result: ElfDynamic = {
    entries: raw.entries,
    needed,
    rpath,
    runpath,
    init: raw.get(C.DT_INIT)?.value,
    fini: raw.get(C.DT_FINI)?.value,
    initArray: array(C.DT_INIT_ARRAY, C.DT_INIT_ARRAYSZ, 'DT_INIT_ARRAY'),
    finiArray: array(C.DT_FINI_ARRAY, C.DT_FINI_ARRAYSZ, 'DT_FINI_ARRAY'),
    preinitArray: array(C.DT_PREINIT_ARRAY, C.DT_PREINIT_ARRAYSZ, 'DT_PREINIT_ARRAY'),
    flags,
    flags1,
    bindNow: bindNowTag || (flags & C.DF_BIND_NOW) !== 0 || (flags1 & C.DF_1_NOW) !== 0,
    pieFlag: (flags1 & C.DF_1_PIE) !== 0,
  };
  return soname === undefined ? result : { ...result, soname };
}

/** Static executables have no DT_INIT_ARRAY: crt1 walks `__init_array_start..end`, the sections. */
function staticInitArrays(ctx: ElfContext): Pick<ElfDynamic, 'initArray' | 'finiArray' | 'preinitArray'> {
  const of = (type: number, name: string): number[] => {
    const s = ctx.sectionByType(type);
    if (!s || s.size === 0) return [];
    if (ctx.header.kind === 'rel') return [];
    return pointerArray(ctx, s.addr, s.size, name, s.headerOffset);
  };
  return {
    initArray: of(C.SHT_INIT_ARRAY, '.init_array'),
    finiArray: of(C.SHT_FINI_ARRAY, '.fini_array'),
    preinitArray: of(C.SHT_PREINIT_ARRAY, '.preinit_array'),
  };
}

/**
 * Reads `size / wordSize` relocated pointers at `vaddr` (which must be file-backed). Slots whose value cannot be known
 * statically (a symbolic relocation to an undefined symbol, an unmapped slot) and the legacy
 * 0 / -1 markers are left out.
 */
function pointerArray(ctx: ElfContext, vaddr: number, size: number, what: string, at: number): number[] {
  const ws = ctx.wordSize;
  if (size % ws !== 0) throw new ElfFormatError(`${what}: size ${size} is not a multiple of ${ws}`, at);
  const count = size / ws;
  checkLimit(ctx.limits, 'maxElfSymbols', count, `${what} entry count`, at);
  // Arrays of pointers are initialised data (SHT_INIT_ARRAY is never NOBITS): requiring file bytes
  // bounds the walk by the file, not by what p_memsz claims.
  if (size > 0 && ctx.memory.fileOffset(vaddr, size) === undefined) {
    throw new ElfFormatError(`${what}: ${size} bytes at 0x${vaddr.toString(16)} are not file-backed inside one PT_LOAD`, at);
  }
  const allOnes = ws === 8 ? 2 ** 64 - 1 : 0xffff_ffff;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = ctx.pointerAt(vaddr + i * ws);
    if (p !== undefined && p !== 0 && p !== allOnes) out.push(p);
  }
  return out;
}
