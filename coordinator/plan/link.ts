/**
 * Links per-object facts the way the dynamic loader binds symbols (ELF gABI, "Shared Object
 * Dependencies"; glibc's `_dl_lookup_symbol_x`): every import is bound to the first object of the
 * global scope (the executable, then its dependencies breadth-first) that exports the name, and
 * what that export reaches is followed in turn, to a fixpoint. Also reached: the loader's own entry,
 * every loaded object's initialisers, and — once any reached code makes an indirect call — the
 * callbacks that reached code took the address of, and those held in data, of every loaded object
 * (`main`, whose address `_start` hands to `__libc_start_main`, is one).
 */
import { appletsOf, type ObjectFacts, type Reach, reachOf } from '../../store/facts.js';

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
   * A multi-call program (its `busybox-applet:*` exports): the applets that run, by name. Absent,
   * or a name it has no applet for: every applet (what it runs is not known).
   */
  readonly applets?: readonly string[];
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
  /** Objects with unresolved sites in reached code, and how many. */
  readonly unresolvedBy: ReadonlyMap<string, number>;
  /**
   * The same objects with one witness path each: how the first reach with an unresolved site of
   * the object was entered. Any syscall may be made at such a site (ARCHITECTURE.md, "When the
   * analysis is unsure").
   */
  readonly unresolvedWitnesses: ReadonlyMap<string, readonly string[]>;
}

const baseName = (symbol: string): string => symbol.split('@')[0]!;

/**
 * Syscalls the kernel makes a process perform without any call site: after a signal handler
 * returns, the kernel jumps to the `sa_restorer` trampoline installed with the handler, which
 * calls `rt_sigreturn` (i386: `sigreturn` too). Kept as data, each with its reason.
 */
export const IMPLIED_SYSCALLS: readonly { readonly when: string; readonly then: readonly string[]; readonly why: string }[] = [
  { when: 'rt_sigaction', then: ['rt_sigreturn'], why: 'the signal trampoline (sa_restorer) returns from every handler through rt_sigreturn' },
  { when: 'sigaction', then: ['sigreturn', 'rt_sigreturn'], why: 'legacy i386 handlers return through sigreturn' },
];

interface Pending {
  readonly object: LoadedObject;
  readonly reach: number;
  readonly path: readonly string[];
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
      const name = baseName(item.symbol);
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
  /** Callbacks whose address reached code took, per object, not yet entered. */
  const takenCallbacks = new Map<LoadedObject, Set<number>>();
  const enterCallbacks = (object: LoadedObject, indices: Iterable<number>, path: readonly string[]): void => {
    const pending = takenCallbacks.get(object) ?? new Set<number>();
    takenCallbacks.set(object, pending);
    for (const index of indices) pending.add(index);
    if (!indirectReached) return;
    for (const index of pending) {
      const callback = object.facts.callbacks[index];
      if (callback) push(object, callback.reach, [...path, `${object.path}:<callback 0x${callback.address.toString(16)}>`]);
    }
    pending.clear();
  };
  const done = new Set<string>();
  const queue: Pending[] = [];
  const push = (object: LoadedObject, reach: number, path: readonly string[]): void => {
    const key = `${objects.indexOf(object)}:${reach}`;
    if (done.has(key)) return;
    done.add(key);
    queue.push({ object, reach, path });
  };

  const [program] = input.scope;
  if (program?.facts.entry) push(program, program.facts.entry.reach, [`${program.path}:_start`]);
  if (input.interpreter?.facts.entry) push(input.interpreter, input.interpreter.facts.entry.reach, [`${input.interpreter.path}:_start`]);
  if (program) {
    const applets = appletsOf(program.facts);
    const named = applets.filter((applet) => input.applets?.includes(applet.name));
    const running = input.applets && named.length === input.applets.length ? named : applets;
    for (const { name, root } of running) push(program, root.reach, [`${program.path}:${name} applet`]);
  }
  for (const object of objects) for (const init of object.facts.initialisers) push(object, init.reach, [`${object.path}:${init.symbol}`]);
  for (const object of runTime) for (const item of object.facts.exports) push(object, item.reach, [`${object.path}:${item.symbol} (loaded at run time)`]);

  while (queue.length > 0) {
    const { object, reach: index, path } = queue.shift()!;
    const reach: Reach = reachOf(object.facts, index);
    for (const name of reach.syscalls) {
      if (!syscalls.has(name)) {
        syscalls.add(name);
        witnesses.set(name, path);
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
      reachedImports.add(baseName(symbol));
      const definition = definitions.get(baseName(symbol));
      if (!definition) {
        unbound.add(symbol);
        continue;
      }
      push(definition.object, definition.reach, [...path, `${definition.object.path}:${definition.symbol}`]);
    }
    if (reach.indirect && !indirectReached) {
      // From now on every taken callback may be called: enter those already taken, and data's.
      indirectReached = true;
      for (const other of objects) {
        push(other, other.facts.dataPointers, [...path, `${other.path}:<function pointers in data>`]);
        enterCallbacks(other, [], path);
      }
    }
    enterCallbacks(object, reach.callbacks, path);
  }
  for (const rule of IMPLIED_SYSCALLS) {
    if (!syscalls.has(rule.when)) continue;
    for (const name of rule.then) {
      if (syscalls.has(name)) continue;
      syscalls.add(name);
      witnesses.set(name, [...(witnesses.get(rule.when) ?? []), `kernel: ${rule.why}`]);
    }
  }
  return { syscalls, unresolvedCount, unboundImports: [...unbound].sort(), witnesses, reachedImports, unresolvedBy, unresolvedWitnesses };
}
