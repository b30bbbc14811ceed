/**
 * The libc census: for every libc the test machine carries (Debian 12's glibc 2.36 and musl 1.2.3,
 * Debian 13's glibc 2.41 and musl 1.2.5 from the trixie root of infra/setup/test-env.sh), each
 * exported function whose job is one syscall must reach that syscall in the native analyser's
 * facts. glibc 2.41 passes cancellable syscalls' numbers as a 7th, stack-passed argument through
 * `__syscall_cancel`; a tracker that loses such arguments fails here first. Keep it as the guard
 * for the next libc.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { type ObjectFacts, reachOf } from '../store/facts.js';
import { analyzeElf } from '../worker/native/analyser.js';
import { hostPath, TRIXIE_ROOT } from './helpers/ground-truth.js';
import { sha256 } from './helpers/layers.js';

const LIBCS = [
  { name: 'glibc 2.36 (bookworm)', file: '/lib/x86_64-linux-gnu/libc.so.6' },
  { name: 'musl 1.2.3 (bookworm)', file: '/usr/lib/x86_64-linux-musl/libc.so' },
  { name: 'glibc 2.41 (trixie)', file: hostPath(TRIXIE_ROOT, '/usr/lib/x86_64-linux-gnu/libc.so.6') },
  { name: 'musl 1.2.5 (trixie)', file: hostPath(TRIXIE_ROOT, '/usr/lib/x86_64-linux-musl/libc.so') },
] as const;

/** Export → the syscalls that do its job (any one of them is enough: libcs pick different ones). */
const ONE_SYSCALL_EXPORTS: readonly (readonly [string, readonly string[]])[] = [
  ['accept', ['accept', 'accept4']],
  ['accept4', ['accept4']],
  ['connect', ['connect']],
  ['read', ['read']],
  ['write', ['write']],
  ['readv', ['readv']],
  ['writev', ['writev']],
  ['pread', ['pread64']],
  ['pwrite', ['pwrite64']],
  ['recv', ['recvfrom']],
  ['recvfrom', ['recvfrom']],
  ['recvmsg', ['recvmsg']],
  ['recvmmsg', ['recvmmsg']],
  ['send', ['sendto']],
  ['sendto', ['sendto']],
  ['sendmsg', ['sendmsg']],
  // musl on 64-bit emulates sendmmsg with sendmsg (its msghdr differs from the kernel's).
  ['sendmmsg', ['sendmmsg', 'sendmsg']],
  ['waitpid', ['wait4']],
  ['wait4', ['wait4']],
  ['wait', ['wait4']],
  ['waitid', ['waitid']],
  ['nanosleep', ['nanosleep', 'clock_nanosleep']],
  ['clock_nanosleep', ['clock_nanosleep']],
  ['usleep', ['nanosleep', 'clock_nanosleep']],
  ['sleep', ['nanosleep', 'clock_nanosleep']],
  ['epoll_wait', ['epoll_wait', 'epoll_pwait']],
  ['epoll_pwait', ['epoll_pwait']],
  ['poll', ['poll', 'ppoll']],
  ['ppoll', ['ppoll']],
  ['select', ['select', 'pselect6']],
  ['pselect', ['pselect6']],
  ['fsync', ['fsync']],
  ['fdatasync', ['fdatasync']],
  ['open', ['open', 'openat']],
  ['openat', ['openat']],
  ['creat', ['creat', 'open', 'openat']],
  ['close', ['close']],
  ['pause', ['pause', 'ppoll', 'rt_sigsuspend']],
  ['sigsuspend', ['rt_sigsuspend']],
  ['sigtimedwait', ['rt_sigtimedwait']],
  ['sigwaitinfo', ['rt_sigtimedwait']],
  ['msgrcv', ['msgrcv', 'ipc']],
  ['msgsnd', ['msgsnd', 'ipc']],
  ['fcntl', ['fcntl']],
  ['lockf', ['fcntl']],
  ['flock', ['flock']],
  ['tcdrain', ['ioctl']],
  ['mq_timedsend', ['mq_timedsend']],
  ['mq_timedreceive', ['mq_timedreceive']],
  ['getpid', ['getpid']],
  ['kill', ['kill']],
  ['execve', ['execve']],
  ['fork', ['clone', 'fork', 'clone3']],
  ['setuid', ['setuid']],
  ['setgid', ['setgid']],
  ['setresuid', ['setresuid']],
  ['setreuid', ['setreuid']],
  ['setgroups', ['setgroups']],
  ['sem_timedwait', ['futex']],
  ['pthread_join', ['futex']],
];

/**
 * The syscalls of an export (the default version, `@@`, when the libc versions its symbols), with
 * the callbacks it hands out once an indirect call is reached, as coordinator/plan/link.ts enters them
 * (musl's setuid makes its syscall in a callback of `__synccall`).
 */
function exportReach(facts: ObjectFacts, name: string): readonly string[] | undefined {
  const candidates = facts.exports.filter((item) => item.symbol.split('@')[0] === name);
  const chosen = candidates.find((item) => item.symbol.includes('@@')) ?? candidates.find((item) => !item.symbol.includes('@')) ?? candidates[0];
  if (!chosen) return undefined;
  const syscalls = new Set<string>();
  const seen = new Set<number>();
  const taken = new Set<number>();
  let indirect = false;
  const queue = [chosen.reach];
  while (queue.length > 0) {
    const index = queue.shift()!;
    if (seen.has(index)) continue;
    seen.add(index);
    const reach = reachOf(facts, index);
    for (const syscall of reach.syscalls) syscalls.add(syscall);
    for (const callback of reach.callbacks) taken.add(callback);
    indirect ||= reach.indirect;
    if (indirect) for (const callback of taken) queue.push(facts.callbacks[callback]!.reach);
  }
  return [...syscalls];
}

describe('libc census: each one-syscall export reaches its syscall', () => {
  for (const libc of LIBCS) {
    it(libc.name, { timeout: 120_000 }, async () => {
      const bytes = await fs.readFile(libc.file);
      const facts = analyzeElf(bytes, sha256(bytes), DEFAULT_LIMITS);
      const missing: string[] = [];
      let checked = 0;
      for (const [name, wanted] of ONE_SYSCALL_EXPORTS) {
        const reach = exportReach(facts, name);
        assert.ok(reach, `${libc.name} exports ${name}`);
        checked++;
        if (!wanted.some((syscall) => reach.includes(syscall))) missing.push(`${name} (wants ${wanted.join(' or ')}; reaches ${reach.length} others)`);
      }
      console.log(`${libc.name}: ${checked - missing.length}/${checked} exports reach their syscall`);
      assert.ok(checked >= 40, `at least 40 exports checked (${checked})`);
      assert.deepEqual(missing, [], `${libc.name}: exports that miss their own syscall`);
    });
  }
});
