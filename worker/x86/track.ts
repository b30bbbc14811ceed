/**
 * Backward value tracking: which constants can a register (or a stack slot) hold just before an
 * instruction? Used for syscall numbers (`eax` before `syscall`) and for wrapper arguments at call
 * sites. The search walks backwards through the instruction table and splits at every known jump
 * target into its predecessors, so a site reached on several paths gets every constant of every
 * path. Anything it cannot follow (a load from memory, arithmetic, an unknown predecessor) makes
 * the answer `unknown`, never a guess.
 */
import {
  Decoder,
  DecoderOptions,
  Instruction,
  InstructionInfoFactory,
  Mnemonic,
  OpAccess,
  OpKind,
  Register,
  RegisterExt,
} from './iced.js';
import { type InstructionTable, lowerBound, Op, reachedByFallthrough } from './sweep.js';

/**
 * A register (iced full register id), a stack slot at an offset from the current stack pointer, or
 * a frame slot at an offset from the frame pointer (`rbp`/`ebp` after `mov rbp, rsp`).
 */
export type Location = { readonly register: Register } | { readonly stack: number } | { readonly frame: number };

/** Values a location may hold: constants, parameters of the enclosing function, or unknown. */
export interface Resolution {
  /** Why the answer is unknown (first reason, for diagnostics). */
  why?: string;
  readonly values: Set<number>;
  /** `reg:<iced register id>` or `stack:<offset at entry>` (offset 8 is the first stack argument). */
  readonly params: Set<string>;
  unknown: boolean;
  /** Some path loads the value from memory the tracker does not follow (a structure, a table). */
  fromMemory: boolean;
}

/** Registers a call may change: SysV x86-64 caller-saved ones; Go's ABIInternal keeps only these four. */
const SYSV_PRESERVED = new Set<number>([Register.RBX, Register.RBP, Register.RSP, Register.R12, Register.R13, Register.R14, Register.R15]);
const GO_PRESERVED = new Set<number>([Register.RSP, Register.RBP, Register.R14, Register.R15]);
const I386_PRESERVED = new Set<number>([Register.EBX, Register.EBP, Register.ESP, Register.ESI, Register.EDI]);

const WRITES = new Set<number>([OpAccess.Write, OpAccess.CondWrite, OpAccess.ReadWrite, OpAccess.ReadCondWrite]);
const MAX_STEPS = 4_096;
const MAX_DEPTH = 32;

export interface FunctionSpan {
  /** Index of the first instruction of the function in the table. */
  readonly first: number;
  /** One past the last instruction index. */
  readonly end: number;
}

export interface JumpIndex {
  /** Jump target address → indices of the direct jumps (jmp/jcc) that go there. */
  readonly sources: ReadonlyMap<number, readonly number[]>;
  /** Indices (sorted) of indirect jumps recognised as switch tables. */
  readonly tables: readonly number[];
}

export function paramKey(location: Location): string {
  if ('register' in location) return `reg:${location.register}`;
  return 'stack' in location ? `stack:${location.stack}` : `frame:${location.frame}`;
}

/**
 * Where a callee's parameter is at a call site: registers stay; a stack slot at offset S of the
 * callee's entry is at S - 8 before a `call` (which pushes the return address), at S before a tail `jmp`.
 */
export function locationOfParam(param: string, tailCall = false): Location {
  const [kind, value] = param.split(':');
  return kind === 'reg' ? { register: Number(value) as Register } : { stack: Number(value) - (tailCall ? 0 : 8) };
}

/** Decodes single instructions again on demand (the sweep kept only a summary of each). */
export class Redecoder {
  private readonly instruction = new Instruction();
  private readonly infoFactory = new InstructionInfoFactory();

  constructor(private readonly table: InstructionTable) {}

  decode(index: number): Instruction {
    const address = this.table.ip[index]!;
    const range = this.table.ranges.find((r) => address >= r.start && address < r.start + r.bytes.length)!;
    const offset = address - range.start;
    const decoder = new Decoder(this.table.bitness, range.bytes.subarray(offset, offset + this.table.length[index]!), DecoderOptions.None);
    try {
      decoder.ip = BigInt(address);
      decoder.decodeOut(this.instruction);
    } finally {
      decoder.free();
    }
    return this.instruction;
  }

  /** Full registers the instruction may write (explicitly or implicitly). */
  writtenRegisters(instruction: Instruction): Set<number> {
    const info = this.infoFactory.info(instruction);
    const written = new Set<number>();
    try {
      for (const used of info.usedRegisters() as { register: Register; access: OpAccess; free(): void }[]) {
        if (WRITES.has(used.access)) written.add(RegisterExt.fullRegister(used.register));
        used.free();
      }
    } finally {
      info.free();
    }
    return written;
  }

  free(): void {
    this.instruction.free();
    this.infoFactory.free();
  }
}

/**
 * The value a load of `size` bytes at `address` reads when that memory never changes at run time
 * (worker/native/call-graph.ts `unwrittenVariables`); undefined when it may.
 */
export type ConstantMemory = (address: number, size: number) => number | undefined;

export class ValueTracker {
  private steps = 0;
  private readonly visiting = new Set<string>();

  constructor(
    private readonly table: InstructionTable,
    private readonly jumps: JumpIndex,
    private readonly redecoder: Redecoder,
    private readonly goAbi: boolean,
    private readonly constants?: ConstantMemory,
  ) {}

  /** Values `location` may hold just before instruction `index`, inside `span`. */
  resolve(location: Location, index: number, span: FunctionSpan): Resolution {
    this.steps = 0;
    this.visiting.clear();
    const result: Resolution = { values: new Set(), params: new Set(), unknown: false, fromMemory: false };
    this.walk(location, index, span, result, 0);
    return result;
  }

  private walk(start: Location, index: number, span: FunctionSpan, out: Resolution, depth: number): void {
    let location = start;
    let position = index;
    for (;;) {
      if (++this.steps > MAX_STEPS || depth > MAX_DEPTH) {
        this.giveUp(out, 'search budget exhausted', position);
        return;
      }
      const key = `${paramKey(location)}@${position}`;
      // A path that comes back to where it started adds nothing new (least fixpoint of the union).
      if (this.visiting.has(key)) return;
      this.visiting.add(key);
      if (position <= span.first) {
        // At the entry, registers and stack slots are the caller's arguments; the frame pointer
        // still holds the caller's frame, which nothing here bounds.
        if ('frame' in location) this.giveUp(out, 'a slot of the caller\'s frame', position);
        else out.params.add(paramKey(location));
        return;
      }
      const sources = this.jumps.sources.get(this.table.ip[position]!);
      const fallthrough = reachedByFallthrough(this.table, position, span.first);
      if (sources) {
        for (const source of sources) {
          if (source < span.first || source >= span.end) continue;
          const known = 'register' in location ? this.equalOnBranch(location.register, source) : undefined;
          if (known !== undefined) out.values.add(known);
          else this.walk(location, source, span, out, depth + 1);
        }
        if (!fallthrough) return;
      } else if (!fallthrough) {
        // Reached only by a jump we do not know: a case of one of the function's switch tables,
        // entered with the registers the table's indirect jump had. Without a table, unknown.
        const tables = this.tablesIn(span);
        if (tables.length === 0) {
          this.giveUp(out, 'unknown predecessor', position);
          return;
        }
        for (const table of tables) this.walk(location, table, span, out, depth + 1);
        return;
      }
      position--;
      const next = this.step(location, position, out);
      if (next === undefined) return;
      location = next;
    }
  }

  /**
   * The value `register` must hold when the conditional jump at `index` is taken: `je`/`jz` right
   * after `test reg, reg` (0) or `cmp reg, imm` (imm). musl's `__stdio_read` computes the number of
   * `readv` or `read` with arithmetic and branches to a `syscall` whose eax was just tested for 0.
   */
  private equalOnBranch(register: Register, index: number): number | undefined {
    if (index === 0) return undefined;
    const jump = this.redecoder.decode(index);
    if (jump.mnemonic !== Mnemonic.Je) return undefined;
    const test = this.redecoder.decode(index - 1);
    if (test.opCount !== 2 || test.op0Kind !== OpKind.Register || RegisterExt.fullRegister(test.op0Register) !== register) return undefined;
    // A 32-bit test is enough: the kernel takes the number from the low 32 bits of rax
    // (arch/x86/entry/common.c, `do_syscall_x64`: `unsigned int unr = nr`). Narrower ones are not.
    if (RegisterExt.size(test.op0Register) < 4) return undefined;
    if (test.mnemonic === Mnemonic.Test && test.op1Kind === OpKind.Register && test.op1Register === test.op0Register) return 0;
    if (test.mnemonic === Mnemonic.Cmp && IMMEDIATES.has(test.op1Kind)) return immediateOf(test, test.op1Kind);
    return undefined;
  }

  private tablesIn(span: FunctionSpan): number[] {
    const tables = this.jumps.tables;
    const found: number[] = [];
    for (let i = lowerBound(tables, span.first); i < tables.length && tables[i]! < span.end; i++) found.push(tables[i]!);
    return found;
  }

  /** The location before instruction `index`, given the location after it; undefined when resolved. */
  private step(location: Location, index: number, out: Resolution): Location | undefined {
    const op = this.table.op[index]!;
    if ('register' in location) {
      if (op === Op.CallDirect || op === Op.CallIndirect) {
        if (this.preservedAcrossCalls(location.register)) return location;
        this.giveUp(out, 'clobbered by a call', index);
        return undefined;
      }
      const instruction = this.redecoder.decode(index);
      if (!this.redecoder.writtenRegisters(instruction).has(location.register)) return location;
      return this.defineRegister(instruction, location.register, out);
    }
    const instruction = this.redecoder.decode(index);
    if ('frame' in location) return this.stepFrame(instruction, location.frame, out);
    return this.stepStack(instruction, location.stack, out);
  }

  private preservedAcrossCalls(register: Register): boolean {
    if (this.table.bitness === 32) return I386_PRESERVED.has(register);
    return (this.goAbi ? GO_PRESERVED : SYSV_PRESERVED).has(register);
  }

  /** `instruction` writes `register`: what does it write? */
  private defineRegister(instruction: Instruction, register: Register, out: Resolution): Location | undefined {
    const mnemonic = instruction.mnemonic;
    const explicit = instruction.op0Kind === OpKind.Register && RegisterExt.fullRegister(instruction.op0Register) === register;
    if (explicit && instruction.opCount === 2) {
      const sourceKind = instruction.op1Kind;
      if (mnemonic === Mnemonic.Mov) {
        if (sourceKind === OpKind.Immediate32 || sourceKind === OpKind.Immediate32to64 || sourceKind === OpKind.Immediate64 || sourceKind === OpKind.Immediate8) {
          out.values.add(immediateOf(instruction, sourceKind));
          return undefined;
        }
        if (sourceKind === OpKind.Register) return { register: RegisterExt.fullRegister(instruction.op1Register) };
      }
      // Sign and zero extensions keep every syscall number (0 ≤ n < 2^15) as it is.
      if (mnemonic === Mnemonic.Mov || EXTENDS.has(mnemonic)) {
        if (sourceKind === OpKind.Register && mnemonic !== Mnemonic.Mov) return { register: RegisterExt.fullRegister(instruction.op1Register) };
        const slot = sourceKind === OpKind.Memory ? memorySlot(instruction, this.table.bitness) : undefined;
        if (slot) return slot;
      }
      if ((mnemonic === Mnemonic.Xor || mnemonic === Mnemonic.Sub) && sourceKind === OpKind.Register && RegisterExt.fullRegister(instruction.op1Register) === register) {
        out.values.add(0);
        return undefined;
      }
    }
    if (mnemonic === Mnemonic.Pop && explicit) return { stack: 0 };
    if (explicit && (mnemonic === Mnemonic.Mov || EXTENDS.has(mnemonic)) && instruction.op1Kind === OpKind.Memory) {
      // `mov r64/r32, [rip + d]` of a variable nothing writes: its value in the file.
      if (mnemonic === Mnemonic.Mov && instruction.memoryBase === Register.RIP && this.constants) {
        const value = this.constants(Number(instruction.memoryDisplacementU64), RegisterExt.size(instruction.op0Register));
        if (value !== undefined) {
          out.values.add(value);
          return undefined;
        }
      }
      out.fromMemory = true;
      this.giveUp(out, 'loaded from memory', -1);
      return undefined;
    }
    this.giveUp(out, `defined by ${Mnemonic[mnemonic]}`, -1);
    return undefined;
  }

  /** Stack slot `offset` (from the stack pointer after `instruction`): follow it backwards. */
  private stepStack(instruction: Instruction, offset: number, out: Resolution): Location | undefined {
    const mnemonic = instruction.mnemonic;
    const stackPointer = this.table.bitness === 64 ? Register.RSP : Register.ESP;
    const width = this.table.bitness / 8;
    if (mnemonic === Mnemonic.Push) {
      if (offset === 0) {
        const kind = instruction.op0Kind;
        if (kind === OpKind.Register) return { register: RegisterExt.fullRegister(instruction.op0Register) };
        if (kind === OpKind.Immediate8to64 || kind === OpKind.Immediate32to64 || kind === OpKind.Immediate8to32 || kind === OpKind.Immediate32) {
          out.values.add(immediateOf(instruction, kind));
          return undefined;
        }
        // `push [rsp + d]` copies a slot of the frame (the address is computed before rsp moves):
        // glibc 2.41's `__syscall_cancel` forwards its 7th argument, the syscall number, that way.
        const slot = kind === OpKind.Memory ? memorySlot(instruction, this.table.bitness) : undefined;
        if (slot) return slot;
        this.giveUp(out, `pushed from ${OpKind[kind]}`, -1);
        return undefined;
      }
      return { stack: offset - width };
    }
    if (mnemonic === Mnemonic.Pop) return { stack: offset + width };
    if (instruction.op0Kind === OpKind.Register && RegisterExt.fullRegister(instruction.op0Register) === stackPointer) {
      const kind = instruction.op1Kind;
      const adjusts = kind === OpKind.Immediate8to64 || kind === OpKind.Immediate32to64 || kind === OpKind.Immediate8to32 || kind === OpKind.Immediate32;
      if (mnemonic === Mnemonic.Sub && adjusts) return this.checkedSlot(offset - immediateOf(instruction, kind), out);
      if (mnemonic === Mnemonic.Add && adjusts) return this.checkedSlot(offset + immediateOf(instruction, kind), out);
      out.unknown = true;
      return undefined;
    }
    if (this.redecoder.writtenRegisters(instruction).has(stackPointer) && instruction.flowControl === 0 && mnemonic !== Mnemonic.Call) {
      // leave, mov rsp, rbp, and rsp, -16 ...: the frame moved in a way we do not follow.
      out.unknown = true;
      return undefined;
    }
    if (mnemonic === Mnemonic.Mov && instruction.op0Kind === OpKind.Memory && isStackSlot(instruction) && Number(instruction.memoryDisplacement) === offset) {
      const kind = instruction.op1Kind;
      if (kind === OpKind.Register) return { register: RegisterExt.fullRegister(instruction.op1Register) };
      if (kind === OpKind.Immediate32 || kind === OpKind.Immediate32to64 || kind === OpKind.Immediate8) {
        out.values.add(immediateOf(instruction, kind));
        return undefined;
      }
      out.unknown = true;
      return undefined;
    }
    return { stack: offset };
  }

  /**
   * Frame slot `offset` (from the frame pointer after `instruction`): follow it backwards until the
   * frame pointer was set from the stack pointer (`mov rbp, rsp`), where it becomes a stack slot.
   */
  private stepFrame(instruction: Instruction, offset: number, out: Resolution): Location | undefined {
    const framePointer = this.table.bitness === 64 ? Register.RBP : Register.EBP;
    const stackPointer = this.table.bitness === 64 ? Register.RSP : Register.ESP;
    if (this.redecoder.writtenRegisters(instruction).has(framePointer)) {
      const setFromStack =
        instruction.mnemonic === Mnemonic.Mov &&
        instruction.op0Kind === OpKind.Register &&
        instruction.op1Kind === OpKind.Register &&
        RegisterExt.fullRegister(instruction.op0Register) === framePointer &&
        RegisterExt.fullRegister(instruction.op1Register) === stackPointer;
      if (setFromStack) return { stack: offset };
      this.giveUp(out, `frame pointer set by ${Mnemonic[instruction.mnemonic]}`, -1);
      return undefined;
    }
    if (
      instruction.mnemonic === Mnemonic.Mov &&
      instruction.op0Kind === OpKind.Memory &&
      instruction.memoryBase === framePointer &&
      instruction.memoryIndex === Register.None &&
      signedDisplacement(instruction, this.table.bitness) === offset
    ) {
      const kind = instruction.op1Kind;
      if (kind === OpKind.Register) return { register: RegisterExt.fullRegister(instruction.op1Register) };
      if (kind === OpKind.Immediate32 || kind === OpKind.Immediate32to64 || kind === OpKind.Immediate8) {
        out.values.add(immediateOf(instruction, kind));
        return undefined;
      }
      this.giveUp(out, 'frame slot written from an unknown source', -1);
      return undefined;
    }
    return { frame: offset };
  }

  private giveUp(out: Resolution, why: string, index: number): void {
    out.unknown = true;
    out.why ??= index >= 0 ? `${why} at 0x${this.table.ip[index]!.toString(16)}` : why;
  }

  private checkedSlot(offset: number, out: Resolution): Location | undefined {
    if (offset < 0) {
      out.unknown = true;
      return undefined;
    }
    return { stack: offset };
  }
}

const EXTENDS = new Set<number>([Mnemonic.Movsx, Mnemonic.Movsxd, Mnemonic.Movzx]);
const IMMEDIATES = new Set<number>([OpKind.Immediate8, OpKind.Immediate8to32, OpKind.Immediate8to64, OpKind.Immediate32, OpKind.Immediate32to64, OpKind.Immediate64]);

function isStackSlot(instruction: Instruction): boolean {
  return (instruction.memoryBase === Register.RSP || instruction.memoryBase === Register.ESP) && instruction.memoryIndex === Register.None;
}

function signedDisplacement(instruction: Instruction, bitness: 32 | 64): number {
  return Number(BigInt.asIntN(bitness, instruction.memoryDisplacement));
}

/** `[rsp + d]` as a stack slot, `[rbp + d]` as a frame slot; other memory operands are not followed. */
function memorySlot(instruction: Instruction, bitness: 32 | 64): Location | undefined {
  if (instruction.memoryIndex !== Register.None || instruction.memorySegment === Register.FS || instruction.memorySegment === Register.GS) return undefined;
  const displacement = signedDisplacement(instruction, bitness);
  if (instruction.memoryBase === (bitness === 64 ? Register.RSP : Register.ESP)) return { stack: displacement };
  if (instruction.memoryBase === (bitness === 64 ? Register.RBP : Register.EBP)) return { frame: displacement };
  return undefined;
}

function immediateOf(instruction: Instruction, kind: OpKind): number {
  switch (kind) {
    case OpKind.Immediate64:
      return Number(BigInt.asIntN(64, instruction.immediate64));
    case OpKind.Immediate32to64:
      return Number(instruction.immediate32to64);
    case OpKind.Immediate8to64:
      return Number(instruction.immediate8to64);
    case OpKind.Immediate8to32:
      return instruction.immediate8to32 | 0;
    case OpKind.Immediate8:
      return instruction.immediate8;
    default:
      return instruction.immediate32 | 0;
  }
}
