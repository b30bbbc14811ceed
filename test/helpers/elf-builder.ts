/**
 * Minimal x86-64 ELF64 (little-endian) files for tests, built byte by byte so that every field an
 * attacker controls can be set to what a test needs.
 *
 * A built file is one PT_LOAD segment (offset 0, read/write/execute) that maps the whole file, so
 * every table below has an address. In file order:
 *
 *   ELF header (64 bytes)
 *   program headers: PT_LOAD, then PT_INTERP and PT_DYNAMIC when present (56 bytes each)
 *   .interp    the PT_INTERP path and its NUL
 *   .dynstr    the dynamic string table: "\0", then every distinct string once
 *   .dynamic   DT_NEEDED..., DT_SONAME, DT_RPATH, DT_RUNPATH, extra entries, DT_STRTAB, DT_STRSZ, DT_NULL
 *   .text      `mov eax, 60; xor edi, edi; syscall` (exit(0)) unless other code is given
 *   .shstrtab and the section headers (optional)
 *
 * ET_EXEC files are linked at 0x400000, ET_DYN files at 0. Executables (and PIEs: ET_DYN with an
 * interpreter) have `e_entry` at `.text`; libraries have `e_entry` 0, as `ld -shared` leaves it.
 *
 * The `hostile` knobs break one thing at a time (a string table outside the file, a size past the
 * segment, a string without NUL, a lying `e_phnum`); everything else stays well-formed, so the
 * reader's error names exactly that thing.
 */

/** Dynamic section tags (gABI "Dynamic Section"). */
export const DT = {
  NULL: 0,
  NEEDED: 1,
  STRTAB: 5,
  STRSZ: 10,
  SONAME: 14,
  RPATH: 15,
  RUNPATH: 29,
} as const;

const ET_EXEC = 2;
const ET_DYN = 3;
const EM_X86_64 = 62;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const PF_RWX = 7;
const SHT_PROGBITS = 1;
const SHT_STRTAB = 3;
const SHT_DYNAMIC = 6;
/** Section flags (gABI "Sections"). */
export const SHF = { WRITE: 1, ALLOC: 2, EXECINSTR: 4 } as const;
const { WRITE: SHF_WRITE, ALLOC: SHF_ALLOC, EXECINSTR: SHF_EXECINSTR } = SHF;

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const DYN_SIZE = 16;
const EXEC_BASE = 0x40_0000;

/** `mov eax, 60` (exit); `xor edi, edi`; `syscall`. */
export const EXIT_0 = Uint8Array.from([0xb8, 0x3c, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05]);

/** A dynamic entry's value: a number as is, or a string interned in `.dynstr` (its offset). */
export type DynamicValue = number | string;

export interface HostileElfKnobs {
  /** DT_STRTAB's value instead of the table's address (e.g. one no PT_LOAD maps). */
  readonly strtabAddress?: number;
  /** DT_STRSZ's value instead of the table's size (e.g. far past the end of the file). */
  readonly strsz?: number;
  /**
   * A string written as the very last bytes of `.dynstr`, without its NUL (DT_STRSZ ends right
   * after it), and named by one more DT_NEEDED entry.
   */
  readonly unterminatedNeeded?: string;
  /** More dynamic entries, in order, before DT_STRTAB; strings are interned in `.dynstr`. */
  readonly extraDynamic?: readonly (readonly [tag: number, value: DynamicValue])[];
  /** `e_phnum` as stored in the header; the table itself holds only the real headers. */
  readonly phnum?: number;
  /** PT_INTERP's path without the NUL the kernel requires inside p_filesz. */
  readonly interpreterUnterminated?: boolean;
  /** sh_flags of sections by name instead of the usual ones (e.g. `.text` without SHF_EXECINSTR). */
  readonly sectionFlags?: Readonly<Record<string, number>>;
}

export interface ElfSpec {
  /** ET_EXEC (the default) or ET_DYN. */
  readonly type?: 'exec' | 'dyn';
  /** The PT_INTERP path (the program's loader). */
  readonly interpreter?: string;
  /** DT_NEEDED names, in order (any count; duplicates share one string). */
  readonly needed?: readonly string[];
  /** DT_RPATH and DT_RUNPATH strings (colon-separated lists, as the linker writes them). */
  readonly rpath?: string;
  readonly runpath?: string;
  readonly soname?: string;
  /** A PT_DYNAMIC even when no entry above asks for one (an object that needs nothing). */
  readonly dynamic?: boolean;
  /** Code at `.text` (the entry point); exit(0) by default. */
  readonly text?: Uint8Array;
  /** `e_entry` at `.text`; by default true unless a library (ET_DYN without interpreter). */
  readonly entry?: boolean;
  /** Section headers (`.interp`, `.dynstr`, `.dynamic`, `.text`, `.shstrtab`); true by default. */
  readonly sections?: boolean;
  readonly hostile?: HostileElfKnobs;
}

const align = (n: number, to: number): number => Math.ceil(n / to) * to;

/** A string table: "\0" first, each distinct string once, offsets by string. */
class StringTableBuilder {
  private readonly offsets = new Map<string, number>();
  private readonly parts: Buffer[] = [Buffer.alloc(1)];
  private size = 1;

  offsetOf(text: string): number {
    if (text === '') return 0;
    let at = this.offsets.get(text);
    if (at === undefined) {
      at = this.size;
      this.offsets.set(text, at);
      const bytes = Buffer.from(`${text}\0`, 'utf8');
      this.parts.push(bytes);
      this.size += bytes.length;
    }
    return at;
  }

  /** Appends `text` without its NUL (it must be the last thing added); its offset. */
  unterminated(text: string): number {
    const at = this.size;
    const bytes = Buffer.from(text, 'utf8');
    this.parts.push(bytes);
    this.size += bytes.length;
    return at;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

/** Builds the ELF file `spec` describes. */
export function buildElf(spec: ElfSpec = {}): Buffer {
  const type = spec.type ?? 'exec';
  const hostile = spec.hostile ?? {};
  const base = type === 'exec' ? EXEC_BASE : 0;
  const withSections = spec.sections ?? true;
  const withEntry = spec.entry ?? (type === 'exec' || spec.interpreter !== undefined);

  // The dynamic entries, with string values still as text (interned below).
  const dynamicEntries: [number, DynamicValue][] = [];
  for (const name of spec.needed ?? []) dynamicEntries.push([DT.NEEDED, name]);
  if (spec.soname !== undefined) dynamicEntries.push([DT.SONAME, spec.soname]);
  if (spec.rpath !== undefined) dynamicEntries.push([DT.RPATH, spec.rpath]);
  if (spec.runpath !== undefined) dynamicEntries.push([DT.RUNPATH, spec.runpath]);
  for (const [tag, value] of hostile.extraDynamic ?? []) dynamicEntries.push([tag, value]);
  const hasDynamic = spec.dynamic === true || dynamicEntries.length > 0 || hostile.unterminatedNeeded !== undefined;

  const strings = new StringTableBuilder();
  const resolved: [number, number][] = dynamicEntries.map(([tag, value]) => [tag, typeof value === 'string' ? strings.offsetOf(value) : value]);
  if (hostile.unterminatedNeeded !== undefined) resolved.push([DT.NEEDED, strings.unterminated(hostile.unterminatedNeeded)]);
  const dynstr = hasDynamic ? strings.bytes() : Buffer.alloc(0);

  const interp = spec.interpreter === undefined ? undefined : Buffer.from(hostile.interpreterUnterminated ? spec.interpreter : `${spec.interpreter}\0`, 'utf8');
  const phnum = 1 + (interp ? 1 : 0) + (hasDynamic ? 1 : 0);

  // File layout (offsets; addresses are base + offset).
  const phoff = EHDR_SIZE;
  const interpOffset = phoff + phnum * PHDR_SIZE;
  const dynstrOffset = interpOffset + (interp?.length ?? 0);
  const dynamicOffset = align(dynstrOffset + dynstr.length, 8);
  const dynamicCount = hasDynamic ? resolved.length + 3 : 0; // + DT_STRTAB, DT_STRSZ, DT_NULL
  const textOffset = align(dynamicOffset + dynamicCount * DYN_SIZE, 16);
  const text = Buffer.from(spec.text ?? EXIT_0);

  interface Section {
    readonly name: string;
    readonly type: number;
    readonly flags: number;
    readonly offset: number;
    readonly size: number;
    readonly link?: number;
    readonly entsize?: number;
    readonly align: number;
  }
  const sections: Section[] = [];
  if (interp) sections.push({ name: '.interp', type: SHT_PROGBITS, flags: SHF_ALLOC, offset: interpOffset, size: interp.length, align: 1 });
  const dynstrIndex = sections.length + 1;
  if (hasDynamic) {
    sections.push({ name: '.dynstr', type: SHT_STRTAB, flags: SHF_ALLOC, offset: dynstrOffset, size: dynstr.length, align: 1 });
    sections.push({ name: '.dynamic', type: SHT_DYNAMIC, flags: SHF_WRITE | SHF_ALLOC, offset: dynamicOffset, size: dynamicCount * DYN_SIZE, link: dynstrIndex, entsize: DYN_SIZE, align: 8 });
  }
  sections.push({ name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, offset: textOffset, size: text.length, align: 16 });
  const shstrtab = new StringTableBuilder();
  const sectionNames = [...sections.map((s) => shstrtab.offsetOf(s.name)), shstrtab.offsetOf('.shstrtab')];
  const shstrtabBytes = shstrtab.bytes();
  const shstrtabOffset = textOffset + text.length;
  sections.push({ name: '.shstrtab', type: SHT_STRTAB, flags: 0, offset: shstrtabOffset, size: shstrtabBytes.length, align: 1 });
  const shoff = align(shstrtabOffset + shstrtabBytes.length, 8);
  const shnum = sections.length + 1; // + the null section
  const fileSize = withSections ? shoff + shnum * SHDR_SIZE : textOffset + text.length;

  const out = Buffer.alloc(fileSize);
  // ELF header (gABI "ELF Header").
  out.write('\x7fELF', 0, 'latin1');
  out[4] = 2; // ELFCLASS64
  out[5] = 1; // ELFDATA2LSB
  out[6] = 1; // EV_CURRENT
  out.writeUInt16LE(type === 'exec' ? ET_EXEC : ET_DYN, 16);
  out.writeUInt16LE(EM_X86_64, 18);
  out.writeUInt32LE(1, 20);
  out.writeBigUInt64LE(BigInt(withEntry ? base + textOffset : 0), 24);
  out.writeBigUInt64LE(BigInt(phoff), 32);
  out.writeBigUInt64LE(BigInt(withSections ? shoff : 0), 40);
  out.writeUInt16LE(EHDR_SIZE, 52);
  out.writeUInt16LE(PHDR_SIZE, 54);
  out.writeUInt16LE(hostile.phnum ?? phnum, 56);
  out.writeUInt16LE(withSections ? SHDR_SIZE : 0, 58);
  out.writeUInt16LE(withSections ? shnum : 0, 60);
  out.writeUInt16LE(withSections ? shnum - 1 : 0, 62);

  // Program headers (gABI "Program Header").
  let ph = phoff;
  const programHeader = (pType: number, offset: number, size: number, alignment: number): void => {
    out.writeUInt32LE(pType, ph);
    out.writeUInt32LE(PF_RWX, ph + 4);
    out.writeBigUInt64LE(BigInt(offset), ph + 8);
    out.writeBigUInt64LE(BigInt(base + offset), ph + 16);
    out.writeBigUInt64LE(BigInt(base + offset), ph + 24);
    out.writeBigUInt64LE(BigInt(size), ph + 32);
    out.writeBigUInt64LE(BigInt(size), ph + 40);
    out.writeBigUInt64LE(BigInt(alignment), ph + 48);
    ph += PHDR_SIZE;
  };
  programHeader(PT_LOAD, 0, fileSize, 0x1000);
  if (interp) programHeader(PT_INTERP, interpOffset, interp.length, 1);
  if (hasDynamic) programHeader(PT_DYNAMIC, dynamicOffset, dynamicCount * DYN_SIZE, 8);

  interp?.copy(out, interpOffset);
  dynstr.copy(out, dynstrOffset);
  if (hasDynamic) {
    const entries: [number, number][] = [...resolved, [DT.STRTAB, hostile.strtabAddress ?? base + dynstrOffset], [DT.STRSZ, hostile.strsz ?? dynstr.length], [DT.NULL, 0]];
    entries.forEach(([tag, value], i) => {
      out.writeBigInt64LE(BigInt(tag), dynamicOffset + i * DYN_SIZE);
      out.writeBigUInt64LE(BigInt(value), dynamicOffset + i * DYN_SIZE + 8);
    });
  }
  text.copy(out, textOffset);

  if (withSections) {
    shstrtabBytes.copy(out, shstrtabOffset);
    sections.forEach((section, i) => {
      const at = shoff + (i + 1) * SHDR_SIZE; // section 0 stays all zeros (SHT_NULL)
      out.writeUInt32LE(sectionNames[i]!, at);
      out.writeUInt32LE(section.type, at + 4);
      out.writeBigUInt64LE(BigInt(hostile.sectionFlags?.[section.name] ?? section.flags), at + 8);
      out.writeBigUInt64LE(BigInt(section.flags & SHF_ALLOC ? base + section.offset : 0), at + 16);
      out.writeBigUInt64LE(BigInt(section.offset), at + 24);
      out.writeBigUInt64LE(BigInt(section.size), at + 32);
      out.writeUInt32LE(section.link ?? 0, at + 40);
      out.writeBigUInt64LE(BigInt(section.align), at + 48);
      out.writeBigUInt64LE(BigInt(section.entsize ?? 0), at + 56);
    });
  }
  return out;
}

/** A shared library: ET_DYN, e_entry 0, with a PT_DYNAMIC (DT_SONAME defaults to nothing). */
export function buildLibrary(spec: Omit<ElfSpec, 'type'> = {}): Buffer {
  return buildElf({ dynamic: true, ...spec, type: 'dyn' });
}
