/** The shapes the ELF reader exposes. All numbers are exact JS numbers (values above 2^53 are refused). */
import type { ElfKind } from '../../store/facts.js';

export type { ElfKind };

export interface ElfSegment {
  /** Index in the program header table. */
  readonly index: number;
  /** `p_type` (PT_LOAD = 1, PT_DYNAMIC = 2, PT_INTERP = 3, PT_GNU_EH_FRAME = 0x6474e550, ...). */
  readonly type: number;
  /** `p_flags`: PF_X = 1, PF_W = 2, PF_R = 4. */
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: number;
  readonly paddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly align: number;
  /** File offset of this program header. */
  readonly headerOffset: number;
}

export interface ElfSection {
  readonly index: number;
  readonly name: string;
  /** `sh_type` (SHT_PROGBITS = 1, SHT_NOBITS = 8, ...). */
  readonly type: number;
  readonly flags: number;
  readonly addr: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
  /** File offset of this section header. */
  readonly headerOffset: number;
  /** False for SHT_NOBITS and SHT_NULL: the section occupies no bytes of the file. */
  readonly hasFileData: boolean;
}

export interface ElfDynamicEntry {
  readonly tag: number;
  readonly value: number;
  /** File offset of the entry. */
  readonly offset: number;
}

export interface ElfDynamic {
  /** Entries up to (excluding) DT_NULL, in file order. */
  readonly entries: readonly ElfDynamicEntry[];
  readonly needed: readonly string[];
  readonly soname?: string;
  /**
   * DT_RPATH / DT_RUNPATH split on ':' (empty components dropped, `$ORIGIN` kept verbatim). Of a
   * tag repeated, the last entry, as the loaders read it.
   */
  readonly rpath: readonly string[];
  readonly runpath: readonly string[];
  readonly init?: number;
  readonly fini?: number;
  /**
   * Function addresses of DT_INIT_ARRAY / DT_FINI_ARRAY / DT_PREINIT_ARRAY, relocated: a slot
   * covered by a RELATIVE (or symbolic, to a defined symbol) relocation reads as the loader would
   * write it. Entries 0 and -1 (legacy markers) are dropped. For objects without PT_DYNAMIC (static
   * executables) the SHT_INIT_ARRAY / SHT_FINI_ARRAY / SHT_PREINIT_ARRAY sections are read instead.
   */
  readonly initArray: readonly number[];
  readonly finiArray: readonly number[];
  readonly preinitArray: readonly number[];
  /** DT_FLAGS and DT_FLAGS_1 (0 when absent). */
  readonly flags: number;
  readonly flags1: number;
  /** DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW. */
  readonly bindNow: boolean;
  /** DF_1_PIE in DT_FLAGS_1. */
  readonly pieFlag: boolean;
}

export type ElfSymbolType = 'notype' | 'object' | 'func' | 'section' | 'file' | 'common' | 'tls' | 'ifunc' | `stt-${number}`;
export type ElfSymbolBind = 'local' | 'global' | 'weak' | 'unique' | `stb-${number}`;
export type ElfSymbolVisibility = 'default' | 'internal' | 'hidden' | 'protected';

export interface ElfSymbol {
  /** Index in its symbol table. */
  readonly index: number;
  readonly name: string;
  readonly value: number;
  readonly size: number;
  readonly type: ElfSymbolType;
  readonly bind: ElfSymbolBind;
  readonly visibility: ElfSymbolVisibility;
  /** `st_shndx` as stored (SHN_UNDEF = 0, SHN_ABS = 0xfff1, SHN_COMMON = 0xfff2, ...). */
  readonly sectionIndex: number;
  /** `st_shndx !== SHN_UNDEF`. */
  readonly defined: boolean;
  /** GNU symbol version (dynamic symbols only; absent for local/unversioned entries). */
  readonly version?: string;
  /** True when the version is the default one (`.gnu.version` hidden bit clear). */
  readonly defaultVersion?: boolean;
  /**
   * Where the version is declared: `verdef` (this object defines it, `.gnu.version_d`) or `verneed`
   * (a needed library does, `.gnu.version_r`; also copy-relocated data). readelf prints `@@` only for
   * a non-hidden `verdef` version, and omits the version of the version-definition symbols themselves.
   */
  readonly versionSource?: 'verdef' | 'verneed';
}

export interface ElfRelocation {
  /** `r_offset`: a virtual address in ET_EXEC/ET_DYN, a section offset in ET_REL. */
  readonly offset: number;
  /** Machine-specific relocation type (`ELF64_R_TYPE`). */
  readonly type: number;
  readonly symbolIndex: number;
  /** Name of the symbol (without version), when `symbolIndex !== 0` and a symbol table is linked. */
  readonly symbolName?: string;
  /** Explicit addend (RELA) or, for REL and RELR entries, the implicit addend stored in the slot. */
  readonly addend: number;
  /** False for REL/RELR entries (the addend was read from the relocated slot, 0 if unmapped). */
  readonly explicitAddend: boolean;
  /** Where the entry came from: a section name (`.rela.dyn`) or a dynamic tag (`DT_JMPREL`). */
  readonly table: string;
}

export interface EhFrameFunction {
  readonly start: number;
  readonly end: number;
}

export interface GoFunction {
  readonly name: string;
  readonly entry: number;
  readonly end: number;
}

export type PclntabVersion = '1.2' | '1.16' | '1.18' | '1.20';

export interface GoInfo {
  /** The Go build ID (`.note.go.buildid`, or a PT_NOTE owned by "Go" with type 4). */
  readonly buildId?: string;
  /** `go1.22.3`, from `.go.buildinfo` (or the `\xff Go buildinf:` blob in writable data). */
  readonly version?: string;
  /**
   * Functions of the pclntab, sorted by entry; `end` is the next function's entry. Computed on
   * first access. Empty when no pclntab was found (neither a section nor a valid header in data).
   */
  readonly functions: readonly GoFunction[];
  /** Layout of the pclntab found (computed with `functions`), undefined when none was found. */
  readonly pclntabVersion: PclntabVersion | undefined;
}
