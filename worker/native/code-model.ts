/**
 * What the call-graph engine needs to know about one object, independent of how it was read:
 * code ranges, function seeds, import thunks and slots, and code addresses held in data.
 */
import type { CodeRange } from '../x86/sweep.js';

export interface FunctionSeed {
  readonly address: number;
  /** Symbol names at this address (several aliases are common in libc). */
  readonly names: readonly string[];
}

export interface NamedAddress {
  /** `name`, `name@version` or `name@@version` (default version), as readelf prints. */
  readonly name: string;
  readonly address: number;
}

export interface CodeModel {
  readonly arch: 'x86_64' | 'i386';
  readonly bitness: 32 | 64;
  /** Go's register ABI (all registers but RSP, RBP, R14, R15 are clobbered by calls). */
  readonly goAbi: boolean;
  /** Executable bytes by virtual address. */
  readonly ranges: readonly CodeRange[];
  /** Function starts from symbols, `.eh_frame` FDEs, `.gopclntab`, entry and initialisers. */
  readonly seeds: readonly FunctionSeed[];
  /** PLT sections: every `entrySize` bytes from `start` is one stub. */
  readonly plt: readonly { readonly start: number; readonly size: number; readonly entrySize: number }[];
  /** GOT slot address → imported symbol bound there (JUMP_SLOT, GLOB_DAT). */
  readonly gotSlots: ReadonlyMap<number, string>;
  /** GOT slot address → IFUNC resolver whose result the loader stores there (IRELATIVE). */
  readonly irelativeSlots: ReadonlyMap<number, number>;
  /** IFUNC resolvers: calls through their slots reach every implementation they may return. */
  readonly ifuncResolvers: ReadonlySet<number>;
  /** Imported functions whose address data holds (absolute relocations to undefined symbols). */
  readonly dataImports: readonly string[];
  /** Addresses stored in data that point into code: relocations, init arrays, pointer scans. */
  readonly dataCodePointers: readonly number[];
  /**
   * `.got` slot → the code address a RELATIVE relocation stores there (not in `dataCodePointers`):
   * only code that names the slot reads it, so whether it is a callback depends on that code.
   */
  readonly gotCodePointers: ReadonlyMap<number, number>;
  /**
   * Address of a NUL-terminated read-only string → the exported function it names (a string may
   * be the tail of a longer one: linkers merge suffixes). Code that takes such a string's address
   * may look the function up by name (`dlsym` on the object itself, musl's loader finding its next
   * stage) and call it: it takes the function's address. Strings held in data are in
   * `dataCodePointers` instead.
   */
  readonly exportNameStrings: ReadonlyMap<number, number>;
  /**
   * Every identifier-like read-only string by address (tails included): code that takes one may
   * look up a symbol of that name in another object (`dlsym`, ld.so finding `__libc_early_init`).
   */
  readonly identifierStrings: ReadonlyMap<number, string>;
  /**
   * Identifier strings whose address data outside the split sections holds (relocations; aligned
   * words of an ET_EXEC; all data when it is not split): looked up whatever runs.
   */
  readonly dataNames: readonly string[];
  /**
   * Initialised data of a Go program that nothing relocates (static: no PT_DYNAMIC, no PT_INTERP,
   * no relocations): its non-executable, file-backed PT_LOAD bytes by virtual address, which a load
   * reads as they are in the file unless code writes them (call-graph.ts `unwrittenVariables`).
   * Empty for every other object.
   */
  readonly goStaticData: readonly CodeRange[];
  /**
   * Where data keeps its pointers, for objects whose every pointer in data is a relocation (x86-64
   * ET_DYN: shared libraries and PIE programs); absent for the others, whose data-held pointers all
   * count as held (see `DataLayout`).
   */
  readonly dataLayout?: DataLayout;
  readonly exports: readonly NamedAddress[];
  readonly entry?: number;
  readonly initialisers: readonly NamedAddress[];
}

/**
 * The pointers data holds, by the slot that holds them, so that a pointer counts only once the data
 * object holding it is reachable (worker/native/data-regions.ts). `dataCodePointers` and
 * `dataImports` stay complete; this says where each lives.
 */
export interface DataLayout {
  /** Data sections split into objects at the addresses code and data take: [start, end). */
  readonly sections: readonly { readonly start: number; readonly end: number }[];
  /** Code pointers in those sections: [slot, target]. */
  readonly codeSlots: readonly (readonly [number, number])[];
  /** Imported functions whose address those sections hold: [slot, symbol]. */
  readonly importSlots: readonly (readonly [number, string])[];
  /** Identifier strings those sections hold (names code may look up once the region is held): [slot, name]. */
  readonly nameSlots: readonly (readonly [number, string])[];
  /**
   * Data a command-table record points at besides its name (worker/native/command-tables.ts):
   * [the command's function, data address]; the function holds it, the table does not.
   */
  readonly commandData: readonly (readonly [number, number])[];
  /** Data addresses data holds (RELATIVE relocations, absolute ones to defined data): [slot, target]. */
  readonly dataSlots: readonly (readonly [number, number])[];
  /** `.got` slots that receive a data address: code that reads the slot takes that address. */
  readonly gotData: ReadonlyMap<number, number>;
  /**
   * Exported data objects: held once a loaded object's reached code imports the name (a GOT
   * slot), or a loaded program copies it (R_*_COPY), and not before.
   */
  readonly exportedData: readonly { readonly address: number; readonly name: string }[];
  /** Code pointers held elsewhere (init/fini arrays, other sections, named by held strings): always held. */
  readonly alwaysCode: readonly number[];
  /** Imports whose address is held elsewhere: always held. */
  readonly alwaysImports: readonly string[];
}

/** Whether `address` lies in the object's executable bytes. */
export function inCode(model: Pick<CodeModel, 'ranges'>, address: number): boolean {
  return model.ranges.some((range) => address >= range.start && address < range.start + range.bytes.length);
}

/**
 * Every code address data may hold, `.got` pointers and exports named by strings included: for
 * analysers that do not tell them apart.
 */
export function everyDataPointer(model: Pick<CodeModel, 'dataCodePointers' | 'gotCodePointers' | 'exportNameStrings'>): number[] {
  return [...model.dataCodePointers, ...model.gotCodePointers.values(), ...model.exportNameStrings.values()];
}
