/**
 * Linear sweep of x86 code into a compact instruction table, with iced-x86 (the WebAssembly build).
 * The sweep restarts at every known function start, so that data or padding between functions
 * cannot desynchronise the decoding of the next function. Only what the analysis needs is kept
 * per instruction; the backward register tracker re-decodes single instructions on demand.
 */
import { Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register } from './iced.js';
import { LimitExceededError } from '../../infra/errors.js';

/** What an instruction means to the analysis. */
export const enum Op {
  Other = 0,
  Syscall = 1,
  /** `int 0x80`: the i386 syscall gate, also usable from 64-bit code. */
  Int80 = 2,
  CallDirect = 3,
  CallIndirect = 4,
  JmpDirect = 5,
  JmpIndirect = 6,
  Jcc = 7,
  Return = 8,
  /** Never falls through: ud2, hlt, int3 and other exceptions. */
  Stop = 9,
  /** `lea reg, [rip + disp]`: `target` holds the address. */
  LeaRip = 10,
  /** An instruction with a 32/64-bit immediate that could be a code address (`mov reg, imm`, `push imm`). */
  Immediate = 11,
  Sysenter = 12,
  Invalid = 13,
  /** `nop` in all its forms, and `int3`: alignment padding between blocks. */
  Padding = 14,
  /** `mov reg, [rip + disp]`: `target` holds the slot address (a GOT entry loads a function pointer). */
  LoadRip = 15,
  /** `cmp` with a memory operand at a known address (`cmp rax, [rip + slot]`): `target` holds it. */
  CompareMemory = 16,
  /** Any other instruction that falls through and names memory at a known address: `target` holds it. */
  KnownMemory = 17,
}

export interface CodeRange {
  readonly start: number;
  readonly bytes: Uint8Array;
}

/** Structure of arrays: instruction i is at `ip[i]`, `length[i]` bytes long, of kind `op[i]`. */
export interface InstructionTable {
  readonly count: number;
  readonly ip: Float64Array;
  readonly length: Uint8Array;
  readonly op: Uint8Array;
  /**
   * Direct branch target; RIP-relative address (LeaRip, and indirect call/jmp through
   * `[rip + disp]`: the memory slot); immediate value (Immediate); NaN when none.
   */
  readonly target: Float64Array;
  readonly bitness: 32 | 64;
  readonly ranges: readonly CodeRange[];
  /** Indices of calls to functions that never return: the next instruction is not reached by them. */
  readonly noReturnCalls: Set<number>;
}

function grow<T extends Float64Array | Uint8Array>(array: T, size: number): T {
  const bigger = new (array.constructor as { new (n: number): T })(size);
  bigger.set(array);
  return bigger;
}

/**
 * Decodes every range in one linear sweep. `starts` (sorted, unique) are known function starts: an
 * instruction that would run over one is cut there and decoding restarts at the start — unless the
 * start is weak (an unwind-table start, not a symbol) and the instruction running over it is padding:
 * glibc's signal trampolines have FDEs that begin one byte early, inside the `nop` before them.
 */
export function sweep(
  ranges: readonly CodeRange[],
  starts: readonly number[],
  bitness: 32 | 64,
  maxInstructions: number,
  weakStarts: ReadonlySet<number> = new Set(),
): InstructionTable {
  let capacity = 1024;
  let count = 0;
  let ip = new Float64Array(capacity);
  let length = new Uint8Array(capacity);
  let op = new Uint8Array(capacity);
  let target = new Float64Array(capacity);
  const push = (address: number, size: number, kind: Op, value: number): void => {
    if (count === capacity) {
      if (capacity >= maxInstructions) throw new LimitExceededError('maxInstructions', maxInstructions, 'decoded instructions');
      capacity = Math.min(capacity * 2, maxInstructions);
      ip = grow(ip, capacity);
      length = grow(length, capacity);
      op = grow(op, capacity);
      target = grow(target, capacity);
    }
    ip[count] = address;
    length[count] = size;
    op[count] = kind;
    target[count] = value;
    count++;
  };
  const instruction = new Instruction();
  try {
    for (const range of ranges) {
      const decoder = new Decoder(bitness, range.bytes, DecoderOptions.None);
      try {
        decoder.ip = BigInt(range.start);
        let next = lowerBound(starts, range.start + 1);
        // The decoder's position, kept here (it advances by each valid instruction's length): two
        // calls into WebAssembly fewer per instruction.
        let position = 0;
        while (position < range.bytes.length) {
          const address = range.start + position;
          decoder.decodeOut(instruction);
          const size = instruction.length;
          while (next < starts.length && starts[next]! <= address) next++;
          const start = starts[next];
          const kind = classify(instruction, bitness);
          if (start !== undefined && start < address + size && !(weakStarts.has(start) && kind === Op.Padding)) {
            // Runs over a function start: the bytes before it are not an instruction of ours.
            push(address, start - address, Op.Invalid, Number.NaN);
            position = start - range.start;
            decoder.position = position;
            decoder.ip = BigInt(start);
            continue;
          }
          push(address, size, kind, classifiedTarget);
          // An undecodable instruction's length is what the decoder skipped: read it back.
          position = kind === Op.Invalid ? decoder.position : position + size;
        }
      } finally {
        decoder.free();
      }
    }
  } finally {
    instruction.free();
  }
  return {
    count,
    ip: ip.subarray(0, count),
    length: length.subarray(0, count),
    op: op.subarray(0, count),
    target: target.subarray(0, count),
    bitness,
    ranges,
    noReturnCalls: new Set(),
  };
}

/** Smallest index i with sorted[i] >= value. */
export function lowerBound(sorted: ArrayLike<number>, value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

function ripTarget(instruction: Instruction, operand: number): number {
  return instruction.opKind(operand) === OpKind.Memory && instruction.memoryBase === Register.RIP
    ? Number(instruction.memoryDisplacementU64)
    : Number.NaN;
}

/** Absolute memory operand of 32-bit code (`call [disp32]`), or of 64-bit code without base/index. */
function absoluteTarget(instruction: Instruction, operand: number): number {
  if (instruction.opKind(operand) !== OpKind.Memory) return Number.NaN;
  if (instruction.memoryBase === Register.RIP) return Number(instruction.memoryDisplacementU64);
  if (instruction.memoryBase === Register.None && instruction.memoryIndex === Register.None) return Number(instruction.memoryDisplacementU64);
  return Number.NaN;
}

/**
 * The target of the instruction `classify` saw last (see `InstructionTable.target`): returned
 * beside the kind without allocating a pair per instruction.
 */
let classifiedTarget = Number.NaN;

function classified(kind: Op, target: number): Op {
  classifiedTarget = target;
  return kind;
}

function classify(instruction: Instruction, bitness: 32 | 64): Op {
  switch (instruction.flowControl) {
    case FlowControl.Next: {
      const mnemonic = instruction.mnemonic;
      if (mnemonic === Mnemonic.Hlt) return classified(Op.Stop, Number.NaN);
      if (mnemonic === Mnemonic.Nop) return classified(Op.Padding, Number.NaN);
      if (mnemonic === Mnemonic.Lea) {
        const value = ripTarget(instruction, 1);
        return classified(Number.isNaN(value) ? Op.Other : Op.LeaRip, value);
      }
      if (mnemonic === Mnemonic.Mov && instruction.op0Kind === OpKind.Register) {
        const slot = ripTarget(instruction, 1);
        if (!Number.isNaN(slot)) return classified(Op.LoadRip, slot);
      }
      if (mnemonic === Mnemonic.Mov || mnemonic === Mnemonic.Push) {
        const last = instruction.opCount - 1;
        const kind = instruction.opKind(last);
        if (kind === OpKind.Immediate32 || kind === OpKind.Immediate32to64 || kind === OpKind.Immediate8to32 || kind === OpKind.Immediate64) {
          const value = kind === OpKind.Immediate64 ? Number(instruction.immediate64) : instruction.immediate32 >>> 0;
          // Small values are never code addresses: skip them cheaply.
          return value >= 0x1000 ? classified(Op.Immediate, value) : classified(Op.Other, Number.NaN);
        }
      }
      for (let operand = 0; operand < instruction.opCount; operand++) {
        const address = absoluteTarget(instruction, operand);
        if (!Number.isNaN(address)) return classified(mnemonic === Mnemonic.Cmp ? Op.CompareMemory : Op.KnownMemory, address);
      }
      return classified(Op.Other, Number.NaN);
    }
    case FlowControl.Call: {
      // iced files `syscall` and `sysenter` under calls.
      const mnemonic = instruction.mnemonic;
      if (mnemonic === Mnemonic.Syscall) return classified(Op.Syscall, Number.NaN);
      if (mnemonic === Mnemonic.Sysenter) return classified(Op.Sysenter, Number.NaN);
      return classified(Op.CallDirect, bitness === 64 ? Number(instruction.nearBranch64) : instruction.nearBranch32);
    }
    case FlowControl.IndirectCall:
      return classified(Op.CallIndirect, absoluteTarget(instruction, 0));
    case FlowControl.UnconditionalBranch:
      // jmp rel; a far jmp with an immediate segment is treated as a stop.
      return instruction.op0Kind === OpKind.NearBranch64 || instruction.op0Kind === OpKind.NearBranch32
        ? classified(Op.JmpDirect, bitness === 64 ? Number(instruction.nearBranch64) : instruction.nearBranch32)
        : classified(Op.Stop, Number.NaN);
    case FlowControl.IndirectBranch:
      return classified(Op.JmpIndirect, absoluteTarget(instruction, 0));
    case FlowControl.ConditionalBranch:
      return classified(Op.Jcc, bitness === 64 ? Number(instruction.nearBranch64) : instruction.nearBranch32);
    case FlowControl.Return:
      return classified(Op.Return, Number.NaN);
    case FlowControl.Interrupt:
      if (instruction.mnemonic === Mnemonic.Int && instruction.immediate8 === 0x80) return classified(Op.Int80, Number.NaN);
      // `int3` fills the gaps between functions (Go, MSVC-style linkers), as `nop` does elsewhere:
      // it is padding, so a function that ends in `ret; int3` does not run on into the next one.
      if (instruction.mnemonic === Mnemonic.Int3) return classified(Op.Padding, Number.NaN);
      return classified(Op.Other, Number.NaN);
    case FlowControl.Exception:
      return classified(instruction.code === 0 ? Op.Invalid : Op.Stop, Number.NaN);
    default:
      return classified(Op.Other, Number.NaN);
  }
}

/** True when execution can continue with the next instruction. */
export function fallsThrough(kind: number): boolean {
  return kind !== Op.JmpDirect && kind !== Op.JmpIndirect && kind !== Op.Return && kind !== Op.Stop && kind !== Op.Invalid;
}

/**
 * True when instruction `index` can be entered from the instruction before it: padding after a
 * jump or return (alignment before a label) does not make the label reachable by falling through.
 */
export function reachedByFallthrough(table: InstructionTable, index: number, first: number): boolean {
  let previous = index - 1;
  while (previous >= first && table.op[previous] === Op.Padding) previous--;
  return previous < first || (fallsThrough(table.op[previous]!) && !table.noReturnCalls.has(previous));
}
