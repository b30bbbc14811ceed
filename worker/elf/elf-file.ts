/**
 * One parsed ELF object. The headers (ELF header, program and section headers, PT_INTERP) are read
 * and validated by `parseElf`; every table that costs (dynamic section, symbols, relocations, FDEs,
 * Go functions) is decoded on first use and cached — failures too, so a broken table throws the
 * same `ElfFormatError` on every access without being decoded again.
 */
import type { Limits } from '../../infra/limits.js';
import * as C from './constants.js';
import type { ElfContext, RawDynamic } from './context.js';
import { parseDynamic, parseDynamicStrings, parseRawDynamic } from './dynamic.js';
import { parseEhFrame } from './eh-frame.js';
import { checkLimit, ElfFormatError } from './errors.js';
import { detectGo } from './go.js';
import { archName, type ElfHeader, parseHeader, parseTables } from './headers.js';
import { VirtualMemory } from './memory.js';
import { ByteReader } from './reader.js';
import { relocationKinds, type RelocationKinds } from './relocation-types.js';
import { materialize, parseRelocations, relocatedValue, relocationSymbolName, type Relocations, SlotIndex, slotWord } from './relocations.js';
import type { StringTable } from './strings.js';
import { parseDynamicSymbols, parseStaticSymbols } from './symbols.js';
import type { EhFrameFunction, ElfDynamic, ElfKind, ElfRelocation, ElfSection, ElfSegment, ElfSymbol, GoInfo } from './types.js';

/** A value computed once; a thrown error is remembered and rethrown. */
class Lazy<T> {
  private done = false;
  private value: T | undefined;
  private error: unknown;
  private failed = false;
  constructor(private readonly compute: () => T) {}
  get(): T {
    if (!this.done) {
      try {
        this.value = this.compute();
      } catch (error) {
        this.error = error;
        this.failed = true;
      }
      this.done = true;
    }
    if (this.failed) throw this.error;
    return this.value as T;
  }
}

export class ElfFile implements ElfContext {
  readonly class: 32 | 64;
  readonly littleEndian: boolean;
  readonly type: ElfKind;
  /** `e_type` as stored. */
  readonly elfType: number;
  /** `e_machine`. */
  readonly machine: number;
  readonly arch: string;
  readonly entry: number;
  /** `e_flags` (ABI flags: ARM EABI version, RISC-V float ABI, MIPS ISA). */
  readonly flags: number;
  readonly osabi: number;
  /** Size of the file in bytes. */
  readonly size: number;
  readonly segments: readonly ElfSegment[];
  readonly sections: readonly ElfSection[];
  /** The PT_INTERP path (program interpreter), without its NUL. */
  readonly interpreter: string | undefined;

  /** @internal Implementation of `ElfContext` for the table readers. */
  readonly file: ByteReader;
  /** @internal */
  readonly header: ElfHeader;
  /** @internal */
  readonly limits: Limits;
  /** @internal */
  readonly memory: VirtualMemory;
  /** @internal */
  readonly wordSize: number;

  private readonly byName = new Map<string, ElfSection>();
  private readonly byType = new Map<number, ElfSection>();
  private readonly kinds: RelocationKinds | undefined;
  private readonly raw = new Lazy<RawDynamic | undefined>(() => parseRawDynamic(this));
  private readonly dynStrings = new Lazy<StringTable | undefined>(() => parseDynamicStrings(this, this.rawDynamic()));
  private readonly dyn = new Lazy<ElfDynamic>(() => parseDynamic(this));
  private readonly dynsyms = new Lazy<ElfSymbol[]>(() => parseDynamicSymbols(this));
  private readonly syms = new Lazy<ElfSymbol[]>(() => parseStaticSymbols(this));
  private readonly relocs = new Lazy<Relocations>(() => parseRelocations(this));
  private readonly relocObjects = new Lazy<ElfRelocation[]>(() => materialize(this, this.relocs.get()));
  private readonly slots = new Lazy<SlotIndex | undefined>(() => (this.type === 'exec' || this.type === 'dyn' ? new SlotIndex(this.relocs.get()) : undefined));
  private readonly fdes = new Lazy<EhFrameFunction[]>(() => parseEhFrame(this));
  private readonly goInfo = new Lazy<GoInfo | undefined>(() => detectGo(this));

  constructor(bytes: Uint8Array, limits: Limits) {
    checkLimit(limits, 'maxElfBytes', bytes.byteLength, 'file size', 0);
    this.limits = limits;
    this.header = parseHeader(new ByteReader(bytes, true));
    const h = this.header;
    this.file = new ByteReader(bytes, h.littleEndian);
    const tables = parseTables(this.file, h, limits);
    this.class = h.is64 ? 64 : 32;
    this.littleEndian = h.littleEndian;
    this.type = h.kind;
    this.elfType = h.type;
    this.machine = h.machine;
    this.arch = archName(h.machine, h.is64, h.littleEndian);
    this.entry = h.entry;
    this.flags = h.flags;
    this.osabi = h.osabi;
    this.size = bytes.byteLength;
    this.wordSize = h.is64 ? 8 : 4;
    this.segments = tables.segments;
    this.sections = tables.sections;
    for (const s of this.sections) {
      if (s.index === 0) continue;
      if (!this.byName.has(s.name)) this.byName.set(s.name, s);
      if (!this.byType.has(s.type)) this.byType.set(s.type, s);
    }
    this.memory = new VirtualMemory(this.file, this.segments, limits);
    this.kinds = relocationKinds(h.machine, h.is64);
    this.interpreter = this.readInterpreter();
  }

  private readInterpreter(): string | undefined {
    const seg = this.segments.find((s) => s.type === C.PT_INTERP);
    if (!seg) return undefined;
    if (!this.file.has(seg.offset, seg.filesz) || seg.filesz === 0) throw new ElfFormatError('PT_INTERP lies outside the file', seg.headerOffset);
    const bytes = this.file.bytes.subarray(seg.offset, seg.offset + seg.filesz);
    const nul = bytes.indexOf(0);
    // The kernel requires the path to be NUL-terminated inside p_filesz (fs/binfmt_elf.c).
    if (nul < 0) throw new ElfFormatError('PT_INTERP path is not NUL-terminated', seg.offset);
    return this.file.text(seg.offset, seg.offset + nul);
  }

  // ---- public API ----

  /** The dynamic section's facts (empty lists for objects without one). */
  get dynamic(): ElfDynamic {
    return this.dyn.get();
  }

  /** `.dynsym` (or DT_SYMTAB), with GNU versions. Index 0 is the null symbol. */
  get dynamicSymbols(): readonly ElfSymbol[] {
    return this.dynsyms.get();
  }

  /** `.symtab`; empty when stripped. */
  get symbols(): readonly ElfSymbol[] {
    return this.syms.get();
  }

  /** Every relocation once, dynamic tables first (see `relocations.ts`). */
  get relocations(): readonly ElfRelocation[] {
    return this.relocObjects.get();
  }

  /** No `.symtab` section. */
  get stripped(): boolean {
    return this.sectionByType(C.SHT_SYMTAB) === undefined;
  }

  /** Neither PT_INTERP nor PT_DYNAMIC: nothing is loaded besides this object. */
  get isStatic(): boolean {
    return this.interpreter === undefined && !this.segments.some((s) => s.type === C.PT_DYNAMIC);
  }

  /** ET_DYN with a program interpreter, or marked DF_1_PIE (static-pie has no interpreter). */
  get isPie(): boolean {
    if (this.type !== 'dyn') return false;
    return this.interpreter !== undefined || this.dynamic.pieFlag;
  }

  /** Go build facts, or undefined when this is not a Go binary. */
  get go(): GoInfo | undefined {
    return this.goInfo.get();
  }

  /** Function ranges from `.eh_frame` (via `.eh_frame_hdr` when present). */
  ehFrameFunctions(): readonly EhFrameFunction[] {
    return this.fdes.get();
  }

  /** GOT slot address -> imported symbol name, from JUMP_SLOT and GLOB_DAT relocations. */
  gotSlotSymbols(): Map<number, string> {
    const out = new Map<number, string>();
    const k = this.kinds;
    if (!k || this.type === 'rel') return out;
    const rel = this.relocs.get();
    for (let i = 0; i < rel.count; i++) {
      const type = rel.types[i];
      if (type !== k.jumpSlot && type !== k.globDat) continue;
      const name = relocationSymbolName(this, rel, i);
      if (name) out.set(rel.offsets[i]!, name);
    }
    return out;
  }

  /**
   * Addresses stored into data by RELATIVE (incl. RELR) and IRELATIVE relocations, sorted and
   * unique: the targets of function pointers in initialised data (IRELATIVE: the ifunc resolver).
   */
  relativeTargets(): number[] {
    const k = this.kinds;
    if (!k || this.type === 'rel') return [];
    const rel = this.relocs.get();
    const targets = new Float64Array(rel.count);
    let n = 0;
    for (let i = 0; i < rel.count; i++) {
      const type = rel.types[i];
      if (type === k.relative || type === k.irelative) targets[n++] = rel.addends[i]!;
    }
    const sorted = targets.subarray(0, n).sort();
    const out: number[] = [];
    for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) out.push(sorted[i]!);
    return out;
  }

  /**
   * `length` bytes at virtual address `vaddr` through the PT_LOAD segments, bytes past p_filesz
   * reading as zeros; undefined unless the range lies inside one segment. File bytes as stored:
   * relocations are not applied (see `pointerAt`).
   */
  readVirtual(vaddr: number, length: number): Uint8Array | undefined {
    return this.memory.read(vaddr, length);
  }

  /** The NUL-terminated string at `vaddr` (UTF-8), or undefined if unmapped or longer than `max`. */
  cString(vaddr: number, max: number): string | undefined {
    const s = this.memory.segmentAt(vaddr);
    if (!s || !Number.isSafeInteger(max) || max < 0) return undefined;
    const delta = vaddr - s.vaddr;
    const inFile = Math.max(0, Math.min(max + 1, s.filesz - delta));
    const bytes = inFile > 0 ? this.file.bytes.subarray(s.offset + delta, s.offset + delta + inFile) : new Uint8Array(0);
    const nul = bytes.indexOf(0);
    if (nul >= 0) return this.file.text(s.offset + delta, s.offset + delta + nul);
    // Past p_filesz memory is zero: the string ends there if the segment continues.
    if (inFile <= max && s.memsz > s.filesz && delta <= s.filesz) return this.file.text(s.offset + delta, s.offset + delta + inFile);
    return undefined;
  }

  /** The bytes of the first section named `name` (zeros for SHT_NOBITS), or undefined. */
  sectionBytes(name: string): Uint8Array | undefined {
    const s = this.byName.get(name);
    if (!s) return undefined;
    if (!s.hasFileData) {
      checkLimit(this.limits, 'maxElfBytes', s.size, `${name} (SHT_NOBITS) size`, s.headerOffset);
      return new Uint8Array(s.size);
    }
    return this.sectionData(s).bytes;
  }

  /** The first section named `name`. */
  section(name: string): ElfSection | undefined {
    return this.byName.get(name);
  }

  /**
   * The pointer-sized value at `vaddr` after load-time relocation, when statically known: the
   * relocation's value for a slot covered by RELATIVE / IRELATIVE / absolute / GLOB_DAT / JUMP_SLOT
   * (to a defined symbol), else the stored word. Undefined when unmapped or unknowable.
   */
  pointerAt(vaddr: number): number | undefined {
    const index = this.slots.get()?.get(vaddr);
    if (index !== undefined) return relocatedValue(this, this.relocs.get(), index);
    return slotWord(this, vaddr);
  }

  // ---- ElfContext ----

  /** @internal */
  sectionByName(name: string): ElfSection | undefined {
    return this.byName.get(name);
  }

  /** @internal */
  sectionByType(type: number): ElfSection | undefined {
    return this.byType.get(type);
  }

  /** @internal */
  sectionData(section: ElfSection): ByteReader {
    if (!section.hasFileData) return this.file.sub(0, 0, section.name);
    if (!this.file.has(section.offset, section.size)) {
      throw new ElfFormatError(`section ${section.index} (${section.name}): ${section.offset}+${section.size} runs past the end of the file`, section.headerOffset);
    }
    return this.file.sub(section.offset, section.size, section.name);
  }

  /** @internal */
  rawDynamic(): RawDynamic | undefined {
    return this.raw.get();
  }

  /** @internal */
  dynamicStrings(): StringTable | undefined {
    return this.dynStrings.get();
  }

  /** @internal */
  dynamicSymbolTable(): readonly ElfSymbol[] {
    return this.dynsyms.get();
  }

  /** @internal */
  staticSymbolTable(): readonly ElfSymbol[] {
    return this.syms.get();
  }

  /** @internal */
  relocationKinds(): RelocationKinds | undefined {
    return this.kinds;
  }

}

/**
 * Parses the headers of an ELF object and returns a lazily decoded view of it. Throws
 * `ElfFormatError` (malformed) or `ElfLimitError` (a `LimitExceededError`: a count or size above
 * `limits`); nothing else, from here or from any accessor of the result.
 */
export function parseElf(bytes: Uint8Array, limits: Limits): ElfFile {
  return new ElfFile(bytes, limits);
}
