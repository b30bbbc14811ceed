/**
 * The internal state of one parsed ELF object: validated headers, the address map, and every table
 * decoded lazily and cached — failures too, so a broken table throws the same `ElfFormatError` on
 * each access without being decoded again. It implements `ElfContext` for the table readers;
 * `ElfFile` is the public face over it.
 */
import type { Limits } from '../../infra/limits.js';
import * as C from './constants.js';
import type { ElfContext, RawDynamic } from './context.js';
import { parseDynamic, parseDynamicStrings, parseRawDynamic } from './dynamic.js';
import { parseEhFrame } from './eh-frame.js';
import { checkLimit, ElfFormatError } from './errors.js';
import { detectGo } from './go.js';
import { type ElfHeader, parseHeader, parseTables } from './headers.js';
import { VirtualMemory } from './memory.js';
import { ByteReader } from './reader.js';
import { relocationKinds, type RelocationKinds } from './relocation-types.js';
import { materialize, parseRelocations, relocatedValue, type Relocations, SlotIndex, slotWord } from './relocations.js';
import type { StringTable } from './strings.js';
import { parseDynamicSymbols, parseStaticSymbols } from './symbols.js';
import type { EhFrameFunction, ElfDynamic, ElfRelocation, ElfSection, ElfSegment, ElfSymbol, GoInfo } from './types.js';

/** A value computed once; a thrown error is remembered and rethrown. */
export class Lazy<T> {
  private done = false;
  private failed = false;
  private value: T | undefined;
  private error: unknown;

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

export class ElfObject implements ElfContext {
  readonly file: ByteReader;
  readonly header: ElfHeader;
  readonly memory: VirtualMemory;
  readonly segments: readonly ElfSegment[];
  readonly sections: readonly ElfSection[];
  readonly wordSize: number;
  readonly interpreter: string | undefined;

  private readonly byName = new Map<string, ElfSection>();
  private readonly byType = new Map<number, ElfSection>();
  private readonly kinds: RelocationKinds | undefined;

  readonly raw = new Lazy<RawDynamic | undefined>(() => parseRawDynamic(this));
  readonly dynStrings = new Lazy<StringTable | undefined>(() => parseDynamicStrings(this, this.rawDynamic()));
  readonly dynamic = new Lazy<ElfDynamic>(() => parseDynamic(this));
  readonly dynamicSymbols = new Lazy<ElfSymbol[]>(() => parseDynamicSymbols(this));
  readonly symbols = new Lazy<ElfSymbol[]>(() => parseStaticSymbols(this));
  readonly relocations = new Lazy<Relocations>(() => parseRelocations(this));
  readonly relocationObjects = new Lazy<ElfRelocation[]>(() => materialize(this, this.relocations.get()));
  readonly slots = new Lazy<SlotIndex | undefined>(() => (this.header.kind === 'exec' || this.header.kind === 'dyn' ? new SlotIndex(this.relocations.get()) : undefined));
  readonly fdes = new Lazy<EhFrameFunction[]>(() => parseEhFrame(this));
  readonly go = new Lazy<GoInfo | undefined>(() => detectGo(this));

  constructor(
    bytes: Uint8Array,
    readonly limits: Limits,
  ) {
    checkLimit(limits, 'maxElfBytes', bytes.byteLength, 'file size', 0);
    this.header = parseHeader(new ByteReader(bytes, true));
    this.file = new ByteReader(bytes, this.header.littleEndian);
    const tables = parseTables(this.file, this.header, limits);
    this.wordSize = this.header.is64 ? 8 : 4;
    this.segments = tables.segments;
    this.sections = tables.sections;
    for (const s of this.sections) {
      if (s.index === 0) continue;
      if (!this.byName.has(s.name)) this.byName.set(s.name, s);
      if (!this.byType.has(s.type)) this.byType.set(s.type, s);
    }
    this.memory = new VirtualMemory(this.file, this.segments, limits);
    this.kinds = relocationKinds(this.header.machine, this.header.is64);
    this.interpreter = this.readInterpreter();
  }

  private readInterpreter(): string | undefined {
    const seg = this.segments.find((s) => s.type === C.PT_INTERP);
    if (!seg) return undefined;
    if (seg.filesz === 0 || !this.file.has(seg.offset, seg.filesz)) {
      // objcopy --only-keep-debug files keep the program headers of a binary whose bytes they dropped.
      const hint = seg.filesz === 0 ? ' (p_filesz 0: a separate debug-info file?)' : '';
      throw new ElfFormatError(`PT_INTERP lies outside the file${hint}`, seg.headerOffset);
    }
    // Linux refuses an interpreter path longer than PATH_MAX, its NUL included (fs/binfmt_elf.c:
    // p_filesz > PATH_MAX is ENOEXEC). Invariant: the interpreter in facts and reports is a path
    // of at most PATH_MAX bytes, never megabytes of whatever the segment holds.
    if (seg.filesz > C.PATH_MAX) throw new ElfFormatError(`PT_INTERP p_filesz ${seg.filesz} is above PATH_MAX (${C.PATH_MAX}): the kernel refuses such an interpreter`, seg.headerOffset);
    const nul = this.file.bytes.subarray(seg.offset, seg.offset + seg.filesz).indexOf(0);
    // The kernel requires the path to be NUL-terminated inside p_filesz (fs/binfmt_elf.c).
    if (nul < 0) throw new ElfFormatError('PT_INTERP path is not NUL-terminated', seg.offset);
    return this.file.text(seg.offset, seg.offset + nul);
  }

  sectionByName(name: string): ElfSection | undefined {
    return this.byName.get(name);
  }

  sectionByType(type: number): ElfSection | undefined {
    return this.byType.get(type);
  }

  sectionData(section: ElfSection): ByteReader {
    if (!section.hasFileData) return this.file.sub(0, 0, section.name);
    if (!this.file.has(section.offset, section.size)) {
      throw new ElfFormatError(`section ${section.index} (${section.name}): ${section.offset}+${section.size} runs past the end of the file`, section.headerOffset);
    }
    return this.file.sub(section.offset, section.size, section.name);
  }

  rawDynamic(): RawDynamic | undefined {
    return this.raw.get();
  }

  dynamicStrings(): StringTable | undefined {
    return this.dynStrings.get();
  }

  dynamicSymbolTable(): readonly ElfSymbol[] {
    return this.dynamicSymbols.get();
  }

  staticSymbolTable(): readonly ElfSymbol[] {
    return this.symbols.get();
  }

  relocationKinds(): RelocationKinds | undefined {
    return this.kinds;
  }

  pointerAt(vaddr: number): number | undefined {
    const index = this.slots.get()?.get(vaddr);
    if (index !== undefined) return relocatedValue(this, this.relocations.get(), index);
    return slotWord(this, vaddr);
  }
}
