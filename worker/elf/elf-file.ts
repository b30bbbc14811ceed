/**
 * The public view of one ELF object. `parseElf` reads and validates the ELF header, the program
 * and section header tables and PT_INTERP; everything else is decoded on first access and cached.
 * Every method and getter throws only `ElfFormatError` or `ElfLimitError`.
 */
import type { Limits } from '../../infra/limits.js';
import * as C from './constants.js';
import { ElfObject } from './elf-object.js';
import { archName } from './headers.js';
import { relocationSymbolName } from './relocations.js';
import type { EhFrameFunction, ElfDynamic, ElfKind, ElfRelocation, ElfSection, ElfSegment, ElfSymbol, GoInfo } from './types.js';

export class ElfFile {
  /** ELFCLASS32 or ELFCLASS64. */
  readonly class: 32 | 64;
  readonly littleEndian: boolean;
  readonly type: ElfKind;
  /** `e_type` as stored. */
  readonly elfType: number;
  /** `e_machine`. */
  readonly machine: number;
  /** `x86_64`, `i386`, `aarch64`, `arm`, `riscv64`, ... or `em-<e_machine>`. */
  readonly arch: string;
  readonly entry: number;
  /** `e_flags` (ARM EABI version, RISC-V float ABI, MIPS ISA, ...). */
  readonly flags: number;
  /** `EI_OSABI`. */
  readonly osabi: number;
  /** Size of the file in bytes. */
  readonly size: number;
  /** Program headers in table order. */
  readonly segments: readonly ElfSegment[];
  /** Section headers in table order, index 0 (SHT_NULL) included; empty without a section table. */
  readonly sections: readonly ElfSection[];
  /** The PT_INTERP path, without its NUL. */
  readonly interpreter: string | undefined;

  readonly #o: ElfObject;

  constructor(bytes: Uint8Array, limits: Limits) {
    const o = new ElfObject(bytes, limits);
    const h = o.header;
    this.#o = o;
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
    this.segments = o.segments;
    this.sections = o.sections;
    this.interpreter = o.interpreter;
  }

  /** The dynamic section's facts (empty lists, and the array sections, for objects without one). */
  get dynamic(): ElfDynamic {
    return this.#o.dynamic.get();
  }

  /** `.dynsym` (or DT_SYMTAB sized by DT_HASH / DT_GNU_HASH), with GNU versions; [0] is the null symbol. */
  get dynamicSymbols(): readonly ElfSymbol[] {
    return this.#o.dynamicSymbols.get();
  }

  /** `.symtab`; empty when stripped. */
  get symbols(): readonly ElfSymbol[] {
    return this.#o.symbols.get();
  }

  /** Every relocation once: the loader's tables (through the dynamic section) first, then sections. */
  get relocations(): readonly ElfRelocation[] {
    return this.#o.relocationObjects.get();
  }

  /** No `.symtab` section. */
  get stripped(): boolean {
    return this.#o.sectionByType(C.SHT_SYMTAB) === undefined;
  }

  /** Neither PT_INTERP nor PT_DYNAMIC: nothing else is loaded with this object. */
  get isStatic(): boolean {
    return this.interpreter === undefined && !this.segments.some((s) => s.type === C.PT_DYNAMIC);
  }

  /** ET_DYN with a program interpreter, or marked DF_1_PIE (static-pie has no interpreter). */
  get isPie(): boolean {
    if (this.type !== 'dyn') return false;
    if (this.interpreter !== undefined) return true;
    // Only the raw entries: a PIE check should not depend on the rest of the dynamic section.
    let flags1 = 0;
    for (const e of this.#o.rawDynamic()?.entries ?? []) if (e.tag === C.DT_FLAGS_1) flags1 |= e.value;
    return (flags1 & C.DF_1_PIE) !== 0;
  }

  /** Go build facts, or undefined when this is not a Go binary; `functions` is computed on first use. */
  get go(): GoInfo | undefined {
    return this.#o.go.get();
  }

  /** Function ranges of `.eh_frame`'s FDEs (through `.eh_frame_hdr`'s table when there is one). */
  ehFrameFunctions(): readonly EhFrameFunction[] {
    return this.#o.fdes.get();
  }

  /** GOT slot address -> imported symbol name (unversioned), from JUMP_SLOT and GLOB_DAT relocations. */
  gotSlotSymbols(): Map<number, string> {
    const o = this.#o;
    const out = new Map<number, string>();
    const k = o.relocationKinds();
    if (!k || this.type === 'rel') return out;
    const rel = o.relocations.get();
    for (let i = 0; i < rel.count; i++) {
      const type = rel.types[i];
      if (type !== k.jumpSlot && type !== k.globDat) continue;
      const name = relocationSymbolName(o, rel, i);
      if (name) out.set(rel.offsets[i]!, name);
    }
    return out;
  }

  /** Names of the data objects the loader copies into this executable (COPY relocations), sorted. */
  copyRelocatedSymbols(): string[] {
    const o = this.#o;
    const k = o.relocationKinds();
    const names = new Set<string>();
    if (!k || this.type === 'rel') return [];
    const rel = o.relocations.get();
    for (let i = 0; i < rel.count; i++) {
      if (rel.types[i] !== k.copy) continue;
      const name = relocationSymbolName(o, rel, i);
      if (name) names.add(name);
    }
    return [...names].sort();
  }

  /**
   * Addresses stored into data by RELATIVE (RELR included) and IRELATIVE relocations, sorted and
   * unique: pointers in initialised data (function tables, vtables), and ifunc resolvers.
   */
  relativeTargets(): number[] {
    return [...new Set(this.relativeSlots().values())].sort((a, b) => a - b);
  }

  /** Slot address → the address a RELATIVE (RELR included) or IRELATIVE relocation stores there. */
  relativeSlots(): Map<number, number> {
    const o = this.#o;
    const k = o.relocationKinds();
    const out = new Map<number, number>();
    if (!k || this.type === 'rel') return out;
    const rel = o.relocations.get();
    for (let i = 0; i < rel.count; i++) {
      const type = rel.types[i];
      if (type === k.relative || type === k.irelative) out.set(rel.offsets[i]!, rel.addends[i]!);
    }
    return out;
  }

  /**
   * `length` bytes at `vaddr` through the PT_LOAD segments (bytes past p_filesz read as zeros up to
   * p_memsz), or undefined unless the range lies inside one segment. File-backed ranges are views
   * of the input (do not mutate); relocations are not applied (see `pointerAt`).
   */
  readVirtual(vaddr: number, length: number): Uint8Array | undefined {
    return this.#o.memory.read(vaddr, length);
  }

  /** The pointer-sized value at `vaddr` as the loader leaves it (RELATIVE etc. applied), when knowable. */
  pointerAt(vaddr: number): number | undefined {
    return this.#o.pointerAt(vaddr);
  }

  /** The NUL-terminated string at `vaddr` (UTF-8), or undefined if unmapped or longer than `max` bytes. */
  cString(vaddr: number, max: number): string | undefined {
    const o = this.#o;
    const s = o.memory.segmentAt(vaddr);
    if (!s || !Number.isSafeInteger(max) || max < 0) return undefined;
    const delta = vaddr - s.vaddr;
    if (delta >= s.filesz) return ''; // .bss: memory past p_filesz is zero
    const available = s.filesz - delta;
    const start = s.offset + delta;
    const nul = o.file.bytes.subarray(start, start + Math.min(max + 1, available)).indexOf(0);
    if (nul >= 0) return o.file.text(start, start + nul);
    // The file part ends within `max` bytes and zeros follow it in memory: the string ends there.
    if (available <= max && s.memsz > s.filesz) return o.file.text(start, start + available);
    return undefined;
  }

  /**
   * The file bytes of the first section named `name` (a view of the input), or undefined when there
   * is none. SHT_NOBITS sections occupy no file bytes: an empty array (their memory is zeros; see
   * `readVirtual`) — nothing is allocated for what a header merely claims.
   */
  sectionBytes(name: string): Uint8Array | undefined {
    const s = this.#o.sectionByName(name);
    return s ? this.#o.sectionData(s).bytes : undefined;
  }

  /** The first section named `name`. */
  section(name: string): ElfSection | undefined {
    return this.#o.sectionByName(name);
  }
}

/**
 * Parses the headers of an ELF object and returns a lazily decoded view of it. Throws
 * `ElfFormatError` (malformed) or `ElfLimitError` (a `LimitExceededError`: a count or size above
 * `limits`), and nothing else — from here or from any accessor of the result.
 */
export function parseElf(bytes: Uint8Array, limits: Limits): ElfFile {
  return new ElfFile(bytes, limits);
}
