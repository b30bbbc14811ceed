/**
 * Relocation type numbers per machine (psABI supplements: x86-64 "Relocation Types", i386,
 * AArch64 ELF ABI "Dynamic relocations", ARM ELF, RISC-V ELF psABI, ELFv2 ppc64, s390x).
 */
import { EM_386, EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64 } from './constants.js';

export interface RelocationKinds {
  /** B + A: the stored value is an address in this object. */
  readonly relative: number;
  /** Resolver address in the addend: an ifunc. */
  readonly irelative: number;
  readonly jumpSlot: number;
  readonly globDat: number;
  /** Word-sized S + A (R_X86_64_64, R_AARCH64_ABS64, R_386_32, ...). */
  readonly absolute: number;
  /** The loader copies the symbol's initial bytes into the executable (R_X86_64_COPY, ...). */
  readonly copy: number;
}

const KINDS = new Map<number, RelocationKinds>([
  [EM_X86_64, { relative: 8, irelative: 37, jumpSlot: 7, globDat: 6, absolute: 1, copy: 5 }],
  [EM_386, { relative: 8, irelative: 42, jumpSlot: 7, globDat: 6, absolute: 1, copy: 5 }],
  [EM_AARCH64, { relative: 1027, irelative: 1032, jumpSlot: 1026, globDat: 1025, absolute: 257, copy: 1024 }],
  [EM_ARM, { relative: 23, irelative: 160, jumpSlot: 22, globDat: 21, absolute: 2, copy: 20 }],
  [EM_PPC64, { relative: 22, irelative: 248, jumpSlot: 21, globDat: 20, absolute: 38, copy: 19 }],
  [EM_S390, { relative: 12, irelative: 61, jumpSlot: 11, globDat: 10, absolute: 22, copy: 9 }],
]);

/** RISC-V has no GLOB_DAT (GOT slots use R_RISCV_64/32); -1 never matches a type. */
const RISCV64: RelocationKinds = { relative: 3, irelative: 58, jumpSlot: 5, globDat: -1, absolute: 2, copy: 4 };
const RISCV32: RelocationKinds = { relative: 3, irelative: 58, jumpSlot: 5, globDat: -1, absolute: 1, copy: 4 };

export function relocationKinds(machine: number, is64: boolean): RelocationKinds | undefined {
  if (machine === EM_RISCV) return is64 ? RISCV64 : RISCV32;
  return KINDS.get(machine);
}
