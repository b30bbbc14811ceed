import type { FileKind } from './types.js';

/** ELF e_machine values (ELF gABI, "Machine Information") for the architectures we name. */
const ELF_MACHINES: ReadonlyMap<number, string> = new Map([
  [3, 'i386'],
  [8, 'mips'],
  [20, 'ppc'],
  [21, 'ppc64'],
  [22, 's390x'],
  [40, 'arm'],
  [62, 'x86_64'],
  [183, 'aarch64'],
  [243, 'riscv64'],
  [258, 'loongarch64'],
]);

export interface Classification {
  readonly kind: FileKind;
  readonly elfMachine?: string;
  readonly interpreter?: string;
}

const SHEBANG_INTERPRETER = /^#!\s*(\S+)(?:[ \t]+([^\r\n]*?))?\s*$/;

/**
 * Classifies a file by its first bytes: `\x7fELF` (gABI e_ident) or `#!` (execve(2) interpreter
 * line). Never by name or exec bit. `head` may be shorter than the file; 256 bytes suffice.
 */
export function classify(head: Uint8Array): Classification {
  if (head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    return { kind: 'elf', elfMachine: elfMachineOf(head) };
  }
  if (head.length >= 2 && head[0] === 0x23 && head[1] === 0x21) {
    const newline = head.indexOf(0x0a);
    const line = Buffer.from(head.subarray(0, newline === -1 ? head.length : newline)).toString('latin1');
    const match = SHEBANG_INTERPRETER.exec(line);
    if (!match?.[1]) return { kind: 'script' };
    const interpreter = match[2] ? `${match[1]} ${match[2]}` : match[1];
    return { kind: 'script', interpreter };
  }
  return { kind: 'other' };
}

function elfMachineOf(head: Uint8Array): string {
  // e_ident[EI_DATA] (byte 5): 1 little-endian, 2 big-endian; e_machine is the half at offset 18.
  if (head.length < 20) return 'unknown';
  const littleEndian = head[5] !== 2;
  const low = head[littleEndian ? 18 : 19] ?? 0;
  const high = head[littleEndian ? 19 : 18] ?? 0;
  const machine = low | (high << 8);
  return ELF_MACHINES.get(machine) ?? `em-${machine}`;
}
