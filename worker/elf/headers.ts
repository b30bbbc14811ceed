/**
 * The ELF header, program header table and section header table (gABI "ELF Header", "Program
 * Header", "Sections"). Every field is validated before it is used to find anything else; tables
 * must lie inside the file and counts are bounded by `maxElfSections` before anything is allocated.
 */
import type { Limits } from '../../infra/limits.js';
import * as C from './constants.js';
import { checkLimit, ElfFormatError } from './errors.js';
import { ByteReader } from './reader.js';
import type { ElfKind, ElfSection, ElfSegment } from './types.js';

export interface ElfHeader {
  readonly is64: boolean;
  readonly littleEndian: boolean;
  readonly osabi: number;
  readonly type: number;
  readonly kind: ElfKind;
  readonly machine: number;
  readonly version: number;
  readonly entry: number;
  readonly phoff: number;
  readonly shoff: number;
  readonly flags: number;
  readonly ehsize: number;
  readonly phentsize: number;
  readonly phnum: number;
  readonly shentsize: number;
  readonly shnum: number;
  readonly shstrndx: number;
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];

export function elfKind(type: number): ElfKind {
  switch (type) {
    case C.ET_EXEC:
      return 'exec';
    case C.ET_DYN:
      return 'dyn';
    case C.ET_REL:
      return 'rel';
    case C.ET_CORE:
      return 'core';
    default:
      return 'other';
  }
}

/** Names as the seccomp/audit world spells them; unknown machines become `em-<n>`. */
export function archName(machine: number, is64: boolean, littleEndian: boolean): string {
  switch (machine) {
    case C.EM_X86_64:
      return is64 ? 'x86_64' : 'x32';
    case C.EM_386:
      return 'i386';
    case C.EM_AARCH64:
      return littleEndian ? 'aarch64' : 'aarch64_be';
    case C.EM_ARM:
      return littleEndian ? 'arm' : 'armeb';
    case C.EM_RISCV:
      return is64 ? 'riscv64' : 'riscv32';
    case C.EM_MIPS:
      return (is64 ? 'mips64' : 'mips') + (littleEndian ? 'el' : '');
    case 20: // EM_PPC
      return 'ppc';
    case C.EM_PPC64:
      return littleEndian ? 'ppc64le' : 'ppc64';
    case C.EM_S390:
      return is64 ? 's390x' : 's390';
    case 2: // EM_SPARC
      return 'sparc';
    case 43: // EM_SPARCV9
      return 'sparc64';
    case 258: // EM_LOONGARCH
      return is64 ? 'loongarch64' : 'loongarch32';
    case 15: // EM_PARISC
      return 'parisc';
    case 42: // EM_SH
      return 'sh';
    case 4: // EM_68K
      return 'm68k';
    default:
      return `em-${machine}`;
  }
}

export function parseHeader(file: ByteReader): ElfHeader {
  // The magic first: a short or foreign file is "not an ELF file", not a truncated one.
  for (let i = 0; i < 4; i++) {
    if (file.bytes[i] !== ELF_MAGIC[i]) throw new ElfFormatError(`not an ELF file (no \\x7fELF magic; ${file.bytes.length} bytes)`, 0);
  }
  file.need(0, 16, 'e_ident');
  const cls = file.bytes[4];
  if (cls !== C.ELFCLASS32 && cls !== C.ELFCLASS64) throw new ElfFormatError(`unknown EI_CLASS ${cls}`, 4);
  const data = file.bytes[5];
  if (data !== C.ELFDATA2LSB && data !== C.ELFDATA2MSB) throw new ElfFormatError(`unknown EI_DATA ${data}`, 5);
  if (file.bytes[6] !== 1) throw new ElfFormatError(`unknown EI_VERSION ${file.bytes[6]}`, 6);
  const is64 = cls === C.ELFCLASS64;
  const littleEndian = data === C.ELFDATA2LSB;
  const r = new ByteReader(file.bytes, littleEndian);
  const size = is64 ? 64 : 52;
  r.need(0, size, 'ELF header');
  const w = is64 ? 8 : 4;
  const type = r.u16(16, 'e_type');
  const version = r.u32(20, 'e_version');
  if (version !== 1) throw new ElfFormatError(`unknown e_version ${version}`, 20);
  const entry = r.word(24, is64, 'e_entry');
  const phoff = r.word(24 + w, is64, 'e_phoff');
  const shoff = r.word(24 + 2 * w, is64, 'e_shoff');
  const o = 24 + 3 * w;
  const header: ElfHeader = {
    is64,
    littleEndian,
    osabi: file.bytes[7] ?? 0,
    type,
    kind: elfKind(type),
    machine: r.u16(18, 'e_machine'),
    version,
    entry,
    phoff,
    shoff,
    flags: r.u32(o, 'e_flags'),
    ehsize: r.u16(o + 4, 'e_ehsize'),
    phentsize: r.u16(o + 6, 'e_phentsize'),
    phnum: r.u16(o + 8, 'e_phnum'),
    shentsize: r.u16(o + 10, 'e_shentsize'),
    shnum: r.u16(o + 12, 'e_shnum'),
    shstrndx: r.u16(o + 14, 'e_shstrndx'),
  };
  return header;
}

/** Field offset of e_phnum / e_shnum / e_shstrndx, for error messages. */
const fieldOffset = (h: ElfHeader, field: 'phnum' | 'shnum' | 'shoff' | 'phoff' | 'shstrndx'): number => {
  const o = h.is64 ? 48 : 36;
  switch (field) {
    case 'phoff':
      return h.is64 ? 32 : 28;
    case 'shoff':
      return h.is64 ? 40 : 32;
    case 'phnum':
      return o + 8;
    case 'shnum':
      return o + 12;
    case 'shstrndx':
      return o + 14;
  }
};

interface RawSectionHeader {
  readonly nameOffset: number;
  readonly type: number;
  readonly flags: number;
  readonly addr: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
  readonly headerOffset: number;
}

function readSectionHeader(r: ByteReader, h: ElfHeader, at: number): RawSectionHeader {
  if (h.is64) {
    return {
      nameOffset: r.u32(at, 'sh_name'),
      type: r.u32(at + 4, 'sh_type'),
      flags: r.u64(at + 8, 'sh_flags'),
      addr: r.u64(at + 16, 'sh_addr'),
      offset: r.u64(at + 24, 'sh_offset'),
      size: r.u64(at + 32, 'sh_size'),
      link: r.u32(at + 40, 'sh_link'),
      info: r.u32(at + 44, 'sh_info'),
      addralign: r.u64(at + 48, 'sh_addralign'),
      entsize: r.u64(at + 56, 'sh_entsize'),
      headerOffset: at,
    };
  }
  return {
    nameOffset: r.u32(at, 'sh_name'),
    type: r.u32(at + 4, 'sh_type'),
    flags: r.u32(at + 8, 'sh_flags'),
    addr: r.u32(at + 12, 'sh_addr'),
    offset: r.u32(at + 16, 'sh_offset'),
    size: r.u32(at + 20, 'sh_size'),
    link: r.u32(at + 24, 'sh_link'),
    info: r.u32(at + 28, 'sh_info'),
    addralign: r.u32(at + 32, 'sh_addralign'),
    entsize: r.u32(at + 36, 'sh_entsize'),
    headerOffset: at,
  };
}

export interface HeaderTables {
  readonly phnum: number;
  readonly segments: ElfSegment[];
  readonly sections: ElfSection[];
}

/**
 * Reads both header tables. Extended numbering (gABI): e_shnum = 0 with e_shoff != 0 puts the
 * section count in section 0's sh_size, e_shstrndx = SHN_XINDEX puts the index in its sh_link, and
 * e_phnum = PN_XNUM puts the program header count in its sh_info.
 */
export function parseTables(r: ByteReader, h: ElfHeader, limits: Limits): HeaderTables {
  const shSize = h.is64 ? 64 : 40;
  const phSize = h.is64 ? 56 : 32;

  let shnum = h.shnum;
  let shstrndx = h.shstrndx;
  let phnum = h.phnum;
  let section0: RawSectionHeader | undefined;
  if (h.shoff !== 0) {
    if (h.shentsize < shSize) throw new ElfFormatError(`e_shentsize ${h.shentsize} is smaller than ${shSize}`, h.is64 ? 58 : 46);
    r.need(h.shoff, shSize, 'section header 0 (e_shoff)');
    section0 = readSectionHeader(r, h, h.shoff);
    if (shnum === 0) shnum = section0.size;
    if (shstrndx === C.SHN_XINDEX) shstrndx = section0.link;
    if (phnum === C.PN_XNUM) phnum = section0.info;
  } else {
    shnum = 0;
  }
  checkLimit(limits, 'maxElfSections', shnum, 'section header count', fieldOffset(h, 'shnum'));
  checkLimit(limits, 'maxElfSections', phnum, 'program header count', fieldOffset(h, 'phnum'));

  const segments: ElfSegment[] = [];
  if (phnum > 0) {
    if (h.phentsize < phSize) throw new ElfFormatError(`e_phentsize ${h.phentsize} is smaller than ${phSize}`, h.is64 ? 54 : 42);
    if (h.phoff === 0) throw new ElfFormatError('e_phnum is non-zero but e_phoff is 0', fieldOffset(h, 'phoff'));
    r.need(h.phoff, (phnum - 1) * h.phentsize + phSize, 'program header table (e_phoff, e_phnum)');
    for (let i = 0; i < phnum; i++) {
      const at = h.phoff + i * h.phentsize;
      const seg: ElfSegment = h.is64
        ? {
            index: i,
            type: r.u32(at, 'p_type'),
            flags: r.u32(at + 4, 'p_flags'),
            offset: r.u64(at + 8, 'p_offset'),
            vaddr: r.u64(at + 16, 'p_vaddr'),
            paddr: r.u64(at + 24, 'p_paddr'),
            filesz: r.u64(at + 32, 'p_filesz'),
            memsz: r.u64(at + 40, 'p_memsz'),
            align: r.u64(at + 48, 'p_align'),
            headerOffset: at,
          }
        : {
            index: i,
            type: r.u32(at, 'p_type'),
            offset: r.u32(at + 4, 'p_offset'),
            vaddr: r.u32(at + 8, 'p_vaddr'),
            paddr: r.u32(at + 12, 'p_paddr'),
            filesz: r.u32(at + 16, 'p_filesz'),
            memsz: r.u32(at + 20, 'p_memsz'),
            flags: r.u32(at + 24, 'p_flags'),
            align: r.u32(at + 28, 'p_align'),
            headerOffset: at,
          };
      validateSegment(r, h, seg);
      segments.push(seg);
    }
  }

  const sections: ElfSection[] = [];
  if (shnum > 0 && section0) {
    r.need(h.shoff, (shnum - 1) * h.shentsize + shSize, 'section header table (e_shoff, e_shnum)');
    const raw: RawSectionHeader[] = [section0];
    for (let i = 1; i < shnum; i++) raw.push(readSectionHeader(r, h, h.shoff + i * h.shentsize));
    if (shstrndx >= shnum) throw new ElfFormatError(`e_shstrndx ${shstrndx} is not below the section count ${shnum}`, fieldOffset(h, 'shstrndx'));
    const names = shstrndx === C.SHN_UNDEF ? undefined : sectionNameTable(r, raw[shstrndx]!);
    for (let i = 0; i < raw.length; i++) {
      const s = raw[i]!;
      // Section 0 is reserved; with extended numbering its size/link/info hold counts, not data.
      const hasFileData = i !== 0 && s.type !== C.SHT_NOBITS && s.type !== C.SHT_NULL;
      const name = i === 0 || names === undefined ? '' : names(s.nameOffset, s.headerOffset);
      sections.push({
        index: i,
        name,
        type: s.type,
        flags: s.flags,
        addr: s.addr,
        offset: s.offset,
        size: i === 0 ? 0 : s.size,
        link: i === 0 ? 0 : s.link,
        info: i === 0 ? 0 : s.info,
        addralign: s.addralign,
        entsize: s.entsize,
        headerOffset: s.headerOffset,
        hasFileData,
      });
    }
  }
  return { phnum, segments, sections };
}

/**
 * A loadable segment must lie inside the file and not claim more file bytes than memory bytes;
 * Linux refuses such executables too (`load_elf_binary`: p_filesz > p_memsz is -EINVAL). Other
 * segment types are checked where they are used.
 */
function validateSegment(r: ByteReader, h: ElfHeader, seg: ElfSegment): void {
  if (seg.type !== C.PT_LOAD) return;
  if (seg.filesz > seg.memsz) throw new ElfFormatError(`PT_LOAD ${seg.index}: p_filesz ${seg.filesz} exceeds p_memsz ${seg.memsz}`, seg.headerOffset);
  if (!r.has(seg.offset, seg.filesz)) {
    throw new ElfFormatError(`PT_LOAD ${seg.index}: file range ${seg.offset}+${seg.filesz} runs past the end of the file (${r.length} bytes)`, seg.headerOffset);
  }
  const addressSpace = h.is64 ? Number.MAX_SAFE_INTEGER : 0xffff_ffff;
  if (seg.memsz > addressSpace - seg.vaddr + 1) throw new ElfFormatError(`PT_LOAD ${seg.index}: p_vaddr + p_memsz overflows the address space`, seg.headerOffset);
}

/** Returns a lookup into `.shstrtab`, validated to lie inside the file. */
function sectionNameTable(r: ByteReader, s: RawSectionHeader): (offset: number, headerOffset: number) => string {
  if (s.type === C.SHT_NOBITS) throw new ElfFormatError('section name table (e_shstrndx) is SHT_NOBITS', s.headerOffset);
  if (!r.has(s.offset, s.size)) throw new ElfFormatError('section name table (e_shstrndx) runs past the end of the file', s.headerOffset);
  const table = r.sub(s.offset, s.size, 'section name table');
  return (offset, headerOffset) => {
    if (offset >= table.length) throw new ElfFormatError(`sh_name ${offset} is outside the section name table (${table.length} bytes)`, headerOffset);
    const found = table.bytes.subarray(offset, offset + 4096).indexOf(0);
    if (found < 0) throw new ElfFormatError('section name is not NUL-terminated within 4096 bytes', headerOffset);
    return table.text(offset, offset + found);
  };
}
