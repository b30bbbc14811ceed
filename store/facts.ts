/**
 * The facts an analyser produces about one object: the contract between workers (which write them)
 * and the knowledge base and linker (which read them). Facts are computed once per
 * (sha256, analyser name, analyser version) and stored in the knowledge base; everything after
 * (linking across objects, policies) works from facts alone, never from the binary again.
 * Facts are plain JSON, sorted and stable: two runs on the same bytes give identical facts.
 */

export type ElfKind = 'exec' | 'dyn' | 'rel' | 'core' | 'other';

/** What a summary could not resolve: kept visible, later stages decide the fallback. */
export interface UnresolvedSite {
  /** Virtual address of the instruction. */
  readonly address: number;
  /**
   * `syscall-argument`: the number is an argument of the site's function and no call site was
   * resolved (the radare2 analyser resolves none): any syscall may be made there.
   */
  readonly kind: 'syscall-number' | 'wrapper-argument' | 'syscall-argument' | 'indirect-jump-table' | 'undecodable';
  readonly detail?: string;
}

/** What code reachable from a root can do inside one object. Shared by roots with equal answers. */
export interface Reach {
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
   * Of those, sites of kind `syscall-argument` (present only when some are): the object's own
   * syscalls do not bound them, so the scan falls back to Docker's default profile.
   */
  readonly unresolvedArguments?: number;
  /**
   * True when an indirect call is reachable: its callee may be any callback that reached code (of
   * any loaded object) took the address of, or that held data holds (`main` handed to
   * `__libc_start_main`, a `qsort` comparator): the linker adds those callbacks' reaches.
   */
  readonly indirect: boolean;
  /** Callbacks (indices into `ObjectFacts.callbacks`) whose address reachable code takes. */
  readonly callbacks: readonly number[];
  /** Data regions (indices into `ObjectFacts.dataRegions`) reachable code references; absent when none. */
  readonly dataRegions?: readonly number[];
  /**
   * Identifier strings reachable code takes the address of (for a data region's reach: that the
   * region holds): symbol names it may look up in other objects; absent when none.
   */
  readonly names?: readonly string[];
}

/**
 * A data object that holds function pointers (or the address of one that does): its pointers are
 * callable once it is held and any indirect call is reached (worker/native/data-regions.ts).
 */
export interface DataRegion {
  /** Its first address (0: pointers of several places, held whatever runs). */
  readonly address: number;
  /** What it hands out: imports taken by address and the callbacks it holds (a reach index). */
  readonly reach: number;
  /** Regions whose address it holds: held with it. */
  readonly holds: readonly number[];
  /** Exported data symbols that start in it (absent when none): held once a loaded object imports or copies one. */
  readonly symbols?: readonly string[];
  /** Held whatever code runs: data no taken address names, and unsplit data. */
  readonly always: boolean;
  /** The section it starts in (`.data.rel.ro`), when it has one address. */
  readonly section?: string;
}

/** A function whose address is taken in the object, and its reach when entered through a pointer. */
export interface Callback {
  readonly address: number;
  readonly reach: number;
  /** Its symbol name, when the object names the function (symbol table or exports). */
  readonly name?: string;
}

/** One root of an object (an export, the entry point, an initialiser) and its reach. */
export interface ExportSummary {
  /** `name` or `name@version` (`@@` for the default version, as readelf prints). */
  readonly symbol: string;
  readonly address: number;
  /** Index into `ObjectFacts.reaches`. */
  readonly reach: number;
}

/**
 * Exports named `busybox-applet:<name>` are the applets of a multi-call binary (its applet table,
 * worker/native/elf-model.ts): the applet that runs is the one the program is invoked as.
 */
export const APPLET_EXPORT_PREFIX = 'busybox-applet:';

/** The symbol without its ELF version suffix (`name@V`, `name@@V`): the name the loader binds. */
export function symbolName(symbol: string): string {
  const at = symbol.indexOf('@');
  return at < 0 ? symbol : symbol.slice(0, at);
}

/** A multi-call binary's applets among an object's exports, with their names (none for other objects). */
export function appletsOf(facts: Pick<ObjectFacts, 'exports'>): { readonly name: string; readonly root: ExportSummary }[] {
  return exportsNamed(facts, APPLET_EXPORT_PREFIX);
}

/**
 * Exports named `command:<name>` are the records of a program's command table (openssl's, git's;
 * worker/native/command-tables.ts): the command that runs is the one its first argument names.
 */
export const COMMAND_EXPORT_PREFIX = 'command:';

/** A program's commands among its exports, with their names (none for other objects). */
export function commandsOf(facts: Pick<ObjectFacts, 'exports'>): { readonly name: string; readonly root: ExportSummary }[] {
  return exportsNamed(facts, COMMAND_EXPORT_PREFIX);
}

function exportsNamed(facts: Pick<ObjectFacts, 'exports'>, prefix: string): { readonly name: string; readonly root: ExportSummary }[] {
  return facts.exports.filter((root) => root.symbol.startsWith(prefix)).map((root) => ({ name: root.symbol.slice(prefix.length), root }));
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
  /** Distinct reaches, referenced by index from the roots (a Go binary has ~70k exports, few reaches). */
  readonly reaches: readonly Reach[];
  /** Every function whose address is taken in code or data, sorted by address. */
  readonly callbacks: readonly Callback[];
  /**
   * Function pointers held in data (relocations, init/fini arrays, pointer tables), by the data
   * object holding them. An analyser that does not split data gives one region, always held.
   */
  readonly dataRegions: readonly DataRegion[];
  /** Every defined, exported function symbol, sorted by symbol. */
  readonly exports: readonly ExportSummary[];
  /** All unresolved sites of the object, sorted by address. */
  readonly unresolved: readonly UnresolvedSite[];
  /**
   * Identifier strings the object may hand out whatever code runs, sorted (data outside the split
   * regions holds them; every one, for analysers that cannot tell): symbol names it may look up in
   * other objects (`dlsym`; glibc's ld.so finds `__libc_early_init` and libc's malloc by name).
   * With the names of reached code and held data (`Reach.names`), the linker roots the exports they name.
   */
  readonly symbolNames: readonly string[];
  /** Data symbols the object copies into its own memory at load time (R_*_COPY; absent when none). */
  readonly copiedData?: readonly string[];
  /** Strings of read-only data that are absolute paths or library names (exec/dlopen decisions), sorted, capped. */
  readonly pathStrings: readonly string[];
  readonly stats: {
    readonly functions: number;
    readonly syscallSites: number;
    readonly resolvedSites: number;
    readonly codeBytes: number;
  };
}

/** The reach of a root of `facts`. */
export function reachOf(facts: ObjectFacts, root: ExportSummary | number): Reach {
  const reach = facts.reaches[typeof root === 'number' ? root : root.reach];
  if (!reach) throw new RangeError(`facts of sha256:${facts.sha256} have no reach ${typeof root === 'number' ? root : root.reach}`);
  return reach;
}

/** Every syscall the object's code makes at any site: the fallback when some sites are unresolved. */
export function syscallsOfObject(facts: ObjectFacts): Set<string> {
  const names = new Set<string>();
  for (const reach of facts.reaches) for (const name of reach.syscalls) names.add(name);
  return names;
}

