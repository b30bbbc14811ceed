/**
 * Syscalls the container runtime itself makes after it loads the container's seccomp filter and
 * before it execs the entrypoint. Every generated profile must allow them, whatever the image does.
 *
 * Docker 20.10 leaves `no_new_privs` off, so runc 1.1 loads the filter *before* it drops privileges
 * (`standard_init_linux.go`: "Without NoNewPrivileges seccomp is a privileged operation"); everything
 * `runc init` does afterwards runs under the filter: closing inherited fds, capabilities, user and
 * groups, the working directory, the exec fifo handshake, and its Go runtime.
 *
 * Measured, not guessed, on this runtime: Docker 20.10.24+dfsg1, runc 1.1.5+ds1-1+deb12u1 (Debian
 * bookworm; it carries the CVE-2024-21626 backports, hence `getcwd` and the final /proc/self/fd
 * sweep), libseccomp 2.5.4, kernel 6.18, x86_64. Reproduce (about 6 minutes, ~1000 container runs):
 *
 *   node --import tsx bench/runtime-syscalls.ts --repeat 30 --trace 10
 *
 * The bench starts a static probe whose only syscall is exit_group under profiles written by
 * `coordinator/output/policy.ts`, traces runc init with strace, removes syscalls (delta debugging, repeated
 * runs for the ones the Go runtime makes only sometimes) and keeps those whose removal breaks the
 * start. The same 21 came out for all four variants: image default user (root), `--user 1000:1000`,
 * `--user nobody` (looked up in the image's /etc/passwd after the filter) and `--read-only`.
 * DESIGN.md's expectation (capget capset setgroups setgid setuid prctl chdir getcwd fstat fstatfs
 * getdents64 getppid futex execve + I/O) holds; the I/O part is close, newfstatat, openat, read and
 * write, plus faccessat2 and rt_sigreturn.
 *
 * Two more were seen by the trace and are kept although removing them does not fail the probe's start:
 * `mmap` (too rare for removal runs to show) and `fchown` (runc tolerates its failure, the container
 * does not; see its reason). Seen after the filter and not needed: `epoll_ctl` (Go registers every
 * opened file with its poller; the kernel already answers EPERM for regular files), `fcntl`
 * (FD_CLOEXEC on inherited fds; runc closes them all before exec anyway, no fd leaks without it) and
 * `getpid` (only for the state passed to hooks, which Docker does not use).
 *
 * Also kept: the Go-runtime calls that the kernel's seccomp audit log showed runc init making after
 * the filter on the corpus images (bench/corpus/audit.ts). Denying them did not fail the probe, but
 * some failures are fatal to a Go program when they do happen (sigaltstack, munmap): the few extra
 * names are cheaper than a container that fails to start once in a while.
 *
 * Other runtimes (crun, runc with no_new_privs, containerd's CRI) differ: measure them with the same
 * bench before relying on this list there.
 */

export interface RuntimeSyscall {
  readonly name: string;
  /** What runc does with it, and what Docker printed when it was denied. */
  readonly reason: string;
  /**
   * `always`: every start failed without it. `sometimes`: some starts failed without it (the Go
   * runtime). `observed`: seen after the filter by strace; its removal does not fail the start, but
   * the reason says what breaks.
   */
  readonly evidence: 'always' | 'sometimes' | 'observed';
}

export const RUNTIME_SYSCALLS: readonly RuntimeSyscall[] = [
  {
    name: 'capget',
    reason: 'reads the current capability sets before dropping the bounding set (denied: "unable to start container process: operation not permitted")',
    evidence: 'always',
  },
  { name: 'capset', reason: 'sets the container\'s capabilities (denied: "unable to apply caps: operation not permitted")', evidence: 'always' },
  { name: 'chdir', reason: 'changes to the working directory (denied: "chdir to cwd (\\"/\\") set in config.json failed")', evidence: 'always' },
  {
    name: 'close',
    reason: 'closes its log pipe, the exec fifo and every inherited fd before exec (denied: "close log pipe fd 4: operation not permitted")',
    evidence: 'always',
  },
  { name: 'execve', reason: 'execs the entrypoint (denied: "exec <entrypoint>: operation not permitted", exit 1)', evidence: 'always' },
  {
    name: 'faccessat2',
    reason:
      'exec.LookPath checks that the entrypoint is executable (Go 1.19 unix.Eaccess; with ENOSYS its fallback needs geteuid/getegid; denied: "exec <entrypoint>: operation not permitted")',
    evidence: 'always',
  },
  { name: 'fstat', reason: 'stats stdin/stdout/stderr to fix their ownership for the container user (denied: "unable to setup user: fstat /dev/stdin")', evidence: 'always' },
  {
    name: 'fstatfs',
    reason: 'checks that /proc/self/fd is on procfs before closing inherited fds (denied: "error closing exec fds: ensure /proc/self/fd is on procfs")',
    evidence: 'always',
  },
  { name: 'futex', reason: 'Go runtime thread wake-ups (denied: the runtime aborts with "futexwakeup addr=… returned -1")', evidence: 'always' },
  {
    name: 'getcwd',
    reason: 'checks that the working directory is inside the container (CVE-2024-21626 fix; denied: "failed to verify if current working directory is safe")',
    evidence: 'always',
  },
  { name: 'getdents64', reason: 'lists /proc/self/fd to close inherited fds (denied: "error closing exec fds: readdirent /proc/self/fd")', evidence: 'always' },
  {
    name: 'getppid',
    reason: 'checks that its parent did not die while it set up (denied: "unable to start container process: operation not permitted")',
    evidence: 'always',
  },
  {
    name: 'newfstatat',
    reason: 'stats /dev/null (stdio ownership) and the entrypoint (exec.LookPath) (denied: "unable to setup user: stat /dev/null")',
    evidence: 'always',
  },
  {
    name: 'openat',
    reason: 'opens /proc/self/fd, /proc/self/status, /etc/passwd, /etc/group, /proc/self/setgroups and the exec fifo (denied: "error closing exec fds: open /proc/self/fd")',
    evidence: 'always',
  },
  {
    name: 'prctl',
    reason: 'drops the capability bounding set, sets and clears keep-caps, lowers ambient caps (denied: "unable to apply bounding set")',
    evidence: 'always',
  },
  { name: 'read', reason: 'reads /proc/self/status, /etc/passwd, /etc/group and /proc/self/setgroups (denied: "read /proc/self/status: operation not permitted")', evidence: 'always' },
  {
    name: 'rt_sigreturn',
    reason:
      "returns from the Go scheduler's SIGURG preemption signal; seen in 10 of 40 traced starts (denied: the runc init thread dies of SIGSEGV, exit 139, in 1–4 of 31 starts per variant)",
    evidence: 'sometimes',
  },
  { name: 'setgid', reason: 'switches to the container group, also for root (denied: "unable to setup user: operation not permitted")', evidence: 'always' },
  { name: 'setgroups', reason: 'sets the supplementary groups (denied: "unable to setup user: setgroups: operation not permitted")', evidence: 'always' },
  { name: 'setuid', reason: 'switches to the container user, also for root (denied: "unable to setup user: operation not permitted")', evidence: 'always' },
  {
    name: 'write',
    reason: 'writes "0" to the exec fifo to tell `runc start` it is ready (denied: "OCI runtime start failed: cannot start an already running container")',
    evidence: 'always',
  },
  {
    name: 'mmap',
    reason: 'Go heap growth in runc init; seen in 2 of ~220 traced starts, too rare for removal runs, and a denied mmap there aborts the Go runtime',
    evidence: 'observed',
  },
  {
    name: 'fchown',
    reason:
      'gives stdout/stderr (pipes, mode 0600) to a non-root container user; runc ignores EPERM, so the start succeeds, but then `sh -c "echo > /dev/stdout"` as --user 1000:1000 fails with "Permission denied" (measured)',
    evidence: 'observed',
  },
  {
    name: 'gettid',
    reason: 'Go runtime of runc init (new threads, signals); seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'tgkill',
    reason: 'Go runtime of runc init: asynchronous preemption signals between threads; seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'madvise',
    reason: 'Go runtime of runc init: the heap scavenger returns memory; seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'munmap',
    reason: 'Go runtime of runc init: a failed munmap is fatal to the Go runtime; seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'nanosleep',
    reason: 'Go runtime of runc init: spinning threads back off; seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'sched_yield',
    reason: 'Go runtime of runc init: spinning threads yield; seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'rt_sigaction',
    reason: 'Go runtime of runc init: signal set-up; seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'rt_sigprocmask',
    reason: 'Go runtime of runc init: a new thread sets its signal mask; seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'sigaltstack',
    reason: 'Go runtime of runc init: a new thread installs its signal stack (failure is fatal); seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
  {
    name: 'epoll_pwait',
    reason: 'Go runtime of runc init: the network poller; seen in the kernel\'s seccomp audit records of runc:[2:INIT] on corpus images (bench/corpus/audit.ts), not in removal runs',
    evidence: 'observed',
  },
];
