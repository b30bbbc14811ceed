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
  /** For each site: its basic block up to the site, and its function's writes (see `classifySite`). */
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
    const verdict = classifySite(answers.siteBlocks.get(address), number);
    const inRange = number !== undefined && Number.isInteger(number) && number >= 0 && number <= MAX_SYSCALL_NUMBER;
    if (verdict === 'confirmed') resolvedSites++;
    const table = opcode === 'int 0x80' && model.bitness === 64 ? 'i386' : 'native';
    for (const owner of siteOwners) {
      const node = nodes.get(owner)!;
      if (verdict === 'argument') {
        node.unresolved.push({ address, kind: 'syscall-argument', detail: `the number of this ${opcode} is an argument of its function` });
        continue;
      }
      // An unconfirmed number is kept (it may be right) and the site is unresolved as well, so the
      // scan's object-wide fallback applies.
      if (inRange) node.syscalls.set(`${table}:${number}`, { table, number });
      if (verdict === 'unknown') {
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

/** Registers a call may change (System V and Go ABIs): all but rbx, rbp, rsp, r12-r15. */
const CALL_CLOBBERED = ['rax', 'rcx', 'rdx', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11'];
/** Instructions that write rax, rdx (and for cpuid rbx, rcx) without naming them. */
const IMPLICIT_WRITERS = new Set([
  'cpuid', 'rdtsc', 'rdtscp', 'mul', 'div', 'idiv', 'cdqe', 'cwde', 'cbw', 'cqo', 'cdq', 'lodsb', 'lodsw', 'lodsd', 'lodsq',
  'cmpxchg', 'in', 'lahf', 'xgetbv', 'rdpkru',
]);
const IMPLICITLY_WRITTEN = ['rax', 'rbx', 'rcx', 'rdx'];
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

interface Instruction {
  readonly mnemonic: string;
  readonly operands: readonly string[];
}

function parseInstruction(text: string): Instruction {
  const trimmed = text.trim().toLowerCase();
  const space = trimmed.indexOf(' ');
  return {
    mnemonic: space < 0 ? trimmed : trimmed.slice(0, space),
    operands: space < 0 ? [] : trimmed.slice(space + 1).split(',').map((operand) => operand.trim()),
  };
}

/** The 64-bit registers an instruction writes (as far as a syscall number's origin matters). */
function writes({ mnemonic, operands }: Instruction): string[] {
  if (mnemonic === 'call' || mnemonic === 'syscall' || mnemonic === 'sysenter' || mnemonic === 'int') return CALL_CLOBBERED;
  const out: string[] = [];
  if (IMPLICIT_WRITERS.has(mnemonic) || mnemonic.startsWith('rep')) out.push(...IMPLICITLY_WRITTEN);
  if (SWAPS.has(mnemonic)) for (const operand of operands) out.push(REGISTER_OF.get(operand) ?? '');
  const first = REGISTER_OF.get(operands[0] ?? '');
  if (first && !READ_ONLY.has(mnemonic)) out.push(first);
  return out.filter(Boolean);
}

/** Every register some instruction of the function writes. */
export function registersWritten(disassembly: readonly string[]): Set<string> {
  const written = new Set<string>();
  for (const text of disassembly) for (const register of writes(parseInstruction(text))) written.add(register);
  return written;
}

export interface SiteBlock {
  /** radare2's disassembly from the start of the site's basic block up to the site (last). */
  readonly disassembly: readonly string[];
  /** The block is its function's entry block. */
  readonly entryBlock: boolean;
  /** Registers written anywhere in the site's function (`registersWritten` of its disassembly). */
  readonly writtenInFunction: ReadonlySet<string>;
}

/**
 * - `confirmed`: radare2's number, and the site's block moves that constant into eax.
 * - `argument`: eax holds what the function's caller passed (a register the function never writes,
 *   or a stack argument loaded in the entry block): a wrapper (`syscall(2)`, musl's
 *   `__syscall_cp_asm`, Go's `Syscall6`). radare2 resolves no call sites, so any syscall may be made.
 * - `unknown`: anything else (memory, arithmetic, a value set before the block).
 */
export type SiteVerdict = 'confirmed' | 'argument' | 'unknown';

/**
 * Checks radare2's number at a syscall site against radare2's own disassembly of the site's basic
 * block, walking back from the site through register copies (`mov eax, r8d`). radare2's emulation
 * (`/as`) reports numbers even where eax holds a parameter or a value loaded from memory (musl's
 * `__syscall_cp_asm`, Go's `Syscall6`: measured on the ground-truth fixtures), and a wrong number
 * would make a profile that breaks the program.
 */
export function classifySite(site: SiteBlock | undefined, number: number | undefined): SiteVerdict {
  if (!site) return 'unknown';
  const valid = number !== undefined && Number.isInteger(number) && number >= 0 && number <= MAX_SYSCALL_NUMBER;
  let tracked = 'rax';
  let stackMoved = false;
  const block = site.disassembly.map(parseInstruction);
  for (let i = block.length - 2; i >= 0; i--) {
    const instruction = block[i]!;
    const { mnemonic, operands } = instruction;
    if (!writes(instruction).includes(tracked)) continue;
    // The tracked register is written here; only simple moves keep its origin known.
    if (mnemonic === 'xor' && REGISTER_OF.get(operands[1] ?? '') === tracked) return valid && number === 0 ? 'confirmed' : 'unknown';
    if (mnemonic !== 'mov' || operands.length !== 2) return 'unknown';
    const source = operands[1]!;
    if (/^(0x[0-9a-f]+|\d+)$/.test(source)) return valid && Number(source) === number ? 'confirmed' : 'unknown';
    const register = REGISTER_OF.get(source);
    if (register) {
      tracked = register;
      continue;
    }
    // A load from the caller's stack frame in the entry block, before rsp moves: a stack argument.
    stackMoved = block.slice(0, i).some((before) => writes(before).includes('rsp') || before.mnemonic === 'push' || before.mnemonic === 'pop');
    return site.entryBlock && !stackMoved && /^(qword|dword) \[rsp \+ (0x[0-9a-f]+|\d+)\]$/.test(source) ? 'argument' : 'unknown';
  }
  if (site.entryBlock || !site.writtenInFunction.has(tracked)) return 'argument';
  // Set before the block (glibc's `_exit` loads its numbers in the entry block): radare2 followed
  // the paths into the block; its number is taken on its word.
  return valid ? 'confirmed' : 'unknown';
}

function inCode(model: CodeModel, address: number): boolean {
  return model.ranges.some((range) => address >= range.start && address < range.start + range.bytes.length);
}
