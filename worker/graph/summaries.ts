/**
 * Reachability summaries inside one object. From a root, the closure follows direct calls and tail
 * jumps, and records whether an indirect call is reachable and which functions' addresses the
 * reached code takes, and which data regions it references. The linker (coordinator/plan/link.ts)
 * then lets indirect calls reach exactly the callbacks whose address reachable code took (or held
 * data holds), across all loaded objects: the address-taken set limited to what reachable code can
 * hand out (sysfilter, RAID 2020, refined as in B-Side).
 *
 * Summaries are computed once per strongly connected component of the direct call graph, bottom
 * up (Tarjan), as bitsets: the summary of a function is its own facts joined with its callees'.
 * This keeps objects with tens of thousands of exported functions (Go) linear in size.
 */
import type { GraphFunction, ObjectGraph } from './object-graph.js';

export interface Closure {
  /** Syscall keys `native:<n>` / `i386:<n>`; the analyser turns them into names. */
  readonly syscalls: ReadonlySet<string>;
  readonly imports: ReadonlySet<string>;
  readonly unresolvedCount: number;
  /** Of those, sites whose number is an unresolved argument (kind `syscall-argument`). */
  readonly unresolvedArguments: number;
  /** An indirect call is reachable. */
  readonly indirect: boolean;
  /** Address-taken functions whose address reachable code takes, sorted. */
  readonly callbacks: readonly number[];
  /** Data regions (indices into `ObjectGraph.dataRegions`) reachable code references, sorted. */
  readonly dataRegions: readonly number[];
  /** Identifier strings reachable code takes, or a region holds: names it may look up. */
  readonly names: ReadonlySet<string>;
}

/** A growable bitset over interned ids. */
class Bits {
  words: Uint32Array;
  constructor(size = 1) {
    this.words = new Uint32Array(size);
  }
  add(id: number): void {
    const word = id >>> 5;
    if (word >= this.words.length) {
      const grown = new Uint32Array(Math.max(word + 1, this.words.length * 2));
      grown.set(this.words);
      this.words = grown;
    }
    this.words[word]! |= 1 << (id & 31);
  }
  or(other: Bits): void {
    if (other.words.length > this.words.length) {
      const grown = new Uint32Array(other.words.length);
      grown.set(this.words);
      this.words = grown;
    }
    for (let i = 0; i < other.words.length; i++) this.words[i]! |= other.words[i]!;
  }
  /** The set as a string, trailing zero words ignored: equal sets, equal keys. */
  key(): string {
    let end = this.words.length;
    while (end > 0 && this.words[end - 1] === 0) end--;
    return Array.prototype.join.call(this.words.subarray(0, end), ',');
  }
  *ids(): Generator<number> {
    for (let i = 0; i < this.words.length; i++) {
      let word = this.words[i]!;
      while (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        yield i * 32 + bit;
        word &= word - 1;
      }
    }
  }
}

class Interner {
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  id(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(name);
      this.ids.set(name, id);
    }
    return id;
  }
}

interface Summary {
  readonly syscalls: Bits;
  readonly imports: Bits;
  /** Unresolved sites by interned id (a site reached on two paths counts once). */
  readonly unresolved: Bits;
  /** Functions whose address reached code takes, by interned id. */
  readonly takes: Bits;
  /** Data regions reached code references, by index. */
  readonly regions: Bits;
  /** Identifier strings reached code takes, by interned id. */
  readonly names: Bits;
  indirect: boolean;
}

const emptySummary = (): Summary => ({ syscalls: new Bits(), imports: new Bits(), unresolved: new Bits(), takes: new Bits(), regions: new Bits(), names: new Bits(), indirect: false });

function join(into: Summary, other: Summary): void {
  into.syscalls.or(other.syscalls);
  into.imports.or(other.imports);
  into.unresolved.or(other.unresolved);
  into.takes.or(other.takes);
  into.regions.or(other.regions);
  into.names.or(other.names);
  if (other.indirect) into.indirect = true;
}

export class ClosureComputer {
  private readonly syscallIds = new Interner();
  private readonly importIds = new Interner();
  private readonly siteIds = new Interner();
  private readonly functionIds = new Interner();
  private readonly nameIds = new Interner();
  /** Summary per function (shared by every member of one component). */
  private readonly summaries = new Map<number, Summary>();
  private readonly closures = new WeakMap<Summary, Closure>();
  private readonly byContent = new Map<string, Closure>();

  constructor(private readonly graph: ObjectGraph) {
    this.computeComponents();
  }

  private local(fn: GraphFunction, into: Summary): void {
    for (const key of fn.syscalls.keys()) into.syscalls.add(this.syscallIds.id(key));
    for (const symbol of fn.imports) into.imports.add(this.importIds.id(symbol));
    for (const site of fn.unresolved) into.unresolved.add(this.siteIds.id(`${site.address}:${site.kind}`));
    for (const taken of fn.takesFunctions) into.takes.add(this.functionIds.id(String(taken)));
    for (const region of fn.dataRegions) into.regions.add(region);
    for (const name of fn.takesNames) into.names.add(this.nameIds.id(name));
    if (fn.indirect) into.indirect = true;
  }

  /** Tarjan's algorithm, iterative; components complete in reverse topological order (callees first). */
  private computeComponents(): void {
    const functions = this.graph.functions;
    const index = new Map<number, number>();
    const lowLink = new Map<number, number>();
    const onStack = new Set<number>();
    const stack: number[] = [];
    let counter = 0;
    for (const root of functions.keys()) {
      if (index.has(root)) continue;
      const frames: { node: number; callees: number[]; next: number }[] = [];
      const enter = (node: number): void => {
        index.set(node, counter);
        lowLink.set(node, counter);
        counter++;
        stack.push(node);
        onStack.add(node);
        frames.push({ node, callees: [...(functions.get(node)?.callees ?? [])].filter((c) => functions.has(c)), next: 0 });
      };
      enter(root);
      while (frames.length > 0) {
        const frame = frames[frames.length - 1]!;
        if (frame.next < frame.callees.length) {
          const callee = frame.callees[frame.next++]!;
          if (!index.has(callee)) enter(callee);
          else if (onStack.has(callee)) lowLink.set(frame.node, Math.min(lowLink.get(frame.node)!, index.get(callee)!));
          continue;
        }
        frames.pop();
        const parent = frames[frames.length - 1];
        if (parent) lowLink.set(parent.node, Math.min(lowLink.get(parent.node)!, lowLink.get(frame.node)!));
        if (lowLink.get(frame.node) === index.get(frame.node)) {
          const members: number[] = [];
          let member: number;
          do {
            member = stack.pop()!;
            onStack.delete(member);
            members.push(member);
          } while (member !== frame.node);
          this.summariseComponent(members);
        }
      }
    }
  }

  private summariseComponent(members: readonly number[]): void {
    const summary = emptySummary();
    const inComponent = new Set(members);
    for (const address of members) {
      const fn = this.graph.functions.get(address)!;
      this.local(fn, summary);
      for (const callee of fn.callees) {
        if (inComponent.has(callee)) continue;
        const below = this.summaries.get(callee);
        if (below) join(summary, below);
      }
    }
    for (const address of members) this.summaries.set(address, summary);
  }

  private toClosure(parts: readonly Summary[], extraUnresolved: readonly string[] = []): Closure {
    const joined = emptySummary();
    for (const part of parts) join(joined, part);
    for (const site of extraUnresolved) joined.unresolved.add(this.siteIds.id(site));
    // Equal bitsets give the same closure object: callers may memoise by identity.
    const key = `${joined.indirect ? 1 : 0}|${joined.syscalls.key()}|${joined.imports.key()}|${joined.unresolved.key()}|${joined.takes.key()}|${joined.regions.key()}|${joined.names.key()}`;
    const known = this.byContent.get(key);
    if (known) return known;
    let unresolvedCount = 0;
    let unresolvedArguments = 0;
    for (const id of joined.unresolved.ids()) {
      unresolvedCount++;
      if (this.siteIds.names[id]!.endsWith(':syscall-argument')) unresolvedArguments++;
    }
    const closure: Closure = {
      syscalls: new Set([...joined.syscalls.ids()].map((id) => this.syscallIds.names[id]!)),
      imports: new Set([...joined.imports.ids()].map((id) => this.importIds.names[id]!)),
      unresolvedCount,
      unresolvedArguments,
      indirect: joined.indirect,
      callbacks: [...joined.takes.ids()].map((id) => Number(this.functionIds.names[id])).sort((a, b) => a - b),
      dataRegions: [...joined.regions.ids()],
      names: new Set([...joined.names.ids()].map((id) => this.nameIds.names[id]!)),
    };
    this.byContent.set(key, closure);
    return closure;
  }

  /** What code reachable from `root` can do; memoised per component. */
  closure(root: number): Closure {
    const summary = this.summaries.get(root);
    if (!summary) return this.toClosure([]);
    let closure = this.closures.get(summary);
    if (!closure) {
      closure = this.toClosure([summary]);
      this.closures.set(summary, closure);
    }
    return closure;
  }

  /**
   * The closure of a callback, entered through a pointer: a wrapper entered that way has no call
   * site that could resolve its syscall number, so its wrapper sites count as unresolved.
   */
  callbackClosure(root: number): Closure {
    const fn = this.graph.functions.get(root);
    if (!fn || fn.wrapperSites === 0) return this.closure(root);
    const summary = this.summaries.get(root);
    const sites = Array.from({ length: fn.wrapperSites }, (_, i) => `${root}:wrapper-by-pointer:${i}`);
    return this.toClosure(summary ? [summary] : [], sites);
  }

  /** What a data region hands out once held: the imports, callbacks and names whose address it holds. */
  regionClosure(region: number): Closure {
    const summary = emptySummary();
    const held = this.graph.dataRegions[region];
    for (const symbol of held?.imports ?? []) summary.imports.add(this.importIds.id(symbol));
    for (const address of held?.taken ?? []) summary.takes.add(this.functionIds.id(String(address)));
    for (const name of held?.names ?? []) summary.names.add(this.nameIds.id(name));
    return this.toClosure([summary]);
  }
}
