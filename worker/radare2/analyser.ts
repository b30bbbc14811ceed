/**
 * The radare2 analyser (`--analyser radare2`): radare2 finds functions, references and syscall
 * numbers (`aaa`, then `aflqj`, `afbj`, `axffj`, `pifj`, `/asj`); the shared code turns its
 * call graph into facts (worker/graph/facts.ts). Header facts (exports, DT_NEEDED, PLT/GOT, data
 * pointers) come from dockergate's hardened ELF reader, as for the native analyser, so the two
 * analysers differ only in how they read code.
 *
 * Every root (export, entry point, initialiser, code pointer held in data) is made a radare2
 * function (`af`) before facts are taken, and so is every call target radare2's first pass left
 * outside its functions: a root without a function would have an empty, unsound reach.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DockergateError, InvalidInputError, NotFoundError } from '../../infra/errors.js';
import { DEFAULT_LIMITS, type Limits } from '../../infra/limits.js';
import type { AnalysisContext, Analyser } from '../analyser.js';
import type { ObjectFacts } from '../../store/facts.js';
import { parseElf } from '../elf/index.js';
import { analysedArch, assembleFacts } from '../graph/facts.js';
import { type CodeModel, everyDataPointer, inCode } from '../native/code-model.js';
import { buildCodeModel } from '../native/elf-model.js';
import { buildRadare2Graph, type Radare2Answers, type Radare2Function, type Radare2Ref, type Radare2Block, type SyscallOpcode } from './graph.js';
import { RADARE2_ANALYSER_NAME, RADARE2_ANALYSER_VERSION } from './identity.js';
import { locateRadare2, radare2Version } from './locate.js';
import { Radare2Session } from './session.js';

export { RADARE2_ANALYSER_NAME, RADARE2_ANALYSER_VERSION };

/** Longest command line sent: radare2 silently drops much longer ones. */
const MAX_COMMAND_CHARS = 3_000;
/** A macro of one function's blocks, references and instructions, and the marker lines of its answer. */
const DETAILS_MACRO = 'dockergate_function';
const MARKER_BLOCKS = 'dockergate:blocks';
const MARKER_REFS = 'dockergate:refs';
const MARKER_OPS = 'dockergate:ops';

/** Rounds of "make functions at call targets outside every function" after `aaa`. */
const MAX_DISCOVERY_ROUNDS = 4;
/** radare2's types of indirect calls and jumps (`/atl` lists them all). */
const INDIRECT_BRANCH_TYPES = new Set(['ucall', 'rcall', 'icall', 'ircall', 'uccall', 'ujmp', 'rjmp', 'ijmp', 'irjmp', 'mjmp', 'ucjmp', 'mcjmp', 'rcjmp']);
const SYSCALL_OPCODES: readonly SyscallOpcode[] = ['syscall', 'sysenter', 'int 0x80'];

export class Radare2Analyser implements Analyser {
  readonly name = RADARE2_ANALYSER_NAME;
  readonly version = RADARE2_ANALYSER_VERSION;

  constructor(
    private readonly limits: Limits = DEFAULT_LIMITS,
    private readonly binary: string = locateRadare2(),
  ) {}

  /** Runs `radare2 -v`: a clear `NotFoundError` when the binary is not a working radare2. */
  async check(): Promise<string> {
    const version = await radare2Version(this.binary);
    if (!version.startsWith('radare2 ')) throw new NotFoundError(`${this.binary} is not radare2 (its -v says ${JSON.stringify(version.slice(0, 80))})`);
    return version;
  }

  async analyze(bytes: Uint8Array, sha256: string, context?: AnalysisContext): Promise<ObjectFacts> {
    try {
      return await this.analyzeOnce(bytes, sha256, context);
    } catch (error) {
      // Whatever the object made go wrong is final for it, as in the native analyser's threads.
      if (error instanceof DockergateError) throw error;
      throw new InvalidInputError(`radare2 analysis failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  private async analyzeOnce(bytes: Uint8Array, sha256: string, context?: AnalysisContext): Promise<ObjectFacts> {
    const elf = parseElf(bytes, this.limits);
    analysedArch(elf);
    const model = buildCodeModel(elf);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-r2-'));
    try {
      const file = path.join(dir, 'object');
      await fs.writeFile(file, bytes, { mode: 0o400 });
      const session = await Radare2Session.open(file, {
        binary: this.binary,
        timeoutMs: this.limits.radare2TimeoutMs,
        memoryBytes: this.limits.radare2MemoryBytes,
        label: `sha256:${sha256}`,
        ...(context ? { signal: context.signal, working: () => context.working() } : {}),
      });
      let answers: Radare2Answers;
      try {
        answers = await collectAnswers(session, model, () => context?.working());
      } finally {
        await session.close();
      }
      const graph = buildRadare2Graph(model, answers);
      const codeBytes = model.ranges.reduce((sum, range) => sum + range.bytes.length, 0);
      return assembleFacts(elf, sha256, { name: this.name, version: this.version }, model, graph, codeBytes);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
}

async function collectAnswers(session: Radare2Session, model: CodeModel, working: () => void): Promise<Radare2Answers> {
  await session.command('aaa');
  working();
  const roots = [...model.exports.map((item) => item.address), ...model.initialisers.map((item) => item.address), ...everyDataPointer(model)];
  if (model.entry !== undefined) roots.push(model.entry);

  const details = new Map<number, Radare2Function>();
  // Addresses already given to `af`: radare2 declines some (not code it can decode); ask once.
  const tried = new Set<number>();
  let wanted = roots;
  let knownSet = new Set(numbers(await session.json('aflqj')));
  for (let round = 0; round <= MAX_DISCOVERY_ROUNDS; round++) {
    await defineFunctions(session, wanted, knownSet, tried);
    const known = numbers(await session.json('aflqj'));
    knownSet = new Set(known);
    for (const fn of await functionDetails(session, known.filter((address) => !details.has(address)), working)) details.set(fn.address, fn);
    const instructions = new Set<number>();
    for (const fn of details.values()) for (const address of fn.instructions) instructions.add(address);
    wanted = [];
    for (const fn of details.values()) {
      for (const ref of fn.refs) {
        if (!inCode(model, ref.ref) || isThunkOrSlot(model, ref.ref) || knownSet.has(ref.ref)) continue;
        // Branches into code outside every function, and code addresses taken that radare2 merged
        // into another function (musl's libc_start_main_stage2): make them functions.
        const branch = ref.type === 'CALL' || ref.type === 'CODE';
        if (branch ? !instructions.has(ref.ref) : ref.type === 'ICOD' || ref.type === 'DATA') wanted.push(ref.ref);
      }
    }
    if (wanted.every((address) => tried.has(address))) break;
  }

  const pltImports = new Map<number, string>();
  for (const item of objects(await session.json('iij'))) {
    if (typeof item.plt === 'number' && typeof item.name === 'string') pltImports.set(item.plt, item.name);
  }
  working();
  const syscallNumbers = new Map<number, number>();
  const found = await session.json('/asj');
  const results = isRecord(found) && Array.isArray(found.results) ? found.results : found;
  for (const hit of objects(results)) {
    if (typeof hit.addr === 'number' && typeof hit.sysnum === 'number') syscallNumbers.set(hit.addr, hit.sysnum);
  }
  return { functions: [...details.values()], pltImports, syscallNumbers };
}

/** `af` at every address of `wanted` that is not yet a function. */
async function defineFunctions(session: Radare2Session, wanted: readonly number[], known: ReadonlySet<number>, tried: Set<number>): Promise<void> {
  const missing = [...new Set(wanted)].filter((address) => !known.has(address) && !tried.has(address));
  for (const address of missing) tried.add(address);
  for (const chunk of addressLists(missing)) await session.command(`af @@=${chunk}`);
}

/**
 * Blocks and references of each function, through one radare2 macro run at many addresses per
 * command. Each answer starts with a marker line and the address, since radare2 prints nothing at
 * all for a function without references.
 */
async function functionDetails(session: Radare2Session, addresses: readonly number[], working: () => void): Promise<Radare2Function[]> {
  await session.command(`(${DETAILS_MACRO}; ?e ${MARKER_BLOCKS}; ?v $$; afbj; ?e ${MARKER_REFS}; axffj; ?e ${MARKER_OPS}; pifj)`);
  const out: Radare2Function[] = [];
  for (const chunk of addressLists(addresses)) {
    const lines = (await session.command(`.(${DETAILS_MACRO}) @@=${chunk}`)).split('\n');
    let current: { address: number; instructions: number[]; blocks: Radare2Block[]; refs: Radare2Ref[] } | undefined;
    let section: 'blocks' | 'refs' | 'ops' = 'blocks';
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === MARKER_BLOCKS) {
        current = { address: Number(lines[++i]), instructions: [], blocks: [], refs: [] };
        section = 'blocks';
      } else if (line === MARKER_REFS) {
        section = 'refs';
      } else if (line === MARKER_OPS) {
        section = 'ops';
      } else if (current && (line.startsWith('[') || line.startsWith('{'))) {
        const parsed = parseJsonLine(line);
        if (section === 'blocks') {
          for (const block of objects(parsed)) {
            const instructions = numbers(block.instrs);
            const cases = isRecord(block.switch_op) ? objects(block.switch_op.cases).map((item) => item.jump) : [];
            const successors = [block.jump, block.fail, ...cases].filter((address): address is number => typeof address === 'number');
            current.blocks.push({ instructions, successors });
            current.instructions.push(...instructions);
          }
        } else if (section === 'refs') {
          for (const ref of objects(parsed)) {
            if (typeof ref.type === 'string' && typeof ref.at === 'number' && typeof ref.ref === 'number') current.refs.push({ type: ref.type, at: ref.at, ref: ref.ref });
          }
        } else {
          out.push({ ...current, ...operationsOf(isRecord(parsed) ? parsed.ops : undefined) });
          current = undefined;
        }
      }
    }
    working();
  }
  return out;
}

/**
 * From a function's instructions (`pifj`: address, text, radare2's type): its syscall sites, its
 * indirect calls and jumps, and, when it has syscall sites, its disassembly (for `classifySite`).
 */
function operationsOf(ops: unknown): Pick<Radare2Function, 'syscallSites' | 'indirectBranches' | 'disassembly'> {
  const syscallSites: { address: number; opcode: SyscallOpcode }[] = [];
  const indirectBranches: number[] = [];
  const disassembly = new Map<number, string>();
  for (const op of objects(ops)) {
    if (typeof op.addr !== 'number' || typeof op.disasm !== 'string') continue;
    disassembly.set(op.addr, op.disasm);
    const opcode = SYSCALL_OPCODES.find((name) => name === op.disasm);
    if (opcode) syscallSites.push({ address: op.addr, opcode });
    if (typeof op.type === 'string' && INDIRECT_BRANCH_TYPES.has(op.type)) indirectBranches.push(op.addr);
  }
  return { syscallSites, indirectBranches, ...(syscallSites.length > 0 ? { disassembly } : {}) };
}

/** Space-separated hex addresses, split so that no radare2 command line grows past a few KB. */
function addressLists(addresses: readonly number[]): string[] {
  const lists: string[] = [];
  let current: string[] = [];
  let length = 0;
  for (const address of addresses) {
    const text = hex(address);
    if (length + text.length + 1 > MAX_COMMAND_CHARS && current.length > 0) {
      lists.push(current.join(' '));
      current = [];
      length = 0;
    }
    current.push(text);
    length += text.length + 1;
  }
  if (current.length > 0) lists.push(current.join(' '));
  return lists;
}

function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objects(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

function numbers(value: unknown): number[] {
  return Array.isArray(value) ? value.filter((item): item is number => typeof item === 'number') : [];
}

const hex = (address: number): string => `0x${address.toString(16)}`;


function isThunkOrSlot(model: CodeModel, address: number): boolean {
  return model.gotSlots.has(address) || model.irelativeSlots.has(address) || model.plt.some((plt) => address >= plt.start && address < plt.start + plt.size);
}
