/**
 * Reachability summaries inside one object. From a root, the closure follows direct calls and tail
 * jumps; if any reached function makes an indirect call, every address-taken function of the
 * object is reached as well (the sound over-approximation of sysfilter, RAID 2020).
 */
import type { CallGraph } from './call-graph.js';

export interface Closure {
  /** Syscall keys `native:<n>` / `i386:<n>`; the analyser turns them into names. */
  readonly syscalls: ReadonlySet<string>;
  readonly imports: ReadonlySet<string>;
  readonly unresolvedCount: number;
  readonly functions: ReadonlySet<number>;
  /** An indirect call is reachable (the address-taken set of this object is included). */
  readonly indirect: boolean;
}

interface Accumulated {
  syscalls: Set<string>;
  imports: Set<string>;
  unresolvedCount: number;
}

export class ClosureComputer {
  /** Everything reached once the address-taken set is in: shared by every root that needs it. */
  private taken: { functions: Set<number>; summary: Accumulated } | undefined;

  constructor(private readonly graph: CallGraph) {}

  /** Functions reachable through direct edges only, and whether any makes an indirect call. */
  private direct(roots: Iterable<number>): { reached: Set<number>; indirect: boolean } {
    const reached = new Set<number>();
    const stack = [...roots];
    let indirect = false;
    while (stack.length > 0) {
      const address = stack.pop()!;
      if (reached.has(address)) continue;
      const fn = this.graph.functions.get(address);
      if (!fn) continue;
      reached.add(address);
      if (fn.indirect) indirect = true;
      for (const callee of fn.callees) if (!reached.has(callee)) stack.push(callee);
    }
    return { reached, indirect };
  }

  private accumulate(into: Accumulated, addresses: Iterable<number>, reachedByPointer: ReadonlySet<number>): void {
    for (const address of addresses) {
      const fn = this.graph.functions.get(address)!;
      for (const key of fn.syscalls.keys()) into.syscalls.add(key);
      for (const symbol of fn.imports) into.imports.add(symbol);
      into.unresolvedCount += fn.unresolved.length;
      // A wrapper reached through a pointer has no call site to resolve its argument.
      if (reachedByPointer.has(address)) into.unresolvedCount += fn.wrapperSites;
    }
  }

  private takenSet(): { functions: Set<number>; summary: Accumulated } {
    if (!this.taken) {
      const functions = this.direct(this.graph.addressTaken).reached;
      const summary: Accumulated = { syscalls: new Set(), imports: new Set(), unresolvedCount: 0 };
      this.accumulate(summary, functions, this.graph.addressTaken);
      this.taken = { functions, summary };
    }
    return this.taken;
  }

  closure(root: number): Closure {
    const { reached, indirect } = this.direct([root]);
    const result: Accumulated = { syscalls: new Set(), imports: new Set(), unresolvedCount: 0 };
    if (!indirect) {
      this.accumulate(result, reached, new Set());
      return { ...result, functions: reached, indirect: false };
    }
    const taken = this.takenSet();
    this.accumulate(result, [...reached].filter((address) => !taken.functions.has(address)), new Set());
    for (const key of taken.summary.syscalls) result.syscalls.add(key);
    for (const symbol of taken.summary.imports) result.imports.add(symbol);
    result.unresolvedCount += taken.summary.unresolvedCount;
    for (const address of taken.functions) reached.add(address);
    return { ...result, functions: reached, indirect: true };
  }

  /** The closure of the whole address-taken set, as if an indirect call were made. */
  addressTakenClosure(): Closure {
    const { functions, summary } = this.takenSet();
    return { ...summary, functions, indirect: true };
  }
}
