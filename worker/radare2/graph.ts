/**
 * radare2's answers about one object → the shared `ObjectGraph`. Pure: the answers are collected by
 * worker/radare2/analyser.ts; this module only decides what they mean.
 *
 * What radare2 decides: which functions exist and which instructions belong to each (`aflqj`,
 * `afbj`), the references from each function's code (`axffj`: CALL, CODE = jumps, DATA/ICOD =
 * addresses taken), each function's instructions and their types (`pifj`: syscall sites, indirect
 * calls and jumps), the number at each syscall site (`/asj`, by ESIL emulation, checked here
 * against radare2's own control flow: `classifySite`). What the ELF headers decide (the same for every analyser, from
 * worker/native/elf-model.ts): PLT/GOT bindings, IRELATIVE slots, code pointers held in data.
 */
import { emptyGraphFunction, type GraphFunction, type GraphFunctionBuilder, type ObjectGraph } from '../graph/object-graph.js';
import { type CodeModel, everyDataPointer, inCode } from '../native/code-model.js';

/** One reference from a function's code, as `axffj` prints it. */
export interface Radare2Ref {
  /** `CALL`, `CODE` (jump), `ICOD` (code address loaded), `DATA`, `STRN`, ... */
  readonly type: string;
  /** The instruction that makes the reference. */
  readonly at: number;
  /** The referenced address. */
  readonly ref: number;
}

/** A basic block (`afbj`): its instructions in order and the blocks control may go to next. */
export interface Radare2Block {
  readonly instructions: readonly number[];
  /** Start addresses of the blocks it jumps or falls to (`jump`, `fail`, switch cases). */
  readonly successors: readonly number[];
}

export interface Radare2Function {
  readonly address: number;
  /** Addresses of the function's instructions (from its basic blocks). */
  readonly instructions: readonly number[];
  readonly blocks: readonly Radare2Block[];
  readonly refs: readonly Radare2Ref[];
  /** Its `syscall`, `sysenter` and `int 0x80` instructions. */
  readonly syscallSites: readonly { readonly address: number; readonly opcode: SyscallOpcode }[];
  /** Its calls and jumps through a register or memory. */
  readonly indirectBranches: readonly number[];
  /** Instruction address → radare2's text, for functions with syscall sites (see `classifySite`). */
  readonly disassembly?: ReadonlyMap<number, string>;
}

export type SyscallOpcode = 'syscall' | 'sysenter' | 'int 0x80';

export interface Radare2Answers {
  readonly functions: readonly Radare2Function[];
  /** PLT stub address → imported symbol (`iij`). */
  readonly pltImports: ReadonlyMap<number, string>;
  /** Syscall sites whose number radare2's emulation found (`/asj`). */
  readonly syscallNumbers: ReadonlyMap<number, number>;
}

/** Largest syscall number of any table we name (the x86-64 table ends below 512). */
const MAX_SYSCALL_NUMBER = 1023;


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
  const nodes = new Map<number, GraphFunctionBuilder>();
  for (const fn of answers.functions) {
    nodes.set(fn.address, emptyGraphFunction());
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
      } else if (owners.has(target) && (ref.type === 'ICOD' || ref.type === 'DATA')) {
        // A code address inside a radare2 function: the functions holding it may be entered there.
        for (const owner of owners.get(target)!) node.takesFunctions.add(owner);
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
    if (fn.indirectBranches.some((address) => !followed.has(address))) node.indirect = true;
  }

  // Call targets are entries even inside a radare2 function (code it merged into another).
  const callTargets = new Set<number>();
  for (const fn of answers.functions) for (const ref of fn.refs) if (ref.type === 'CALL') callTargets.add(ref.ref);
  const byAddress = new Map(answers.functions.map((fn) => [fn.address, fn]));
  const codeOf = (owner: number): FunctionCode | undefined => {
    const fn = byAddress.get(owner);
    return fn?.disassembly ? { entry: fn.address, entries: callTargets, blocks: fn.blocks, disassembly: fn.disassembly } : undefined;
  };

  const sites = new Set<number>();
  let resolvedSites = 0;
  for (const { address, opcode } of answers.functions.flatMap((fn) => fn.syscallSites)) {
    const siteOwners = owners.get(address);
    if (!siteOwners || sites.has(address)) continue;
    sites.add(address);
    const number = answers.syscallNumbers.get(address);
    // A site shared by several functions (a common tail) is as unsure as its worst path.
    const { verdict, constants } = worstOf(siteOwners.map((owner) => classifySite(codeOf(owner), address, number)));
    if (verdict === 'confirmed') resolvedSites++;
    const table = opcode === 'int 0x80' && model.bitness === 64 ? 'i386' : 'native';
    // Unconfirmed numbers (radare2's and the constants on the paths) are kept, and the site is
    // unresolved as well: the scan then adds the object's syscalls, or Docker's default for an argument.
    const numbers = [number, ...constants].filter((n): n is number => n !== undefined && Number.isInteger(n) && n >= 0 && n <= MAX_SYSCALL_NUMBER);
    for (const owner of siteOwners) {
      const node = nodes.get(owner)!;
      for (const n of verdict === 'argument' ? constants : numbers) node.syscalls.set(`${table}:${n}`, { table, number: n });
      if (verdict === 'argument') node.unresolved.push({ address, kind: 'syscall-argument', detail: `the number of this ${opcode} is an argument of its function` });
      else if (verdict === 'unknown') {
        const detail = number !== undefined ? `radare2 says ${number}, which its control flow and disassembly do not confirm` : `radare2 found no number for this ${opcode}`;
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

  // Roots radare2 made no function at (`af` declined): their code is unknown, and says so.
  for (const root of [...model.exports.map((item) => item.address), ...model.initialisers.map((item) => item.address), ...(model.entry !== undefined ? [model.entry] : [])]) {
    if (nodes.has(root)) continue;
    const unknown = emptyGraphFunction();
    for (const owner of owners.get(root) ?? []) unknown.callees.add(owner);
    unknown.unresolved.push({ address: root, kind: 'undecodable', detail: 'radare2 made no function here' });
    unknown.indirect = true;
    nodes.set(root, unknown);
  }
  const dataTaken = new Set(everyDataPointer(model).flatMap((address) => (nodes.has(address) ? [address] : (owners.get(address) ?? []))));
  const addressTaken = new Set(dataTaken);
  for (const node of nodes.values()) for (const address of node.takesFunctions) addressTaken.add(address);
  const functions = new Map<number, GraphFunction>(nodes);
  return {
    functions,
    addressTaken,
    namesTaken: [...new Set(model.identifierStrings.values())].sort(),
    dataRegions: [{ address: 0, taken: [...dataTaken].sort((a, b) => a - b), imports: [...model.dataImports], holds: [], symbols: [], names: [], always: true }],
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
  /** A `rep`-family prefix: the string instruction writes rcx, rsi and rdi. */
  readonly repeated: boolean;
}

const PREFIXES = new Set(['lock', 'rep', 'repe', 'repz', 'repne', 'repnz', 'notrack', 'bnd', 'xacquire', 'xrelease']);

function parseInstruction(text: string): Instruction {
  const words = text.trim().toLowerCase().split(/\s+/);
  let repeated = false;
  while (words.length > 1 && PREFIXES.has(words[0]!)) repeated = words.shift()!.startsWith('rep') || repeated;
  const mnemonic = words.shift() ?? '';
  const rest = words.join(' ');
  return { mnemonic, operands: rest === '' ? [] : rest.split(',').map((operand) => operand.trim()), repeated };
}

/** A write to the whole register (or its low 32 bits, which zeroes the rest): not al, ax, r8b, ... */
function isFullWidth(name: string): boolean {
  return /^(r[a-z]{2}|e[a-z]{2}|r\d+d?)$/.test(name);
}

/** The 64-bit registers an instruction writes (as far as a syscall number's origin matters). */
function writes({ mnemonic, operands, repeated }: Instruction): string[] {
  if (mnemonic === 'call' || mnemonic === 'syscall' || mnemonic === 'sysenter' || mnemonic === 'int') return CALL_CLOBBERED;
  const out: string[] = [];
  if (IMPLICIT_WRITERS.has(mnemonic)) out.push(...IMPLICITLY_WRITTEN);
  if (repeated) out.push('rcx', 'rsi', 'rdi');
  if (SWAPS.has(mnemonic)) for (const operand of operands) out.push(REGISTER_OF.get(operand) ?? '');
  const first = REGISTER_OF.get(operands[0] ?? '');
  if (first && !READ_ONLY.has(mnemonic)) out.push(first);
  return out.filter(Boolean);
}

/** A function as `classifySite` needs it: its entry, blocks and radare2's disassembly (`pifj`). */
export interface FunctionCode {
  readonly entry: number;
  /** Other addresses code is called at (a block starting at one is entered from callers too). */
  readonly entries: ReadonlySet<number>;
  readonly blocks: readonly Radare2Block[];
  /** Instruction address → radare2's disassembly text. */
  readonly disassembly: ReadonlyMap<number, string>;
}

/**
 * - `confirmed`: every path into the site moves one constant into eax, and it is radare2's number.
 * - `argument`: on some path eax holds what the function's caller passed (a wrapper: `syscall(2)`,
 *   musl's `__syscall_cp_asm`, Go's `Syscall6`), or a value loaded from the stack. radare2
 *   resolves no call sites: any syscall may be made there.
 * - `unknown`: some path sets eax otherwise (memory, arithmetic, a call's result), or the paths
 *   disagree with radare2.
 */
export type SiteVerdict = 'confirmed' | 'argument' | 'unknown';

export interface SiteClassification {
  readonly verdict: SiteVerdict;
  /** The constants found on the paths into the site (all of them, whatever the verdict). */
  readonly constants: readonly number[];
}

const VERDICT_ORDER: readonly SiteVerdict[] = ['confirmed', 'unknown', 'argument'];

/** The least sure of several classifications of one site, with every constant any of them saw. */
function worstOf(all: readonly SiteClassification[]): SiteClassification {
  const verdict = all.reduce<SiteVerdict>((worst, one) => (VERDICT_ORDER.indexOf(one.verdict) > VERDICT_ORDER.indexOf(worst) ? one.verdict : worst), 'confirmed');
  const constants = [...new Set(all.flatMap((one) => one.constants))].sort((a, b) => a - b);
  return { verdict: all.length === 0 ? 'unknown' : verdict, constants };
}

/** Instructions walked back from one site at most: beyond, the origin is `unknown`. */
const MAX_WALK = 20_000;

/**
 * Checks radare2's number at a syscall site against radare2's own control-flow graph and
 * disassembly of the site's function, walking back from the site through register copies
 * (`mov eax, r8d`) and predecessor blocks to where eax gets its value. radare2's emulation (`/as`)
 * reports numbers even where eax holds a parameter or a value loaded from memory (musl's
 * `__syscall_cp_asm`, Go's `Syscall6`: measured on the ground-truth fixtures), and a wrong number
 * would make a profile that breaks the program.
 */
export function classifySite(code: FunctionCode | undefined, site: number, number: number | undefined): SiteClassification {
  const unknown: SiteClassification = { verdict: 'unknown', constants: [] };
  if (!code) return unknown;
  const blockAt = new Map<number, number>();
  code.blocks.forEach((block, index) => {
    if (block.instructions[0] !== undefined) blockAt.set(block.instructions[0], index);
  });
  const predecessors = new Map<number, number[]>();
  code.blocks.forEach((block, index) => {
    for (const successor of block.successors) {
      const target = blockAt.get(successor);
      if (target !== undefined) predecessors.set(target, [...(predecessors.get(target) ?? []), index]);
    }
  });
  const home = code.blocks.findIndex((block) => block.instructions.includes(site));
  if (home < 0) return unknown;

  const constants = new Set<number>();
  let argument = false;
  let other = false;
  let steps = 0;
  const seen = new Set<string>();
  const work: { block: number; end: number; tracked: string }[] = [{ block: home, end: code.blocks[home]!.instructions.indexOf(site), tracked: 'rax' }];
  while (work.length > 0 && !other) {
    const { block: index, end, tracked: start } = work.pop()!;
    const block = code.blocks[index]!;
    let tracked = start;
    let settled = false;
    for (let i = end - 1; i >= 0 && !settled; i--) {
      if (++steps > MAX_WALK) return { verdict: 'unknown', constants: [...constants].sort((a, b) => a - b) };
      const text = code.disassembly.get(block.instructions[i]!);
      if (text === undefined) {
        other = true;
        break;
      }
      const instruction = parseInstruction(text);
      // Callers may enter at this instruction (a call target inside the block): then the value is
      // what they passed, unless this instruction sets it. The path falling into it is walked on.
      const enteredHere = i > 0 && code.entries.has(block.instructions[i]!);
      if (!writes(instruction).includes(tracked)) {
        if (enteredHere) argument = true;
        continue;
      }
      settled = true;
      const { mnemonic, operands } = instruction;
      const source = operands[1] ?? '';
      if (!isFullWidth(operands[0] ?? '')) {
        other = true; // a partial write (al, ax) or an implicit one (xadd, a call's result)
        break;
      }
      if (mnemonic === 'xor' && REGISTER_OF.get(source) === tracked) constants.add(0);
      else if (mnemonic === 'mov' && operands.length === 2 && /^(0x[0-9a-f]+|\d+)$/.test(source)) constants.add(Number(source));
      else if (mnemonic === 'mov' && operands.length === 2 && REGISTER_OF.has(source)) {
        tracked = REGISTER_OF.get(source)!;
        settled = false;
        if (enteredHere) argument = true;
      } else if (mnemonic === 'mov' && isStackLoad(source)) {
        // Arguments passed on the stack (Go's ABI0, i386) and locals look alike once the stack
        // moved: any number loaded from the stack is taken for an argument (the safe side).
        argument = true;
      }
      else other = true;
    }
    if (settled || other) continue;
    // Reached the block's start with the value still coming from before it.
    if (isEntry(code, block)) {
      argument = true;
      continue;
    }
    const before = predecessors.get(index) ?? [];
    if (before.length === 0) other = true;
    for (const predecessor of before) {
      const key = `${predecessor}:${tracked}`;
      if (seen.has(key)) continue;
      seen.add(key);
      work.push({ block: predecessor, end: code.blocks[predecessor]!.instructions.length, tracked });
    }
  }
  const found = [...constants].sort((a, b) => a - b);
  if (argument) return { verdict: 'argument', constants: found };
  if (other) return { verdict: 'unknown', constants: found };
  const agrees = found.length === 1 && found[0] === number && Number.isInteger(number) && number! >= 0 && number! <= MAX_SYSCALL_NUMBER;
  return { verdict: agrees ? 'confirmed' : 'unknown', constants: found };
}

/** A block where callers enter: the function's entry, or a call target radare2 merged into it. */
function isEntry(code: FunctionCode, block: Radare2Block): boolean {
  const start = block.instructions[0];
  return start !== undefined && (start === code.entry || code.entries.has(start));
}

/** `qword [rsp + N]`, `dword [ebp + N]`, ...: a load from the stack (arguments or locals). */
function isStackLoad(operand: string): boolean {
  return /^(qword|dword) \[(rsp|esp|rbp|ebp) \+ (0x[0-9a-f]+|\d+)\]$/.test(operand);
}
