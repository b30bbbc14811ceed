/**
 * The per-object call graph: functions, their direct callees, imports, syscall sites and the
 * address-taken set, built from one linear sweep. Syscall numbers come from backward value tracking;
 * functions whose syscall number is a parameter become wrappers, resolved at each call site
 * (transitively: a function that forwards its parameter to a wrapper is a wrapper too).
 */
import { type Instruction, Mnemonic, OpKind, Register, RegisterExt } from '../x86/iced.js';
import { fallsThrough, type InstructionTable, lowerBound, Op, sweep } from '../x86/sweep.js';
import { type ConstantMemory, type FunctionSpan, type JumpIndex, locationOfParam, Redecoder, type Resolution, ValueTracker } from '../x86/track.js';
import type { GraphDataRegion, GraphFunctionBuilder, ObjectGraph, SyscallRef, UnresolvedRef } from '../graph/object-graph.js';
import { type CodeModel, inCode } from './code-model.js';
import { splitData } from './data-regions.js';

export type { SyscallRef, UnresolvedRef };

/** Imports whose first argument is a syscall number (glibc and musl `syscall(3)`). */
export const KNOWN_WRAPPER_IMPORTS: ReadonlyMap<string, string> = new Map([['syscall', `reg:${Register.RDI}`]]);

/** A function as the sweep builds it: the shared fields, plus what value tracking needs. */
export interface FunctionNode extends GraphFunctionBuilder {
  readonly start: number;
  readonly span: FunctionSpan;
  readonly names: string[];
  /** Code addresses this function takes (`lea`, immediates): an IFUNC resolver's implementations. */
  readonly takes: Set<number>;
  /** Parameters that carry a syscall number into a syscall site (empty unless a wrapper). */
  readonly wrapperParams: Set<string>;
  /** Data addresses the function references (objects with a `dataLayout`): its `dataRegions` come from them. */
  readonly dataRefs: Set<number>;
}

export interface CallGraph extends ObjectGraph {
  readonly functions: ReadonlyMap<number, FunctionNode>;
  /** PLT stub address → imported symbol. */
  readonly thunks: ReadonlyMap<number, string>;
  readonly table: InstructionTable;
  readonly stats: { syscallSites: number; resolvedSites: number };
}

/** What `buildCallGraph` learnt about taken code addresses before the functions were known. */
interface TakenAddresses {
  /** `lea` instructions whose address is read as data. */
  readonly dataLeas: ReadonlySet<number>;
  /** Code addresses held in data that code may call. */
  readonly dataPointers: readonly number[];
  /** Function starts known only because their address is taken (no symbol, FDE or direct call). */
  readonly pointerOnly: ReadonlySet<number>;
  /** Function starts known only as targets of jumps from another function (a split function's parts). */
  readonly jumpOnly: ReadonlySet<number>;
}

interface CallSite {
  readonly caller: number;
  readonly index: number;
}

export function buildCallGraph(model: CodeModel, maxInstructions: number): CallGraph {
  const startSet = new Set<number>();
  const names = new Map<number, string[]>();
  const addSeed = (address: number, name?: string): void => {
    if (!inCode(model, address)) return;
    startSet.add(address);
    if (name) names.set(address, [...(names.get(address) ?? []), name]);
  };
  for (const seed of model.seeds) {
    if (seed.names.length === 0) addSeed(seed.address);
    for (const name of seed.names) addSeed(seed.address, name);
  }
  for (const plt of model.plt) for (let at = plt.start; at + plt.entrySize <= plt.start + plt.size; at += plt.entrySize) addSeed(at);
  if (model.entry !== undefined) addSeed(model.entry, '_start');
  for (const item of [...model.exports, ...model.initialisers]) addSeed(item.address, item.name);

  // Starts known only from unwind tables are weak: see `sweep`.
  const weak = new Set([...startSet].filter((address) => !names.has(address)));
  for (const plt of model.plt) for (let at = plt.start; at + plt.entrySize <= plt.start + plt.size; at += plt.entrySize) weak.delete(at);
  const table = sweep(model.ranges, [...startSet].sort((a, b) => a - b), model.bitness, maxInstructions, weak);
  // Call targets are function starts too, and so are targets of jumps that leave their function
  // (tail calls: without symbols or FDEs, musl's `__syscall_cp` is only a `jmp` to the real one).
  for (let i = 0; i < table.count; i++) if (table.op[i] === Op.CallDirect && inCode(model, table.target[i]!)) startSet.add(table.target[i]!);
  // Code addresses held in data or loaded with `lea` are entries of functions (callbacks) when the
  // code before them cannot fall into them: static functions of stripped objects without unwind
  // tables (musl's __stdio_read, known only from the FILE structures that point at it).
  const byAddress = (address: number): number => lowerBound(table.ip, address);
  const redecoder = new Redecoder(table);
  try {
    // `lea` of an address that is then read as data (a table kept in .text) takes no function:
    // decided once per instruction, for entry candidates here and for callbacks in `analyse`.
    const dataLeas = new Set<number>();
    const dataPointers = dataHeldPointers(model, table, redecoder);
    const entryCandidates = [...dataPointers];
    for (let i = 0; i < table.count; i++) {
      if (table.op[i] !== Op.LeaRip || !inCode(model, table.target[i]!)) continue;
      if (readAsData(redecoder, table, i)) dataLeas.add(i);
      else entryCandidates.push(table.target[i]!);
    }
    /** Starts known only because an address is taken: data kept in code looks the same. */
    const pointerOnly = new Set<number>();
    for (const address of entryCandidates) {
      if (startSet.has(address)) continue;
      const index = byAddress(address);
      if (table.ip[index] !== address) continue;
      let previous = index - 1;
      while (previous >= 0 && table.op[previous] === Op.Padding) previous--;
      if (previous < 0 || !fallsThrough(table.op[previous]!)) {
        startSet.add(address);
        pointerOnly.add(address);
      }
    }
    let starts = [...startSet].sort((a, b) => a - b);
    const jumpOnly = new Set<number>();
    for (let round = 0; round < 8; round++) {
      let added = 0;
      for (let i = 0; i < table.count; i++) {
        const op = table.op[i];
        if (op !== Op.JmpDirect && op !== Op.Jcc) continue;
        const target = table.target[i]!;
        if (startSet.has(target) || !inCode(model, target)) continue;
        const here = lowerBound(starts, table.ip[i]! + 1) - 1;
        const from = here >= 0 ? starts[here]! : Number.NEGATIVE_INFINITY;
        const to = starts[here + 1] ?? Number.POSITIVE_INFINITY;
        if (target < from || target >= to) {
          startSet.add(target);
          jumpOnly.add(target);
          added++;
        }
      }
      if (added === 0) break;
      starts = [...startSet].sort((a, b) => a - b);
    }
    return analyse(model, table, starts, names, redecoder, { dataLeas, dataPointers, pointerOnly, jumpOnly });
  } finally {
    redecoder.free();
  }
}

function analyse(
  model: CodeModel,
  table: InstructionTable,
  starts: number[],
  names: Map<number, string[]>,
  redecoder: Redecoder,
  taken: TakenAddresses,
): CallGraph {
  const { dataLeas, dataPointers, pointerOnly, jumpOnly } = taken;
  const functions = new Map<number, FunctionNode>();
  const firstIndex = (address: number): number => lowerBound(table.ip, address);
  for (const [k, start] of starts.entries()) {
    const next = starts[k + 1] ?? Number.POSITIVE_INFINITY;
    const span = { first: firstIndex(start), end: Math.min(firstIndex(next), table.count) };
    functions.set(start, {
      start,
      span,
      names: names.get(start) ?? [],
      callees: new Set(),
      imports: new Set(),
      takes: new Set(),
      takesFunctions: new Set(),
      takesNames: new Set(),
      ifuncCalls: new Set(),
      syscalls: new Map(),
      unresolved: [],
      indirect: false,
      wrapperParams: new Set(),
      wrapperSites: 0,
      dataRegions: new Set(),
      dataRefs: new Set(),
    });
  }
  const containing = (address: number): number | undefined => {
    const k = lowerBound(starts, address + 1) - 1;
    return k >= 0 ? starts[k] : undefined;
  };

  // Jump index: target → jump sources, for the value tracker's path splits.
  const sources = new Map<number, number[]>();
  for (let i = 0; i < table.count; i++) {
    const op = table.op[i];
    if (op === Op.JmpDirect || op === Op.Jcc) {
      const list = sources.get(table.target[i]!);
      if (list) list.push(i);
      else sources.set(table.target[i]!, [i]);
    }
  }
  // Switch tables first: the value tracker enters their cases through them.
  const tables: number[] = [];
  for (let i = 0; i < table.count; i++) {
    if (table.op[i] !== Op.JmpIndirect || model.gotSlots.has(table.target[i]!) || model.irelativeSlots.has(table.target[i]!)) continue;
    const owner = containing(table.ip[i]!);
    const span = owner === undefined ? undefined : functions.get(owner)?.span;
    if (span && isJumpTable(table, redecoder, i, span)) tables.push(i);
  }
  const jumpTables = new Set(tables);
  const jumps: JumpIndex = { sources, tables };
  markNoReturnCalls(table, functions, starts);
  const tracker = new ValueTracker(table, jumps, redecoder, model.goAbi, unwrittenVariables(model, table, new Redecoder(table)));

  // PLT stubs: a function whose body jumps through a GOT slot is a thunk for that import, or for
  // the implementations of an IFUNC when the slot is filled by an IRELATIVE relocation.
  const thunks = new Map<number, string>();
  const ifuncThunks = new Map<number, number>();
  for (const fn of functions.values()) {
    for (let i = fn.span.first; i < fn.span.end && i < fn.span.first + 3; i++) {
      if (table.op[i] === Op.JmpIndirect) {
        const symbol = model.gotSlots.get(table.target[i]!);
        const resolver = model.irelativeSlots.get(table.target[i]!);
        if (symbol) thunks.set(fn.start, symbol);
        else if (resolver !== undefined) ifuncThunks.set(fn.start, resolver);
        break;
      }
    }
  }

  /** Starts the object itself declares (symbols, unwind tables, exports): never mistaken for data. */
  const functionStarts = new Set<number>([...model.seeds.map((seed) => seed.address), ...model.exports.map((item) => item.address)]);
  const addressTaken = new Set<number>();
  const dataTaken = new Set<number>();
  /** Records that `address` is taken (by `taker`, or by data): the function it belongs to becomes a callback. */
  const takeAddress = (address: number, taker?: FunctionNode): void => {
    if (!inCode(model, address)) return;
    const owner = functions.has(address) ? address : containing(address);
    if (owner === undefined || thunks.has(owner)) return;
    addressTaken.add(owner);
    if (taker) taker.takesFunctions.add(owner);
    else dataTaken.add(owner);
  };
  for (const pointer of dataPointers) takeAddress(pointer);
  /** Code that hands out the address of a string naming an export may call that export (found by name). */
  const takeNamedExport = (address: number, taker: FunctionNode): void => {
    const exported = model.exportNameStrings.get(address);
    if (exported !== undefined) takeAddress(exported, taker);
    const name = model.identifierStrings.get(address);
    if (name !== undefined) taker.takesNames.add(name);
  };
  /**
   * Identifier strings looked up whatever runs: those data outside the split regions holds (all
   * data, without a split). i386 PIC code reaches strings through the GOT pointer, which the sweep
   * does not follow: all of them.
   */
  const namesTaken = new Set<string>(table.bitness === 32 ? model.identifierStrings.values() : model.dataNames);

  // Data references (worker/native/data-regions.ts), for objects whose data is split into regions.
  const layout = model.dataLayout;
  const takenData = new Set<number>();
  const unownedData = new Set<number>();
  /** Code addresses that code outside every function reads from `.got` slots: held whatever runs. */
  const unownedCode = new Set<number>();
  const noteDataReference = (i: number, fn: FunctionNode | undefined): void => {
    const op = table.op[i]!;
    const target = table.target[i]!;
    if (Number.isNaN(target) || inCode(model, target)) return;
    const into = fn?.dataRefs ?? unownedData;
    const code = model.gotCodePointers.get(target);
    if (code !== undefined) {
      // A `.got` slot the loader fills with a code address: code that reads it takes that address
      // (a range check only compares with it; dataHeldPointers decides the same).
      if (op === Op.CompareMemory || (op === Op.LoadRip && comparedOnly(redecoder, table, i))) return;
      if (fn) takeAddress(code, fn);
      else unownedCode.add(code);
      return;
    }
    if (op === Op.LeaRip) {
      takenData.add(target);
      into.add(target);
    } else if (op === Op.LoadRip || op === Op.CallIndirect || op === Op.JmpIndirect || op === Op.KnownMemory || op === Op.CompareMemory) {
      const held = layout?.gotData.get(target);
      if (held !== undefined) {
        takenData.add(held);
        into.add(held);
      } else into.add(target);
    }
  };
  if (layout) {
    // Code before the first function start belongs to none: what it references is always held.
    const first = starts.length > 0 ? lowerBound(table.ip, starts[0]!) : table.count;
    for (let i = 0; i < first; i++) noteDataReference(i, undefined);
  }

  const callSites = new Map<number, CallSite[]>();
  const reachableCache = new Map<number, Set<number> | 'all'>();
  /**
   * Instructions control flow can reach from the function's entry (fallthrough, direct jumps and,
   * for functions with switch tables or other indirect jumps, every block leader: their targets are
   * not known).
   */
  const reachableInFunction = (fn: FunctionNode): { has(index: number): boolean } => {
    let known = reachableCache.get(fn.start);
    if (!known) {
      const { first, end } = fn.span;
      let indirectJumps = false;
      for (let i = first; i < end; i++) if (table.op[i] === Op.JmpIndirect) indirectJumps = true;
      known = indirectJumps ? 'all' : walkFromEntry(table, fn.span).reached;
      reachableCache.set(fn.start, known);
    }
    return known === 'all' ? { has: () => true } : known;
  };
  const stats = { syscallSites: 0, resolvedSites: 0 };
  const syscallResolutions: { fn: FunctionNode; index: number; table: 'native' | 'i386'; resolution: Resolution }[] = [];

  for (const fn of functions.values()) {
    if (thunks.has(fn.start)) continue;
    // Bytes that only a taken address points at, and whose control flow from there runs into
    // undecodable bytes or into the middle of an instruction, are data (OpenSSL's nistp521 tables
    // in .text, `lea rbx, [table]` kept in a callee-saved register): no call, no site, no callback.
    if (pointerOnly.has(fn.start) && walkFromEntry(table, fn.span).decodesAsData) continue;
    for (let i = fn.span.first; i < fn.span.end; i++) {
      const op = table.op[i]!;
      const target = table.target[i]!;
      if (layout) noteDataReference(i, fn);
      switch (op) {
        case Op.Syscall:
        case Op.Int80:
        case Op.Sysenter: {
          // Bytes after a function's last `ret` are often data (OpenSSL's tables in .text): a
          // "syscall" that control flow from the entry cannot reach is not a site.
          if (!reachableInFunction(fn).has(i)) break;
          const register = table.bitness === 64 ? Register.RAX : Register.EAX;
          const resolution = tracker.resolve({ register }, i, fn.span);
          const abi = op === Op.Syscall || table.bitness === 32 ? 'native' : 'i386';
          syscallResolutions.push({ fn, index: i, table: abi, resolution });
          break;
        }
        case Op.CallDirect:
        case Op.JmpDirect:
        case Op.Jcc: {
          // Jumps inside the function are control flow; a jump (conditional or not) out of it is a tail call.
          if (op !== Op.CallDirect && target >= table.ip[fn.span.first]! && (fn.span.end >= table.count || target < table.ip[fn.span.end]!)) break;
          const callee = functions.has(target) ? target : containing(target);
          if (callee === undefined || !inCode(model, target)) break;
          const thunk = thunks.get(callee);
          const viaIfunc = ifuncThunks.get(callee);
          if (viaIfunc !== undefined) fn.ifuncCalls.add(viaIfunc);
          else if (thunk) {
            fn.imports.add(thunk);
            if (op === Op.CallDirect && KNOWN_WRAPPER_IMPORTS.has(thunk)) resolveKnownWrapperCall(fn, i, thunk);
          } else {
            fn.callees.add(callee);
            const list = callSites.get(callee);
            const site = { caller: fn.start, index: i };
            if (list) list.push(site);
            else callSites.set(callee, [site]);
          }
          break;
        }
        case Op.CallIndirect:
        case Op.JmpIndirect: {
          const symbol = Number.isNaN(target) ? undefined : model.gotSlots.get(target);
          const resolver = Number.isNaN(target) ? undefined : model.irelativeSlots.get(target);
          if (resolver !== undefined) fn.ifuncCalls.add(resolver);
          else if (symbol) {
            fn.imports.add(symbol);
            if (op === Op.CallIndirect && KNOWN_WRAPPER_IMPORTS.has(symbol)) resolveKnownWrapperCall(fn, i, symbol);
          } else if (op === Op.CallIndirect || !jumpTables.has(i)) {
            fn.indirect = true;
          }
          break;
        }
        case Op.LeaRip:
          if (inCode(model, target)) fn.takes.add(target);
          // An address only compared with (`lea rcx, [label]; cmp rsi, rcx`: is this pc inside that
          // code?) is not handed out as a callback, nor is one read as data where no function
          // starts (OpenSSL's perlasm keeps constant tables in .text: `lea rsi, [.Lpoly]; sub r8, [rsi]`).
          if (!comparedOnly(redecoder, table, i) && !(dataLeas.has(i) && !functionStarts.has(target))) takeAddress(target, fn);
          takeNamedExport(target, fn);
          break;
        case Op.LoadRip: {
          // Loading a GOT entry takes the address of an import: it may be called through a pointer.
          const symbol = model.gotSlots.get(target);
          if (symbol) fn.imports.add(symbol);
          break;
        }
        case Op.Immediate:
          if (functions.has(target)) {
            fn.takes.add(target);
            takeAddress(target, fn);
          }
          takeNamedExport(target, fn);
          break;
        case Op.Invalid:
          break;
        default:
          break;
      }
    }
  }

  function resolveKnownWrapperCall(fn: FunctionNode, index: number, symbol: string): void {
    const param = KNOWN_WRAPPER_IMPORTS.get(symbol)!;
    applyArgument(fn, index, tracker.resolve(locationOfParam(param), index, fn.span), 'native');
  }

  /** Values found for a syscall number at a site (or a wrapper's argument at a call site). */
  function applyArgument(fn: FunctionNode, index: number, resolution: Resolution, abi: 'native' | 'i386'): boolean {
    for (const number of resolution.values) fn.syscalls.set(`${abi}:${number}`, { table: abi, number });
    let becameWrapper = false;
    for (const param of resolution.params) {
      if (!fn.wrapperParams.has(param)) {
        fn.wrapperParams.add(param);
        becameWrapper = true;
      }
    }
    if (resolution.unknown) {
      const op = table.op[index];
      const atCall = op === Op.CallDirect || op === Op.CallIndirect || op === Op.JmpDirect || op === Op.Jcc;
      fn.unresolved.push({ address: table.ip[index]!, kind: atCall ? 'wrapper-argument' : 'syscall-number', ...(resolution.why ? { detail: resolution.why } : {}) });
    }
    return becameWrapper;
  }

  // A function whose code runs on into the next start (the hot part of a function that a jump from
  // its cold part split, a shared tail) continues there: an edge, and a tail-call site for wrappers.
  // Alignment padding before a start that only a jump made (gcc aligns a loop head with a `nop`,
  // and a jump from the function's cold part makes the head a start) does not stop it; padding
  // before a declared start (symbol, FDE, call target) ends the function.
  const fallthroughSites = new Set<number>();
  for (const [k, start] of starts.entries()) {
    const fn = functions.get(start)!;
    const next = starts[k + 1];
    if (next === undefined || thunks.has(start) || fn.span.end >= table.count || table.ip[fn.span.end] !== next) continue;
    let last = fn.span.end - 1;
    while (last >= fn.span.first && table.op[last] === Op.Padding) last--;
    if (last < fn.span.first || (last !== fn.span.end - 1 && !jumpOnly.has(next))) continue;
    if (!fallsThrough(table.op[last]!) || table.noReturnCalls.has(last)) continue;
    fn.callees.add(next);
    fallthroughSites.add(fn.span.end);
    const list = callSites.get(next) ?? [];
    list.push({ caller: start, index: fn.span.end });
    callSites.set(next, list);
  }

  // An IFUNC's resolver returns one of the functions it takes the address of: edges to all of them.
  for (const fn of functions.values()) {
    for (const resolver of fn.ifuncCalls) {
      fn.callees.add(resolver);
      for (const implementation of implementationsOf(resolver)) fn.callees.add(implementation);
    }
  }
  function implementationsOf(resolver: number): number[] {
    const node = functions.get(resolver);
    return node ? [...node.takes].filter((address) => functions.has(address)) : [];
  }

  const definedNames = new Set([...model.seeds.flatMap((seed) => seed.names), ...model.exports.map((item) => item.name)].map((name) => name.split('@')[0]!));
  resolveSetxidBroadcast(syscallResolutions, model.arch, definedNames);
  const worklist: FunctionNode[] = [];
  for (const { fn, index, table: abi, resolution } of syscallResolutions) {
    stats.syscallSites++;
    if (!resolution.unknown) stats.resolvedSites++;
    if (resolution.params.size > 0) fn.wrapperSites++;
    if (applyArgument(fn, index, resolution, abi)) worklist.push(fn);
  }
  // Wrappers: resolve their parameters at every direct call site, to a fixpoint.
  const seen = new Set<string>();
  while (worklist.length > 0) {
    const wrapper = worklist.pop()!;
    for (const site of callSites.get(wrapper.start) ?? []) {
      const caller = functions.get(site.caller)!;
      // A tail jump passes the caller's own stack: no return address between the two frames.
      const tailCall = table.op[site.index] === Op.JmpDirect || table.op[site.index] === Op.Jcc || fallthroughSites.has(site.index);
      for (const param of wrapper.wrapperParams) {
        const key = `${site.index}:${param}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const resolution = tracker.resolve(locationOfParam(param, tailCall), site.index, caller.span);
        if (model.goAbi) resolveGoPerThreadSyscall(caller, resolution);
        if (applyArgument(caller, site.index, resolution, 'native')) worklist.push(caller);
      }
    }
  }
  const ifuncImplementations = new Map<number, number[]>();
  for (const resolver of model.ifuncResolvers) ifuncImplementations.set(resolver, implementationsOf(resolver));
  let dataRegions: readonly GraphDataRegion[] = [{ address: 0, taken: [...dataTaken].sort((a, b) => a - b), imports: [...model.dataImports], holds: [], symbols: [], names: [], always: true }];
  if (layout) {
    const ownerOf = (address: number): number | undefined => {
      const owner = functions.has(address) ? address : containing(address);
      return owner !== undefined && dataTaken.has(owner) ? owner : undefined;
    };
    // A command's record data (its options) is referenced by the command's function.
    for (const [command, data] of layout.commandData) {
      const owner = functions.has(command) ? command : containing(command);
      if (owner !== undefined) functions.get(owner)!.dataRefs.add(data);
    }
    const split = splitData({ ...layout, alwaysCode: [...layout.alwaysCode, ...unownedCode] }, { taken: takenData, unowned: unownedData }, ownerOf);
    dataRegions = split.regions;
    for (const fn of functions.values()) {
      for (const address of fn.dataRefs) {
        const region = split.regionOf(address);
        if (region !== undefined) fn.dataRegions.add(region);
      }
      fn.dataRefs.clear();
    }
  }
  return { functions, addressTaken, dataRegions, namesTaken: [...namesTaken].sort(), thunks, ifuncImplementations, table, stats };
}

/**
 * Walks control flow from the span's first instruction (fallthrough and direct jumps inside the
 * span): the instructions it reaches, and whether it reaches bytes that do not decode or jumps into
 * the middle of an instruction. No compiler emits either on a path code can take, so such bytes are
 * data, not code.
 */
function walkFromEntry(table: InstructionTable, span: FunctionSpan): { reached: Set<number>; decodesAsData: boolean } {
  const { first, end } = span;
  const reached = new Set<number>();
  let decodesAsData = false;
  const stack = [first];
  while (stack.length > 0) {
    const i = stack.pop()!;
    if (i < first || i >= end || reached.has(i)) continue;
    reached.add(i);
    const op = table.op[i]!;
    if (op === Op.Invalid) decodesAsData = true;
    if (op === Op.JmpDirect || op === Op.Jcc) {
      const address = table.target[i]!;
      const target = lowerBound(table.ip, address);
      if (table.ip[target] === address) stack.push(target);
      else if (address >= table.ip[first]! && (end >= table.count || address < table.ip[end]!)) decodesAsData = true;
    }
    if (fallsThrough(op) && !table.noReturnCalls.has(i)) stack.push(i + 1);
  }
  return { reached, decodesAsData };
}

/**
 * A compiler's switch: `jmp [table + index*8]`, or a register jump shortly after a scaled-index
 * load from a table (`movsxd rax, [rdx + rax*4]; add rax, rdx; jmp rax`). Other indirect jumps are
 * tail calls through pointers and count as indirect calls.
 */
function isJumpTable(table: InstructionTable, redecoder: Redecoder, index: number, span: FunctionSpan): boolean {
  const scaledLoad = (at: number): boolean => {
    const instruction = redecoder.decode(at);
    for (let operand = 0; operand < instruction.opCount; operand++) {
      if (instruction.opKind(operand) === OpKind.Memory && instruction.memoryIndex !== Register.None && instruction.memoryIndexScale >= 4) {
        return instruction.mnemonic !== Mnemonic.Lea;
      }
    }
    return false;
  };
  if (scaledLoad(index)) return true;
  for (let at = index - 1; at >= Math.max(span.first, index - 8); at--) {
    if (!fallsThrough(table.op[at]!) || table.op[at] === Op.CallDirect || table.op[at] === Op.CallIndirect) return false;
    if (scaledLoad(at)) return true;
  }
  return false;
}

/**
 * Functions that never return (`exit`, `abort`, fatal-error helpers): no `ret` and no indirect jump
 * in their span, their last instruction does not fall off the end, and any tail jump goes to another
 * function that never returns. Calls to them end a block, so the value tracker does not take the
 * code after such a call for a fallthrough predecessor.
 */
function markNoReturnCalls(table: InstructionTable, functions: ReadonlyMap<number, FunctionNode>, starts: readonly number[]): void {
  const mayReturn = new Set<number>();
  const tailTargets = new Map<number, number[]>();
  for (const fn of functions.values()) {
    const { first, end } = fn.span;
    let last = end - 1;
    while (last >= first && table.op[last] === Op.Padding) last--;
    if (last < first || (fallsThrough(table.op[last]!) && table.op[last] !== Op.CallDirect)) {
      mayReturn.add(fn.start);
      continue;
    }
    const targets: number[] = [];
    let returns = false;
    for (let i = first; i < end && !returns; i++) {
      const op = table.op[i];
      if (op === Op.Return || op === Op.JmpIndirect) returns = true;
      else if ((op === Op.JmpDirect || op === Op.Jcc) && (table.target[i]! < table.ip[first]! || (end < table.count && table.target[i]! >= table.ip[end]!))) {
        const k = lowerBound(starts, table.target[i]! + 1) - 1;
        if (k >= 0) targets.push(starts[k]!);
      }
    }
    if (returns) mayReturn.add(fn.start);
    else if (targets.length > 0) tailTargets.set(fn.start, targets);
  }
  for (let changed = true; changed; ) {
    changed = false;
    for (const [start, targets] of tailTargets) {
      if (!mayReturn.has(start) && targets.some((target) => mayReturn.has(target) || !functions.has(target))) {
        mayReturn.add(start);
        changed = true;
      }
    }
  }
  for (let i = 0; i < table.count; i++) {
    if (table.op[i] === Op.CallDirect && functions.has(table.target[i]!) && !mayReturn.has(table.target[i]!)) table.noReturnCalls.add(i);
  }
}

/**
 * Go's package-level variables that hold a syscall number (`syscall.fcntl64Syscall`,
 * `internal/syscall/unix.FcntlSyscall`: SYS_FCNTL, reassigned only on 32-bit Linux) are read with
 * `mov reg, [rip + var]`. In a static Go program nothing outside the program writes its memory and
 * nothing relocates it (model.goStaticData is empty otherwise), and Go code writes a variable only
 * by naming it (a store at its address) or through a pointer to it (its address taken by `lea`, an
 * immediate, or a pointer stored in initialised data). So a load of `size` bytes at A reads the
 * file's bytes when: A lies in initialised data; no instruction other than a plain load or compare
 * writes memory overlapping [A, A + size) (a `mov` store's width is its source's; any other
 * instruction naming memory up to 63 bytes below A counts as a 64-byte store); and no
 * `lea`, immediate or data word is an address in [A, A + size). Assumed (stated in ARCHITECTURE.md):
 * a variable is not an element of a larger array or struct written through a pointer to its start
 * while this element is read by its fixed address; Go's own syscall numbers never are.
 */
function unwrittenVariables(model: CodeModel, table: InstructionTable, redecoder: Redecoder): ConstantMemory | undefined {
  if (!model.goAbi || model.goStaticData.length === 0 || model.bitness !== 64) return undefined;
  const named: number[] = [];
  const pointed: number[] = [];
  for (let i = 0; i < table.count; i++) {
    const target = table.target[i]!;
    if (Number.isNaN(target)) continue;
    const op = table.op[i];
    if (op === Op.LeaRip || op === Op.Immediate) pointed.push(target);
    else if (op === Op.KnownMemory) named.push(i);
  }
  const inData = (address: number, size: number): Uint8Array | undefined => {
    const range = model.goStaticData.find((r) => address >= r.start && address + size <= r.start + r.bytes.length);
    return range?.bytes.subarray(address - range.start, address - range.start + size);
  };
  for (const range of model.goStaticData) {
    const view = new DataView(range.bytes.buffer, range.bytes.byteOffset, range.bytes.byteLength);
    for (let offset = (8 - (range.start % 8)) % 8; offset + 8 <= range.bytes.length; offset += 8) {
      const word = Number(view.getBigUint64(offset, true));
      if (inData(word, 1)) pointed.push(word);
    }
  }
  named.sort((a, b) => table.target[a]! - table.target[b]!);
  pointed.sort((a, b) => a - b);
  const namedTargets = named.map((i) => table.target[i]!);
  /** Whether instruction `index` (naming memory at its target) may write [from, to). */
  const mayWrite = (index: number, from: number, to: number): boolean => {
    const instruction = redecoder.decode(index);
    // Memory as a later operand is read (`add rax, [rip + x]`); as the first, assume written.
    if (instruction.op0Kind !== OpKind.Memory) return false;
    const start = table.target[index]!;
    return start < to && start + writtenBytes(instruction) > from;
  };
  return (address, size) => {
    if (size !== 4 && size !== 8) return undefined;
    const bytes = inData(address, size);
    if (!bytes) return undefined;
    const at = lowerBound(pointed, address);
    if (at < pointed.length && pointed[at]! < address + size) return undefined;
    for (let k = lowerBound(namedTargets, address - MAX_STORE_BYTES + 1); k < named.length && namedTargets[k]! < address + size; k++) {
      if (mayWrite(named[k]!, address, address + size)) return undefined;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, size);
    const value = size === 8 ? view.getBigUint64(0, true) : BigInt(view.getUint32(0, true));
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
  };
}

/** The widest store (AVX-512: 64 bytes), the size assumed when an instruction's is not read below. */
const MAX_STORE_BYTES = 64;

/** Bytes a store to its first operand writes: its source register's or immediate's size, else the widest. */
function writtenBytes(instruction: Instruction): number {
  if (instruction.opCount < 2) return MAX_STORE_BYTES;
  switch (instruction.op1Kind) {
    case OpKind.Register:
      return instruction.mnemonic === Mnemonic.Mov ? RegisterExt.size(instruction.op1Register) : MAX_STORE_BYTES;
    case OpKind.Immediate8:
      return instruction.mnemonic === Mnemonic.Mov ? 1 : MAX_STORE_BYTES;
    case OpKind.Immediate16:
      return instruction.mnemonic === Mnemonic.Mov ? 2 : MAX_STORE_BYTES;
    case OpKind.Immediate32:
      return instruction.mnemonic === Mnemonic.Mov ? 4 : MAX_STORE_BYTES;
    case OpKind.Immediate32to64:
      return instruction.mnemonic === Mnemonic.Mov ? 8 : MAX_STORE_BYTES;
    default:
      return MAX_STORE_BYTES;
  }
}

/**
 * Go's per-thread syscalls (Go ≥ 1.19, `syscall.AllThreadsSyscall`, used by `syscall.Setuid` and
 * friends): `runtime.syscall_runtime_doAllThreadsSyscall` makes the syscall on its own thread
 * first, then stores its number and arguments in `perThreadSyscall` and signals every other thread,
 * whose `runtime.runPerThreadSyscall` loads them and makes the same syscall. So the numbers that
 * site loads from memory are those of the first call, whose own site is resolved like any
 * wrapper's: the per-thread site adds none.
 */
function resolveGoPerThreadSyscall(caller: FunctionNode, resolution: Resolution): void {
  if (!resolution.unknown || !resolution.fromMemory || resolution.params.size > 0) return;
  if (!caller.names.includes('runtime.runPerThreadSyscall')) return;
  resolution.unknown = false;
  resolution.why = 'Go per-thread syscall: the number syscall_runtime_doAllThreadsSyscall made first';
}

/**
 * The SETXID idiom of glibc (nptl `__nptl_setxid` and its SIGSETXID handler) and musl (`__setxid`
 * → `__synccall(do_setxid, &ctx)`): every thread makes the set*id syscall that the set*id function
 * stored in a shared structure, so the number is loaded from memory. The numbers it can be are the
 * set*id syscalls the object's set*id functions make: those found at resolved sites of the object
 * (glibc's wrappers also make theirs directly), and those named by the set*id functions the object
 * defines (musl's wrappers only pass their number to `__setxid`). A load from memory in an object
 * with neither stays unresolved. Documented in ARCHITECTURE.md as a known idiom.
 */
const SETXID_SYSCALLS: Readonly<Record<'x86_64' | 'i386', Readonly<Record<string, number>>>> = {
  x86_64: { setuid: 105, setgid: 106, setreuid: 113, setregid: 114, setgroups: 116, setresuid: 117, setresgid: 119 },
  i386: { setuid: 213, setgid: 214, setreuid: 203, setregid: 204, setgroups: 206, setresuid: 208, setresgid: 210 },
};
/** Functions that make a set*id syscall, and the syscalls they may make (seteuid is setresuid or setreuid). */
const SETXID_FUNCTIONS: Readonly<Record<string, readonly string[]>> = {
  setuid: ['setuid'], setgid: ['setgid'], setreuid: ['setreuid'], setregid: ['setregid'], setgroups: ['setgroups'],
  setresuid: ['setresuid'], setresgid: ['setresgid'], seteuid: ['setresuid', 'setreuid'], setegid: ['setresgid', 'setregid'],
};

/** The functions that re-issue a SETXID broadcast in every thread (glibc nptl, musl). */
const SETXID_BROADCASTERS = new Set(['__nptl_setxid', '__nptl_setxid_sighandler', 'do_setxid', '__setxid']);

function resolveSetxidBroadcast(
  sites: readonly { fn: FunctionNode; table: 'native' | 'i386'; resolution: Resolution }[],
  arch: 'x86_64' | 'i386',
  definedNames: ReadonlySet<string>,
): void {
  const numbers = SETXID_SYSCALLS[arch];
  const resolved = new Set<number>();
  for (const { table, resolution } of sites) if (table === 'native' && !resolution.unknown) for (const value of resolution.values) resolved.add(value);
  // A static program links only the wrappers it uses: the broadcast can re-issue only those.
  const present = new Set(Object.values(numbers).filter((number) => resolved.has(number)));
  for (const [name, syscalls] of Object.entries(SETXID_FUNCTIONS)) {
    if (definedNames.has(name) || definedNames.has(`__${name}`)) for (const syscall of syscalls) present.add(numbers[syscall]!);
  }
  for (const { fn, table, resolution } of sites) {
    if (table !== 'native' || !resolution.unknown || resolution.params.size > 0 || !resolution.fromMemory) continue;
    if (present.size > 0) {
      for (const number of present) resolution.values.add(number);
      resolution.unknown = false;
      resolution.why = 'SETXID broadcast: one of the set*id syscalls';
    } else if (fn.names.some((name) => SETXID_BROADCASTERS.has(name.split('@')[0]!))) {
      // A static program that links the broadcaster (pthread_create pulls it in) but no set*id
      // function: nothing can start a broadcast, so the site makes no syscall.
      resolution.unknown = false;
      resolution.why = 'SETXID broadcast: no set*id function is linked';
    }
  }
}

/**
 * The register `lea reg, [rip + d]` wrote is used as the base or index of a memory operand before
 * anything else uses or replaces it, within the next instructions of the same block: the address
 * is that of data (a table kept in an executable section), not of a function.
 */
function readAsData(redecoder: Redecoder, table: InstructionTable, index: number): boolean {
  const register = RegisterExt.fullRegister(redecoder.decode(index).op0Register);
  for (let at = index + 1; at < Math.min(table.count, index + 16); at++) {
    if (!fallsThrough(table.op[at]!) || table.op[at] === Op.CallDirect || table.op[at] === Op.CallIndirect) return false;
    const next = redecoder.decode(at);
    let memory = false;
    for (let operand = 0; operand < next.opCount; operand++) {
      if (next.opKind(operand) === OpKind.Memory && next.mnemonic !== Mnemonic.Lea) memory = true;
      else if (next.opKind(operand) === OpKind.Register && RegisterExt.fullRegister(next.opRegister(operand)) === register) return false;
    }
    if (memory && (RegisterExt.fullRegister(next.memoryBase) === register || RegisterExt.fullRegister(next.memoryIndex) === register)) return true;
    if (redecoder.writtenRegisters(next).has(register)) return false;
  }
  return false;
}

/**
 * Code addresses held in data that code may call: every data pointer of the model, and each `.got`
 * pointer unless every instruction that names its slot compares with it (`cmp rax, [rip + slot]`,
 * or a load that only a `cmp` reads). Such a pointer bounds a pc range, as glibc 2.41's cancellation
 * handler checks the interrupted pc against `__syscall_cancel_arch_start`/`_end`; a slot no code
 * names stays a callback. i386 code reaches its GOT through a base register: no slot is named there.
 */
function dataHeldPointers(model: CodeModel, table: InstructionTable, redecoder: Redecoder): number[] {
  const comparedOnlySlots = new Map<number, boolean>();
  if (model.gotCodePointers.size > 0 && table.bitness === 64) {
    for (let i = 0; i < table.count; i++) {
      // Any instruction whose target is the slot names it (branch targets never lie in `.got`); an
      // immediate equal to it hands the slot's address out, so it counts as a use, not a compare.
      const op = table.op[i]!;
      const slot = table.target[i]!;
      if (!model.gotCodePointers.has(slot)) continue;
      const compared = op === Op.CompareMemory || (op === Op.LoadRip && comparedOnly(redecoder, table, i));
      comparedOnlySlots.set(slot, (comparedOnlySlots.get(slot) ?? true) && compared);
    }
  }
  const pointers = [...model.dataCodePointers];
  for (const [slot, target] of model.gotCodePointers) if (comparedOnlySlots.get(slot) !== true) pointers.push(target);
  return pointers;
}

/**
 * The register that instruction `index` wrote (`lea reg, [rip + d]`, `mov reg, [rip + slot]`) is
 * next read by a `cmp`, with at most three `mov`s or `nop`s that do not name it in between: a range
 * check on a code address (is this pc inside that code?). `mov` has no implicit operands, so what
 * it does not name it neither reads nor writes.
 */
function comparedOnly(redecoder: Redecoder, table: InstructionTable, index: number): boolean {
  const register = RegisterExt.fullRegister(redecoder.decode(index).op0Register);
  for (let at = index + 1; at < Math.min(table.count, index + 5); at++) {
    const next = redecoder.decode(at);
    const names = namesRegister(next, register);
    if (next.mnemonic === Mnemonic.Cmp) return names;
    if (names || (next.mnemonic !== Mnemonic.Mov && table.op[at] !== Op.Padding)) return false;
  }
  return false;
}

/** An operand of the instruction is the register (any width of it) or addresses memory through it. */
function namesRegister(instruction: Instruction, register: Register): boolean {
  for (let operand = 0; operand < instruction.opCount; operand++) {
    const kind = instruction.opKind(operand);
    if (kind === OpKind.Register && RegisterExt.fullRegister(instruction.opRegister(operand)) === register) return true;
    if (kind === OpKind.Memory && (RegisterExt.fullRegister(instruction.memoryBase) === register || RegisterExt.fullRegister(instruction.memoryIndex) === register)) return true;
  }
  return false;
}
