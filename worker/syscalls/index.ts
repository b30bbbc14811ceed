import { SYSCALL_TABLES, type SyscallArch } from './tables.generated.js';

export type { SyscallArch };

const parsed = new Map<SyscallArch, ReadonlyMap<number, string>>();

/** Number → name for one architecture's syscall table (names as seccomp profiles spell them). */
export function syscallTable(arch: SyscallArch): ReadonlyMap<number, string> {
  let table = parsed.get(arch);
  if (!table) {
    table = new Map(
      SYSCALL_TABLES[arch].split(' ').map((pair) => {
        const [number, name] = pair.split(':');
        return [Number(number), name!] as const;
      }),
    );
    parsed.set(arch, table);
  }
  return table;
}

/** The name of syscall `number`, or `syscall_<number>` for numbers the table lacks. */
export function syscallName(arch: SyscallArch, number: number): string {
  return syscallTable(arch).get(number) ?? `syscall_${number}`;
}

export function isSyscallArch(arch: string): arch is SyscallArch {
  return arch in SYSCALL_TABLES;
}
