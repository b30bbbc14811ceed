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
  /** Its basic blocks, each as the addresses of its instructions in order. */
  readonly blocks: readonly (readonly number[])[];
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
  /** For each site with a number: its basic block up to the site (see `confirmedNumber`). */
  readonly siteBlocks: ReadonlyMap<number, SiteBlock>;
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
    // references, or a reference to a GOT slot, at its address; one without any may go anywhere.
    const followed = new Set(
      fn.refs
        .filter((ref) => ref.type === 'CALL' || ref.type === 'CODE' || model.gotSlots.has(ref.ref) || model.irelativeSlots.has(ref.ref))
        .map((ref) => ref.at),
    );
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
    const inRange = number !== undefined && Number.isInteger(number) && number >= 0 && number <= MAX_SYSCALL_NUMBER;
    const confirmed = inRange && confirmedNumber(answers.siteBlocks.get(address), number);
    if (confirmed) resolvedSites++;
    const table = opcode === 'int 0x80' && model.bitness === 64 ? 'i386' : 'native';
    for (const owner of siteOwners) {
      const node = nodes.get(owner)!;
      // An unconfirmed number is kept (it may be right: glibc's _exit sets eax from a register
      // loaded in the block before) and the site is unresolved as well, so the fallback applies.
      if (inRange) node.syscalls.set(`${table}:${number}`, { table, number });
      if (!confirmed) {
        const detail = inRange ? `radare2 says ${number}, which the block's disassembly does not confirm` : `radare2 found no number for this ${opcode}`;
        node.unresolved.push({ address, kind: 'syscall-number', detail });
      }
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

/** Instructions after which no register's value is known from before them. */
const CLOBBER_ALL = new Set(['call', 'syscall', 'sysenter', 'int']);
/** Instructions that write rax, rdx (and for cpuid rbx, rcx) without naming them. */
const IMPLICIT_WRITERS = new Set([
  'cpuid', 'rdtsc', 'rdtscp', 'mul', 'div', 'idiv', 'cdqe', 'cwde', 'cbw', 'cqo', 'cdq', 'lodsb', 'lodsw', 'lodsd', 'lodsq',
  'cmpxchg', 'in', 'lahf', 'xgetbv', 'rdpkru',
]);
const IMPLICITLY_WRITTEN = new Set(['rax', 'rbx', 'rcx', 'rdx']);
/** Instructions that read their first operand without writing it. */
const READ_ONLY = new Set(['cmp', 'test', 'bt', 'push']);
/** Instructions that write their second operand too. */
const SWAPS = new Set(['xchg', 'xadd']);

/** Each general-purpose register name → its 64-bit register. */
const REGISTER_OF = new Map<string, string>();
for (const [full, ...parts] of [
  ['rax', 'eax', 'ax', 'al', 'ah'], ['rbx', 'ebx', 'bx', 'bl', 'bh'], ['rcx', 'ecx', 'cx', 'cl', 'ch'], ['rdx', 'edx', 'dx', 'dl', 'dh'],
  ['rsi', 'esi', 'si', 'sil'], ['rdi', 'edi', 'di', 'dil'], ['rbp', 'ebp', 'bp', 'bpl'], ['rsp', 'esp', 'sp', 'spl'],
  ...Array.from({ length: 8 }, (_, i) => [`r${i + 8}`, `r${i + 8}d`, `r${i + 8}w`, `r${i + 8}b`]),
] as string[][]) {
  for (const name of [full!, ...parts]) REGISTER_OF.set(name, full!);
}

export interface SiteBlock {
  /** radare2's disassembly from the start of the site's basic block up to the site (last). */
  readonly disassembly: readonly string[];
  /** The block is its function's entry block: a register not written in it holds a parameter. */
  readonly entryBlock: boolean;
}

/**
 * radare2's emulation (`/as`) reports a number even where eax holds a parameter or a value loaded
 * from memory (musl's `__syscall_cp_asm`, Go's `Syscall6`: measured on the ground-truth fixtures),
 * and a wrong number would make a profile break the program. So radare2's number is checked
 * against radare2's own disassembly of the site's basic block: walking back from the site through
 * register copies (`mov eax, r8d`), the value must come from a constant equal to the number
 * (`mov eax, N`, `xor eax, eax`). A value that comes from anything else (memory, arithmetic, a
 * call), from a register the block copies but does not write, or in the entry block from a
 * parameter, makes the site unresolved, and the scan's documented fallback applies. Only when eax
 * is not written in the block at all is radare2's number taken on its word.
 */
export function confirmedNumber(site: SiteBlock | undefined, number: number): boolean {
  if (!site || !Number.isInteger(number) || number < 0 || number > MAX_SYSCALL_NUMBER) return false;
  let tracked = 'rax';
  const block = site.disassembly;
  for (let i = block.length - 2; i >= 0; i--) {
    const text = block[i]!.trim().toLowerCase();
    const space = text.indexOf(' ');
    const mnemonic = space < 0 ? text : text.slice(0, space);
    const operands = space < 0 ? [] : text.slice(space + 1).split(',').map((operand) => operand.trim());
    if (CLOBBER_ALL.has(mnemonic)) return false;
    if ((IMPLICIT_WRITERS.has(mnemonic) || mnemonic.startsWith('rep')) && IMPLICITLY_WRITTEN.has(tracked)) return false;
    if (SWAPS.has(mnemonic) && operands.some((operand) => REGISTER_OF.get(operand) === tracked)) return false;
    const writesTracked = !READ_ONLY.has(mnemonic) && REGISTER_OF.get(operands[0] ?? '') === tracked;
    if (!writesTracked) continue;
    if (mnemonic === 'xor' && REGISTER_OF.get(operands[1] ?? '') === tracked) return number === 0;
    if (mnemonic !== 'mov' || operands.length !== 2) return false;
    const source = operands[1]!;
    if (/^(0x[0-9a-f]+|\d+)$/.test(source)) return Number(source) === number;
    const register = REGISTER_OF.get(source);
    if (!register) return false;
    tracked = register;
  }
  // eax not written in the block: radare2 followed the paths into it. A copy from a register the
  // block does not write is most often a parameter (musl's `__syscall_cp_asm`): not trusted.
  return tracked === 'rax' && !site.entryBlock;
}

function inCode(model: CodeModel, address: number): boolean {
  return model.ranges.some((range) => address >= range.start && address < range.start + range.bytes.length);
}
