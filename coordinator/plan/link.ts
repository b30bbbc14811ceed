/**
 * Links per-object facts the way the dynamic loader binds symbols (ELF gABI, "Shared Object
 * Dependencies"; glibc's `_dl_lookup_symbol_x`): every import is bound to the first object of the
 * global scope (the executable, then its dependencies breadth-first) that exports the name, and
 * what that export reaches is followed in turn, to a fixpoint. Also reached: the loader's own entry,
 * every loaded object's initialisers, and — once any reached code makes an indirect call — the
 * callbacks that reached code took the address of, and those held in data that reached code
 * references (or that held data points at, or that any code may read), of every loaded object
 * (`main`, whose address `_start` hands to `__libc_start_main`, is one).
 */
import { appletsOf, type Callback, commandsOf, type DataRegion, type ObjectFacts, type Reach, reachOf, symbolName } from '../../store/facts.js';

export interface LoadedObject {
  /** Where the object was found (its path in the image), for witness paths. */
  readonly path: string;
  readonly facts: ObjectFacts;
}

export interface LinkInput {
  /** The global scope in lookup order: the program first, then its dependencies (BFS). */
  readonly scope: readonly LoadedObject[];
  /** The dynamic loader (PT_INTERP); absent for static programs. */
  readonly interpreter?: LoadedObject;
  /**
   * Objects loaded at run time (dlopen, NSS and gconv modules, interpreter extension modules):
   * their initialisers and every export are roots, since `dlsym` may fetch any of them.
   */
  readonly loadedAtRunTime?: readonly LoadedObject[];
  /**
   * Of those, the ones that came only as dependencies of another (DT_NEEDED of a dlopen'd module):
   * bound through the imports that reach them, like any dependency; their exports are not roots.
   */
  readonly loadedAsDependency?: ReadonlySet<LoadedObject>;
  /**
   * A multi-call program (its `busybox-applet:*` exports): the applets that run, by name. Absent,
   * or a name it has no applet for: every applet (what it runs is not known).
   */
  readonly applets?: readonly string[];
  /**
   * A program with a command table (its `command:*` exports): the words that may name the command
   * it runs (the name it is invoked as, its file's name, its first argument when the command line
   * says it). The commands they name run; when none names one, every command (what runs is not known).
   */
  readonly commandWords?: readonly string[];
}

export interface LinkedReach {
  readonly syscalls: ReadonlySet<string>;
  readonly unresolvedCount: number;
  /** Imports no object of the scope exports (a weak undefined symbol, or a missing library). */
  readonly unboundImports: readonly string[];
  /** One way each syscall is reached: the chain of roots that led to it, outermost first. */
  readonly witnesses: ReadonlyMap<string, readonly string[]>;
  /** Imported symbols reached (bound or not): what decides dlopen, NSS, exec and the like. */
  readonly reachedImports: ReadonlySet<string>;
  /** How each syscall is reached at best (the witness is that way): what the width of a profile comes from. */
  readonly ways: ReadonlyMap<string, ReachWay>;
  /** Objects with unresolved sites in reached code, and how many. */
  readonly unresolvedBy: ReadonlyMap<string, number>;
  /**
   * The same objects with one witness path each: how the first reach with an unresolved site of
   * the object was entered. Any syscall may be made at such a site (ARCHITECTURE.md, "When the
   * analysis is unsure").
   */
  readonly unresolvedWitnesses: ReadonlyMap<string, readonly string[]>;
}


/**
 * How code is reached, from the most certain to the least: calls and imports from the roots; a
 * callback whose address reached code took; a function pointer held in reached data; an export
 * found by name (`dlsym`, the loader's lookups); any export of an object loaded at run time. Work
 * is done in this order (lowest first), so each syscall's witness takes the most certain way.
 */
export const REACH_WAYS = ['direct', 'callback', 'data', 'lookup', 'run-time module'] as const;
export type ReachWay = (typeof REACH_WAYS)[number];
const WAY = { direct: 0, callback: 1, data: 2, lookup: 3, module: 4 } as const;

/**
 * Syscalls the kernel makes a process perform without any call site: after a signal handler
 * returns, the kernel jumps to the `sa_restorer` trampoline installed with the handler, which
 * calls `rt_sigreturn` (i386: `sigreturn` too). Kept as data, each with its reason.
 */
export const IMPLIED_SYSCALLS: readonly { readonly when: string; readonly then: readonly string[]; readonly why: string }[] = [
  { when: 'rt_sigaction', then: ['rt_sigreturn'], why: 'the signal trampoline (sa_restorer) returns from every handler through rt_sigreturn' },
  { when: 'sigaction', then: ['sigreturn', 'rt_sigreturn'], why: 'legacy i386 handlers return through sigreturn' },
];

/** Imports that look a symbol up by a name the caller passes (dlfcn.h). */
const LOOKUP_IMPORTS = ['dlsym', 'dlvsym'];

interface Pending {
  readonly object: LoadedObject;
  readonly reach: number;
  readonly path: readonly string[];
  /** Index into REACH_WAYS: the least certain step on the way here. */
  readonly way: number;
}

/** A callback as a witness step: its name when the object has one, and its address. */
function callbackStep(callback: Callback): string {
  const address = `0x${callback.address.toString(16)}`;
  return callback.name ? `${callback.name} <callback ${address}>` : `<callback ${address}>`;
}

/** A data region as a witness step: the data symbol or section that holds the pointers, and where. */
function regionStep(region: DataRegion): string {
  if (region.address === 0) return '<function pointers in data>';
  const where = region.symbols?.[0] ?? region.section ?? 'data';
  return `<function pointers in ${where} at 0x${region.address.toString(16)}>`;
}

export function linkFacts(input: LinkInput): LinkedReach {
  const runTime = input.loadedAtRunTime ?? [];
  const objects = [
    ...input.scope,
    ...(input.interpreter && !input.scope.includes(input.interpreter) ? [input.interpreter] : []),
    ...runTime.filter((object) => !input.scope.includes(object) && object !== input.interpreter),
  ];
  // name → first export of that name in scope order (default version preferred inside one object).
  const definitions = new Map<string, { object: LoadedObject; reach: number; symbol: string }>();
  // The loader is in the global scope too (last unless a dependency named it): musl's is its libc.
  for (const object of objects) {
    const own = new Map<string, { reach: number; symbol: string; isDefault: boolean }>();
    for (const item of object.facts.exports) {
      const name = symbolName(item.symbol);
      const isDefault = !item.symbol.includes('@') || item.symbol.includes('@@');
      const previous = own.get(name);
      if (!previous || (isDefault && !previous.isDefault)) own.set(name, { reach: item.reach, symbol: item.symbol, isDefault });
    }
    for (const [name, found] of own) if (!definitions.has(name)) definitions.set(name, { object, reach: found.reach, symbol: found.symbol });
  }

  const syscalls = new Set<string>();
  const witnesses = new Map<string, readonly string[]>();
  const unbound = new Set<string>();
  const reachedImports = new Set<string>();
  const unresolvedBy = new Map<string, number>();
  const unresolvedWitnesses = new Map<string, readonly string[]>();
  let unresolvedCount = 0;
  let indirectReached = false;
  /** The way by which the first indirect call was reached. */
  let indirectWay = 0;
  /** Callbacks whose address reached code took, per object, not yet entered: index → way taken. */
  const takenCallbacks = new Map<LoadedObject, Map<number, number>>();
  /** `floor`: the least certain way a callback is entered (`main`, which `_start` hands over, is direct). */
  const enterCallbacks = (object: LoadedObject, indices: Iterable<number>, path: readonly string[], way: number, floor: number = WAY.callback): void => {
    const pending = takenCallbacks.get(object) ?? new Map<number, number>();
    takenCallbacks.set(object, pending);
    const taken = Math.max(way, floor);
    for (const index of indices) pending.set(index, Math.min(pending.get(index) ?? taken, taken));
    if (!indirectReached) return;
    for (const [index, takenWay] of pending) {
      const callback = object.facts.callbacks[index];
      if (callback) push(object, callback.reach, [...path, `${object.path}:${callbackStep(callback)}`], Math.max(takenWay, indirectWay));
    }
    pending.clear();
  };
  /**
   * Data regions held per object (reached code references them, a held region holds their address,
   * or they are always held), each with the way and path that held it; their pointers are entered
   * once an indirect call is reached.
   */
  const heldRegions = new Map<LoadedObject, Map<number, { way: number; path: readonly string[] }>>();
  const enterRegion = (object: LoadedObject, index: number, path: readonly string[], way: number): void => {
    const region = object.facts.dataRegions[index];
    if (region) push(object, region.reach, [...path, `${object.path}:${regionStep(region)}`], Math.max(way, indirectWay, WAY.data));
  };
  const holdRegions = (object: LoadedObject, indices: Iterable<number>, path: readonly string[], way: number): void => {
    const held = heldRegions.get(object) ?? new Map<number, { way: number; path: readonly string[] }>();
    heldRegions.set(object, held);
    const work = [...indices];
    while (work.length > 0) {
      const index = work.pop()!;
      const known = held.get(index);
      if (known && known.way <= way) continue;
      held.set(index, { way, path });
      if (indirectReached) enterRegion(object, index, path, way);
      work.push(...(object.facts.dataRegions[index]?.holds ?? []));
    }
  };
  /** Work by way (lowest first); a reach is done once, by the most certain way found first. */
  const queues: Pending[][] = REACH_WAYS.map(() => []);
  const best = new Map<string, number>();
  const done = new Set<string>();
  const keyOf = (object: LoadedObject, reach: number): string => `${objects.indexOf(object)}:${reach}`;
  const push = (object: LoadedObject, reach: number, path: readonly string[], way: number): void => {
    const key = keyOf(object, reach);
    if (done.has(key) || (best.get(key) ?? Number.POSITIVE_INFINITY) <= way) return;
    best.set(key, way);
    queues[way]!.push({ object, reach, path, way });
  };
  const next = (): Pending | undefined => {
    for (const queue of queues) {
      while (queue.length > 0) {
        const item = queue.shift()!;
        const key = keyOf(item.object, item.reach);
        if (done.has(key) || best.get(key) !== item.way) continue;
        done.add(key);
        return item;
      }
    }
    return undefined;
  };

  const [program] = input.scope;
  if (program?.facts.entry) push(program, program.facts.entry.reach, [`${program.path}:_start`], WAY.direct);
  if (input.interpreter?.facts.entry) push(input.interpreter, input.interpreter.facts.entry.reach, [`${input.interpreter.path}:_start`], WAY.direct);
  if (program) {
    const applets = appletsOf(program.facts);
    const named = applets.filter((applet) => input.applets?.includes(applet.name));
    const running = input.applets && named.length === input.applets.length ? named : applets;
    for (const { name, root } of running) push(program, root.reach, [`${program.path}:${name} applet`], WAY.direct);
    const commands = commandsOf(program.facts);
    const invoked = commands.filter((command) => input.commandWords?.includes(command.name));
    for (const { name, root } of invoked.length > 0 ? invoked : commands) push(program, root.reach, [`${program.path}:${name} command`], WAY.direct);
  }
  for (const object of objects) for (const init of object.facts.initialisers) push(object, init.reach, [`${object.path}:${init.symbol}`], WAY.direct);
  /** Exported data by name: held once reached code imports the name, or a loaded object copies it. */
  const dataSymbols = new Map<string, { object: LoadedObject; index: number }[]>();
  for (const object of objects) {
    for (const [index, region] of object.facts.dataRegions.entries()) {
      for (const name of region.symbols ?? []) dataSymbols.set(name, [...(dataSymbols.get(name) ?? []), { object, index }]);
    }
  }
  const holdDataSymbol = (name: string, path: readonly string[], way: number): void => {
    for (const { object, index } of dataSymbols.get(name) ?? []) holdRegions(object, [index], [...path, `${object.path}:${name}`], way);
  };
  for (const object of objects) {
    const always = object.facts.dataRegions.flatMap((region, index) => (region.always ? [index] : []));
    holdRegions(object, always, [`${object.path}:<data any code may read>`], WAY.direct);
    for (const name of object.facts.copiedData ?? []) holdDataSymbol(name, [`${object.path}:<copies ${name}>`], WAY.direct);
  }
  for (const object of runTime) {
    if (input.loadedAsDependency?.has(object)) continue;
    for (const item of object.facts.exports) push(object, item.reach, [`${object.path}:${item.symbol} (loaded at run time)`], WAY.module);
    // `dlsym` fetches exported data as well (an Apache module's `module` structure of hooks).
    const exportedData = object.facts.dataRegions.flatMap((region, index) => ((region.symbols?.length ?? 0) > 0 ? [index] : []));
    holdRegions(object, exportedData, [`${object.path}:<exported data> (loaded at run time)`], WAY.module);
  }

  // Symbols found by name: the loader's own lookups (glibc's ld.so calls libc's
  // `__libc_early_init` and binds its malloc by name) always, other objects' once `dlsym` or
  // `dlvsym` is reached. The names an object may look up are those its reached code takes and its
  // held data holds (and those it may hand out whatever runs); the exports they denote, in any
  // loaded object, are roots.
  const namesOf = new Map<LoadedObject, { path: readonly string[]; way: number; names: readonly string[] }[]>();
  const noteNames = (object: LoadedObject, names: readonly string[] | undefined, path: readonly string[], way: number): void => {
    if (!names || names.length === 0) return;
    namesOf.set(object, [...(namesOf.get(object) ?? []), { path, way, names }]);
  };
  for (const object of objects) noteNames(object, object.facts.symbolNames, [object.path], WAY.direct);
  const exportsByName = new Map<string, { object: LoadedObject; item: ObjectFacts['exports'][number] }[]>();
  for (const object of objects) {
    for (const item of object.facts.exports) {
      const name = symbolName(item.symbol);
      exportsByName.set(name, [...(exportsByName.get(name) ?? []), { object, item }]);
    }
  }
  const lookedUp = new Map<LoadedObject, Set<string>>();
  const rootLookedUpNames = (): void => {
    const lookups = LOOKUP_IMPORTS.some((name) => reachedImports.has(name));
    for (const object of objects) {
      if (object !== input.interpreter && !lookups) continue;
      const done = lookedUp.get(object) ?? new Set<string>();
      lookedUp.set(object, done);
      for (const { path, way, names } of namesOf.get(object) ?? []) {
        for (const name of names) {
          if (done.has(name)) continue;
          done.add(name);
          const from = [...path, `${object.path}:<looks up "${name}" by name>`];
          const lookupWay = Math.max(way, WAY.lookup);
          if (dataSymbols.has(name)) holdDataSymbol(name, from, lookupWay);
          for (const { object: other, item } of exportsByName.get(name) ?? []) {
            if (other !== object) push(other, item.reach, [...from, `${other.path}:${item.symbol}`], lookupWay);
          }
        }
      }
      namesOf.delete(object);
    }
  };
  rootLookedUpNames();
  const ways = new Map<string, ReachWay>();
  for (let item = next(); item !== undefined; item = next() ?? (rootLookedUpNames(), next())) {
    const { object, reach: index, path, way } = item;
    const reach: Reach = reachOf(object.facts, index);
    for (const name of reach.syscalls) {
      if (!syscalls.has(name)) {
        syscalls.add(name);
        witnesses.set(name, path);
        ways.set(name, REACH_WAYS[way]!);
      }
    }
    unresolvedCount += reach.unresolvedCount;
    // Reaches overlap: an object cannot have more unresolved sites than its facts list.
    if (reach.unresolvedCount > 0) {
      const count = Math.min((unresolvedBy.get(object.path) ?? 0) + reach.unresolvedCount, object.facts.unresolved.length || reach.unresolvedCount);
      unresolvedBy.set(object.path, count);
    }
    if (reach.unresolvedCount > 0 && !unresolvedWitnesses.has(object.path)) unresolvedWitnesses.set(object.path, path);
    for (const symbol of reach.imports) {
      reachedImports.add(symbolName(symbol));
      holdDataSymbol(symbolName(symbol), path, way);
      const definition = definitions.get(symbolName(symbol));
      if (!definition) {
        unbound.add(symbol);
        continue;
      }
      push(definition.object, definition.reach, [...path, `${definition.object.path}:${definition.symbol}`], way);
    }
    if (reach.indirect && !indirectReached) {
      // From now on every taken callback may be called: enter those already taken, and held data's.
      indirectReached = true;
      indirectWay = way;
      for (const other of objects) {
        for (const [held, { way: heldWay, path: heldPath }] of heldRegions.get(other) ?? []) enterRegion(other, held, heldPath, heldWay);
        enterCallbacks(other, [], path, way);
      }
    }
    holdRegions(object, reach.dataRegions ?? [], path, way);
    noteNames(object, reach.names, path, way);
    const fromEntry = object === program && index === program.facts.entry?.reach;
    enterCallbacks(object, reach.callbacks, path, way, fromEntry ? WAY.direct : WAY.callback);
  }
  for (const rule of IMPLIED_SYSCALLS) {
    if (!syscalls.has(rule.when)) continue;
    for (const name of rule.then) {
      if (syscalls.has(name)) continue;
      syscalls.add(name);
      witnesses.set(name, [...(witnesses.get(rule.when) ?? []), `kernel: ${rule.why}`]);
      ways.set(name, ways.get(rule.when) ?? 'direct');
    }
  }
  return { syscalls, unresolvedCount, unboundImports: [...unbound].sort(), witnesses, ways, reachedImports, unresolvedBy, unresolvedWitnesses };
}
