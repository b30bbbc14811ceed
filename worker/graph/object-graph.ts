/**
 * The call graph of one object, as every analyser hands it to the shared summary and facts code
 * (worker/graph/summaries.ts, worker/graph/facts.ts). How it is built differs (the native analyser
 * sweeps and tracks values itself, the radare2 analyser asks radare2); what it means does not:
 * functions keyed by entry address, their direct callees, imports, syscall sites and the
 * address-taken sets that bound indirect calls.
 */

export interface SyscallRef {
  /** The table the number belongs to: the object's own, or i386 for `int 0x80` in 64-bit code. */
  readonly table: 'native' | 'i386';
  readonly number: number;
}

export interface UnresolvedRef {
  readonly address: number;
  readonly kind: 'syscall-number' | 'wrapper-argument' | 'syscall-argument' | 'undecodable';
  readonly detail?: string;
}

export interface GraphFunction {
  /** Entry addresses of functions this one calls or tail-jumps to. */
  readonly callees: ReadonlySet<number>;
  /** Imported symbols it calls (through PLT stubs or GOT slots). */
  readonly imports: ReadonlySet<string>;
  /** Syscall sites with a known number, keyed `native:<n>` / `i386:<n>`. */
  readonly syscalls: ReadonlyMap<string, SyscallRef>;
  readonly unresolved: readonly UnresolvedRef[];
  /** Makes calls the analyser cannot follow (indirect call, or indirect jump that is not a jump table). */
  readonly indirect: boolean;
  /** Functions whose address this function takes: callbacks it may hand out. */
  readonly takesFunctions: ReadonlySet<number>;
  /** Identifier strings whose address this function takes: symbol names it may look up (`dlsym`). */
  readonly takesNames: ReadonlySet<string>;
  /** Syscall sites whose number is a parameter: counted as unresolved only when reached indirectly. */
  readonly wrapperSites: number;
  /** Data regions (indices into `ObjectGraph.dataRegions`) this function references. */
  readonly dataRegions: ReadonlySet<number>;
  /** Symbol names of its entry (symbol table, exports), when the object has them: what reports call it. */
  readonly names?: readonly string[];
}

/** A `GraphFunction` while an analyser builds it. */
export interface GraphFunctionBuilder extends GraphFunction {
  readonly callees: Set<number>;
  readonly imports: Set<string>;
  readonly syscalls: Map<string, SyscallRef>;
  readonly unresolved: UnresolvedRef[];
  indirect: boolean;
  readonly takesFunctions: Set<number>;
  readonly takesNames: Set<string>;
  wrapperSites: number;
  dataRegions: Set<number>;
  /** IFUNC resolvers called through IRELATIVE slots: edges to their implementations, added last. */
  readonly ifuncCalls: Set<number>;
}

export function emptyGraphFunction(): GraphFunctionBuilder {
  return { callees: new Set(), imports: new Set(), syscalls: new Map(), unresolved: [], indirect: false, takesFunctions: new Set(), takesNames: new Set(), wrapperSites: 0, dataRegions: new Set(), ifuncCalls: new Set() };
}

export interface GraphDataRegion {
  /** Where it starts (0: pointers of several places, held whatever runs). */
  readonly address: number;
  /** Functions whose address it holds. */
  readonly taken: readonly number[];
  /** Imported functions whose address it holds. */
  readonly imports: readonly string[];
  /** Regions whose address it holds: held with it. */
  readonly holds: readonly number[];
  /** Exported data symbols that start in it: held once a loaded object imports (or copies) one. */
  readonly symbols: readonly string[];
  /** Identifier strings whose address it holds: symbol names code may look up once it is held. */
  readonly names: readonly string[];
  /** Held whatever code runs (data no taken address names, unsplit data). */
  readonly always: boolean;
}

export interface ObjectGraph {
  readonly functions: ReadonlyMap<number, GraphFunction>;
  /** Functions whose address is taken in code or data: the possible targets of indirect calls. */
  readonly addressTaken: ReadonlySet<number>;
  /**
   * Function pointers and imports held in data, by the data object that holds them: callable once
   * reached code references that object (or a held object holds its address), or always. An
   * analyser that does not split data gives one region, always held, with all of them.
   */
  readonly dataRegions: readonly GraphDataRegion[];
  /**
   * Identifier strings that may be looked up whatever code runs (sorted): held by data outside the
   * split regions, or all of them for an analyser that cannot tell (the names a function takes, or a
   * region holds, count once it is reached).
   */
  readonly namesTaken: readonly string[];
  /** IFUNC resolver → the implementations it may return. */
  readonly ifuncImplementations: ReadonlyMap<number, readonly number[]>;
  readonly stats: { readonly syscallSites: number; readonly resolvedSites: number };
}
