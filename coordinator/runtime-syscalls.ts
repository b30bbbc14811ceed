/**
 * Syscalls the container runtime makes after it has installed the seccomp filter and before it
 * exec's the entrypoint: they must be allowed whatever the image does. Measured, not guessed, on
 * Docker 20.10.24 with runc (Debian bookworm) on this project's test machine: the corpus images were
 * run under a profile that allows the strace-observed set and LOGs everything else, and the kernel's
 * seccomp audit records from comm `runc:[2:INIT]` were collected (bench/corpus/audit.ts), then the
 * set was minimised by removing names one at a time (bench/runtime-syscalls.ts). runc's init is a
 * Go program, so its scheduler's calls appear at random: they are kept too.
 *
 *   node --import tsx bench/corpus/audit.ts          # runc's records outside the traced sets
 *   node --import tsx bench/runtime-syscalls.ts      # minimal set for a static probe entrypoint
 */
export interface RuntimeSyscall {
  readonly name: string;
  readonly reason: string;
}

const CAPS = 'runc drops capabilities after the filter is in place (no_new_privs is off by default)';
const USER = 'runc switches to the image USER after the filter is in place';
const FDS = 'runc closes inherited file descriptors, checking /proc/self/fd is procfs';
const EXEC = 'runc execs the entrypoint';
const GO = "runc init is a Go program: its runtime's scheduler, signals and memory";

export const RUNTIME_SYSCALLS: readonly RuntimeSyscall[] = [
  { name: 'capget', reason: CAPS },
  { name: 'capset', reason: CAPS },
  { name: 'prctl', reason: CAPS },
  { name: 'setgroups', reason: USER },
  { name: 'setgid', reason: USER },
  { name: 'setuid', reason: USER },
  { name: 'fchown', reason: `${USER} (non-root USER: the console and stdio are chowned)` },
  { name: 'newfstatat', reason: `${USER} (non-root USER)` },
  { name: 'fstatfs', reason: FDS },
  { name: 'openat', reason: FDS },
  { name: 'getdents64', reason: FDS },
  { name: 'fcntl', reason: FDS },
  { name: 'close', reason: FDS },
  { name: 'fstat', reason: FDS },
  { name: 'read', reason: 'runc reads its sync pipe from the parent' },
  { name: 'write', reason: 'runc writes its sync pipe to the parent' },
  { name: 'chdir', reason: 'runc changes to the WorkingDir' },
  { name: 'getcwd', reason: 'runc checks the WorkingDir' },
  { name: 'faccessat2', reason: `${EXEC}: the PATH lookup checks the executable` },
  { name: 'execve', reason: EXEC },
  { name: 'getpid', reason: GO },
  { name: 'getppid', reason: 'runc checks its parent is still alive' },
  { name: 'gettid', reason: GO },
  { name: 'tgkill', reason: GO },
  { name: 'futex', reason: GO },
  { name: 'epoll_ctl', reason: GO },
  { name: 'epoll_pwait', reason: GO },
  { name: 'nanosleep', reason: GO },
  { name: 'sched_yield', reason: GO },
  { name: 'mmap', reason: GO },
  { name: 'munmap', reason: GO },
  { name: 'madvise', reason: GO },
  { name: 'rt_sigaction', reason: GO },
  { name: 'rt_sigprocmask', reason: GO },
  { name: 'rt_sigreturn', reason: GO },
  { name: 'sigaltstack', reason: GO },
];
