/**
 * What the table readers (dynamic, symbols, relocations, eh_frame, Go) need from the file: the
 * bytes, the validated headers, the address map and each other's results. `ElfFile` implements it;
 * the readers depend on this interface only, so each module keeps one job.
 */
import type { Limits } from '../../infra/limits.js';
import type { ElfHeader } from './headers.js';
import type { VirtualMemory } from './memory.js';
import type { ByteReader } from './reader.js';
import type { RelocationKinds } from './relocation-types.js';
import type { StringTable } from './strings.js';
import type { ElfDynamicEntry, ElfSection, ElfSegment, ElfSymbol } from './types.js';

export interface RawDynamic {
  readonly entries: readonly ElfDynamicEntry[];
  /** First entry with `tag`, if any. */
  get(tag: number): ElfDynamicEntry | undefined;
}

export interface ElfContext {
  readonly file: ByteReader;
  readonly header: ElfHeader;
  readonly limits: Limits;
  readonly memory: VirtualMemory;
  readonly sections: readonly ElfSection[];
  readonly segments: readonly ElfSegment[];
  /** Word size in bytes (4 or 8). */
  readonly wordSize: number;
  sectionByName(name: string): ElfSection | undefined;
  sectionByType(type: number): ElfSection | undefined;
  /** The file bytes of a section; `ElfFormatError` when they lie outside the file. */
  sectionData(section: ElfSection): ByteReader;
  rawDynamic(): RawDynamic | undefined;
  dynamicStrings(): StringTable | undefined;
  dynamicSymbolTable(): readonly ElfSymbol[];
  staticSymbolTable(): readonly ElfSymbol[];
  /** RELATIVE/IRELATIVE/JUMP_SLOT/GLOB_DAT numbers of this machine, when known. */
  relocationKinds(): RelocationKinds | undefined;
  /** The pointer-sized value the loader leaves at `vaddr`, when it can be known statically. */
  pointerAt(vaddr: number): number | undefined;
}
