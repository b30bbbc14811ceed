/** Placeholder until the measurement in bench/runtime-syscalls.ts is recorded (see below). */
export interface RuntimeSyscall {
  readonly name: string;
  readonly reason: string;
}
export const RUNTIME_SYSCALLS: readonly RuntimeSyscall[] = [];
