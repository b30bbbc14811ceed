/**
 * radare2's answers about one object → the shared `ObjectGraph`. Pure: the answers are collected by
 * worker/radare2/analyser.ts; this module only decides what they mean.
 *
 * What radare2 decides: which functions exist and which instructions belong to each (`aflqj`,
 * `afbj`), the references from each function's code (`axffj`: CALL, CODE = jumps, DATA/ICOD =
 * addresses taken), the number at each syscall site (`/asj`, by ESIL emulation), where indirect
 * branches are (`/atj`). What the ELF headers decide (the same for every analyser, from
 * worker/native/elf-model.ts): PLT/GOT bindings, IRELATIVE slots, code pointers held in data.
 */
import type { GraphFunction, ObjectGraph, SyscallRef, UnresolvedRef } from '../graph/object-graph.js';
import type { CodeModel } from '../native/code-model.js';

/** One reference from a function's code, as `axffj` prints it. */
export interface Radare2Ref {
  /** `CALL`, `CODE` (jump), `ICOD` (code address loaded), `DATA`, `STRN`, ... */
  readonly type: string;
  /** The instruction that makes the reference. */
  readonly at: number;
  /** The referenced address. */
  readonly ref: number;
}

export interface Radare2Function {
  readonly address: number;
  /** Addresses of the function's instructions (from its basic blocks). */
  readonly instructions: readonly number[];
  readonly refs: readonly Radare2Ref[];
}

export type SyscallOpcode = 'syscall' | 'sysenter' | 'int 0x80';

export interface Radare2Answers {
  readonly functions: readonly Radare2Function[];
  /** PLT stub address → imported symbol (`iij`). */
  readonly pltImports: ReadonlyMap<number, string>;
  /** Every syscall instruction found by disassembly search (`/adj`), possibly outside functions. */
  readonly syscallInstructions: readonly { readonly address: number; readonly opcode: SyscallOpcode }[];
  /** Syscall sites whose number radare2's emulation found (`/asj`). */
  readonly syscallNumbers: ReadonlyMap<number, number>;
  /** Indirect call and jump instructions (`/atj ucall,rcall,...`), possibly outside functions. */
  readonly indirectBranches: readonly number[];
}

/** Largest syscall number of any table we name (the x86-64 table ends below 512). */
const MAX_SYSCALL_NUMBER = 1023;

interface MutableFunction {
  readonly callees: Set<number>;
  readonly imports: Set<string>;
  readonly syscalls: Map<string, SyscallRef>;
  readonly unresolved: UnresolvedRef[];
  indirect: boolean;
  readonly takesFunctions: Set<number>;
  readonly wrapperSites: number;
  /** IRELATIVE slots called: edges to the resolver's implementations, added last. */
  readonly ifuncCalls: Set<number>;
}

export function buildRadare2Graph(model: CodeModel, answers: Radare2Answers): ObjectGraph {
  const starts = new Set(answers.functions.map((fn) => fn.address));
  // An instruction may belong to several radare2 functions (shared tails): it counts for each.
  const owners = new Map<number, number[]>();
  for (const fn of answers.functions) {
    for (const address of fn.instructions) {
      const list = owners.get(address);
      if (list) list.push(fn.address);
      else owners.set(address, [fn.address]);
    }
  }
  const nodes = new Map<number, MutableFunction>();
  for (const fn of answers.functions) {
    nodes.set(fn.address, {
      callees: new Set(),
      imports: new Set(),
      syscalls: new Map(),
      unresolved: [],
      indirect: false,
      takesFunctions: new Set(),
      wrapperSites: 0,
      ifuncCalls: new Set(),
    });
  }

  for (const fn of answers.functions) {
    const node = nodes.get(fn.address)!;
    const own = new Set(fn.instructions);
    for (const ref of fn.refs) {
      const target = ref.ref;
      if (ref.type === 'CALL' || ref.type === 'CODE') {
        const imported = answers.pltImports.get(target) ?? model.gotSlots.get(target);
        if (imported !== undefined) node.imports.add(imported);
        else if (model.irelativeSlots.has(target)) node.ifuncCalls.add(model.irelativeSlots.get(target)!);
        else if (starts.has(target)) {
          if (target !== fn.address || ref.type === 'CALL') node.callees.add(target);
        } else if (own.has(target)) continue;
        else if (owners.has(target)) for (const owner of owners.get(target)!) node.callees.add(owner);
        else if (inCode(model, target)) {
          // Code radare2 did not make part of any function: what it does is unknown.
          node.unresolved.push({ address: ref.at, kind: 'undecodable', detail: `branch to 0x${target.toString(16)} outside radare2's functions` });
        }
      } else if (starts.has(target)) {
        node.takesFunctions.add(target);
      } else {
        // A function pointer loaded from a GOT slot is an import the code may call.
        const imported = model.gotSlots.get(target);
        if (imported !== undefined) node.imports.add(imported);
      }
    }
    // An indirect branch radare2 resolved (a jump table, a call through a GOT slot) has CALL/CODE
    // references at its address; one without any may go anywhere.
    const followed = new Set(fn.refs.filter((ref) => ref.type === 'CALL' || ref.type === 'CODE').map((ref) => ref.at));
    for (const address of answers.indirectBranches) {
      if (own.has(address) && !followed.has(address)) {
        node.indirect = true;
        break;
      }
    }
  }

  const sites = new Set<number>();
  let resolvedSites = 0;
  for (const { address, opcode } of answers.syscallInstructions) {
    const siteOwners = owners.get(address);
    if (!siteOwners || sites.has(address)) continue;
    sites.add(address);
    const number = answers.syscallNumbers.get(address);
    const known = number !== undefined && Number.isInteger(number) && number >= 0 && number <= MAX_SYSCALL_NUMBER;
    if (known) resolvedSites++;
    const table = opcode === 'int 0x80' && model.bitness === 64 ? 'i386' : 'native';
    for (const owner of siteOwners) {
      const node = nodes.get(owner)!;
      if (known) node.syscalls.set(`${table}:${number}`, { table, number });
      else node.unresolved.push({ address, kind: 'syscall-number', detail: `radare2 found no number for this ${opcode}` });
    }
  }

  // IFUNC resolvers return one of the functions whose address they take (psABI IRELATIVE).
  const ifuncImplementations = new Map<number, readonly number[]>();
  for (const resolver of model.ifuncResolvers) {
    const node = nodes.get(resolver);
    if (node) ifuncImplementations.set(resolver, [...node.takesFunctions].sort((a, b) => a - b));
  }
  for (const node of nodes.values()) {
    for (const resolver of node.ifuncCalls) {
      if (nodes.has(resolver)) node.callees.add(resolver);
      for (const implementation of ifuncImplementations.get(resolver) ?? []) node.callees.add(implementation);
    }
  }

  const dataTaken = new Set(model.dataCodePointers.filter((address) => starts.has(address)));
  const addressTaken = new Set(dataTaken);
  for (const node of nodes.values()) for (const address of node.takesFunctions) addressTaken.add(address);
  const functions = new Map<number, GraphFunction>(nodes);
  return {
    functions,
    addressTaken,
    dataTaken,
    dataImports: model.dataImports,
    ifuncImplementations,
    stats: { syscallSites: sites.size, resolvedSites },
  };
}

function inCode(model: CodeModel, address: number): boolean {
  return model.ranges.some((range) => address >= range.start && address < range.start + range.bytes.length);
}
