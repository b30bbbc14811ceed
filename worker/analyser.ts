/**
 * The analyser contract and the facts it produces. Facts are computed once per
 * (sha256, analyser name, analyser version) and stored in the knowledge base; everything after
 * (linking across objects, policies) works from facts alone, never from the binary again.
 * Facts are plain JSON, sorted and stable: two runs on the same bytes give identical facts.
 */

export type ElfKind = 'exec' | 'dyn' | 'rel' | 'core' | 'other';

/** What a summary could not resolve: kept visible, later stages decide the fallback. */
export interface UnresolvedSite {
  /** Virtual address of the instruction. */
  readonly address: number;
  readonly kind: 'syscall-number' | 'wrapper-argument' | 'indirect-jump-table' | 'undecodable';
  readonly detail?: string;
}

/** Reachability summary of one root inside one object (an export, the entry, an initialiser). */
export interface ExportSummary {
  /** `name` or `name@version` (`@@` for the default version, as readelf prints). */
  readonly symbol: string;
  readonly address: number;
  /**
   * Sorted syscall names (the kernel's, as seccomp profiles spell them) of the object's
   * architecture; `int 0x80` sites in x86-64 code are named from the i386 table.
   */
  readonly syscalls: readonly string[];
  /** Imported symbols (PLT/GOT) reachable from this root, sorted; linked across objects later. */
  readonly imports: readonly string[];
  /** Count of unresolved sites reachable from this root; the sites themselves are in `unresolved`. */
  readonly unresolvedCount: number;
  /**
   * True when an indirect call is reachable: the callee may be any address-taken function of any
   * loaded object (callbacks such as `main` passed to `__libc_start_main`), so linking must add
   * every loaded object's `addressTaken` summary.
   */
  readonly indirect: boolean;
}

export interface ObjectFacts {
  readonly sha256: string;
  readonly analyser: string;
  readonly analyserVersion: number;
  /** `x86_64`, `aarch64`, `i386`, ... (the syscall table used for numbers). */
  readonly arch: string;
  readonly elfType: ElfKind;
  readonly interpreter?: string;
  readonly soname?: string;
  readonly needed: readonly string[];
  readonly rpath: readonly string[];
  readonly runpath: readonly string[];
  readonly flags: {
    readonly static: boolean;
    readonly pie: boolean;
    readonly go: boolean;
    readonly stripped: boolean;
  };
  /** The entry point's closure (executables), or undefined for libraries without one. */
  readonly entry?: ExportSummary;
  /** DT_INIT, DT_INIT_ARRAY (and preinit) functions: they run when the object is loaded. */
  readonly initialisers: readonly ExportSummary[];
  /** The closure of every function whose address is taken in this object (callback targets). */
  readonly addressTaken: ExportSummary;
  /** Every defined, exported function symbol, sorted by symbol. */
  readonly exports: readonly ExportSummary[];
  /** All unresolved sites of the object, sorted by address. */
  readonly unresolved: readonly UnresolvedSite[];
  /** Strings in the object that name files (for exec/dlopen decisions later), sorted, capped. */
  readonly pathStrings: readonly string[];
  readonly stats: {
    readonly functions: number;
    readonly syscallSites: number;
    readonly resolvedSites: number;
    readonly codeBytes: number;
  };
}

export interface AnalysisContext {
  readonly signal: AbortSignal;
  /** Called now and then during long analyses (cluster heartbeats). */
  readonly working: () => void;
}

export interface Analyser {
  readonly name: string;
  readonly version: number;
  analyze(bytes: Uint8Array, sha256: string, context: AnalysisContext): Promise<ObjectFacts>;
}
