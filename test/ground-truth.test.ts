import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  buildFixture,
  FIXTURE_MATRIX,
  FixtureDirs,
  type FixtureEntry,
  fixtureLabel,
  lddClosure,
  MUSL_LOADER,
  type StraceResult,
  TRIXIE_ROOT,
  straceRun,
  straceSyscalls,
} from './helpers/ground-truth.js';
import { parseStrace } from './helpers/strace.js';

const key = (entry: FixtureEntry): string => fixtureLabel(entry);

describe('ground truth: fixtures under strace -f', () => {
  const dirs = new FixtureDirs('dockergate-gt-');
  const built = new Map<string, string>();
  const traced = new Map<string, StraceResult>();

  before(async () => {
    const started = Date.now();
    await Promise.all(
      FIXTURE_MATRIX.map(async (entry) => {
        built.set(key(entry), await buildFixture(entry.name, entry.toolchain, await dirs.for(entry.root), entry.root));
      }),
    );
    console.log(`built ${FIXTURE_MATRIX.length} fixtures in ${Date.now() - started} ms`);
    for (const entry of FIXTURE_MATRIX) {
      const exe = built.get(key(entry));
      assert.ok(exe);
      traced.set(key(entry), await straceRun(exe, { root: entry.root }));
    }
  });

  after(async () => {
    await dirs.remove();
  });

  const get = (entry: FixtureEntry | string, toolchain?: string): StraceResult => {
    const label = typeof entry === 'string' ? `${entry}/${toolchain}` : key(entry);
    const result = traced.get(label);
    assert.ok(result, `no trace for ${label}`);
    return result;
  };

  it('traces every fixture, prints its syscall count, and each one exits through exit_group or exit', () => {
    for (const entry of FIXTURE_MATRIX) {
      const result = get(entry);
      const foreign = [...result.byImage.keys()].filter((image) => image !== built.get(key(entry)));
      console.log(
        `${key(entry).padEnd(32)} ${String(result.syscalls.size).padStart(3)} syscalls` +
          ` (own image ${result.ownSyscalls.size}${foreign.length > 0 ? `; also ran ${foreign.join(', ')}` : ''})`,
      );
      assert.ok(result.syscalls.has('exit_group') || result.syscalls.has('exit'), `${key(entry)}: no exit`);
      assert.ok(result.initialExecve?.includes('execve('), `${key(entry)}: initial execve not recorded`);
      assert.deepEqual(result.unparsed, [], `${key(entry)}: unparsed trace lines`);
      for (const name of result.syscalls) assert.match(name, /^[a-z_][a-z0-9_]*$/, `${key(entry)}: odd name ${name}`);
    }
  });

  it('does not count the initial execve of programs that never exec', () => {
    for (const entry of FIXTURE_MATRIX.filter((e) => e.name !== 'threads' && e.name !== 'spawn')) {
      assert.ok(!get(entry).syscalls.has('execve'), key(entry));
    }
  });

  it('sees the direct syscalls of direct-syscall.c', () => {
    for (const entry of FIXTURE_MATRIX.filter((e) => e.name === 'direct-syscall')) {
      const own = get(entry).ownSyscalls;
      for (const name of ['getpid', 'gettid', 'getrandom', 'sched_yield', 'getppid']) {
        assert.ok(own.has(name), `${key(entry)}: missing ${name}`);
      }
    }
  });

  it('sees the calls made through function pointers', () => {
    for (const entry of FIXTURE_MATRIX.filter((e) => e.name === 'function-pointers')) {
      const own = get(entry).ownSyscalls;
      for (const name of ['write', 'getpid', 'getppid', 'getuid', 'geteuid', 'uname', 'getcwd', 'sysinfo']) {
        assert.ok(own.has(name), `${key(entry)}: missing ${name}`);
      }
      assert.ok(own.has('prlimit64') || own.has('getrlimit'), `${key(entry)}: missing getrlimit`);
    }
  });

  it('sees threads, fork, wait and the spawned /bin/true in threads.c', () => {
    for (const entry of FIXTURE_MATRIX.filter((e) => e.name === 'threads')) {
      const result = get(entry);
      const own = result.ownSyscalls;
      assert.ok(own.has('clone') || own.has('clone3'), `${key(entry)}: no clone`);
      for (const name of ['wait4', 'execve', 'socketpair', 'futex']) assert.ok(own.has(name), `${key(entry)}: missing ${name}`);
      assert.ok(own.has('pipe') || own.has('pipe2'), `${key(entry)}: no pipe`);
      // /bin/true's own syscalls are attributed to /bin/true, not to threads.
      const child = result.byImage.get('/bin/true');
      assert.ok(child?.has('exit_group'), `${key(entry)}: /bin/true not traced after its execve`);
    }
  });

  it('sees the cancellation points of cancellable.c and the programs and set*id calls of spawn.c, on every libc', () => {
    for (const entry of FIXTURE_MATRIX.filter((e) => e.name === 'cancellable')) {
      const own = get(entry).ownSyscalls;
      for (const name of ['wait4', 'waitid', 'connect', 'sendmsg', 'recvmsg', 'fsync', 'fdatasync', 'rt_sigtimedwait']) assert.ok(own.has(name), `${key(entry)}: missing ${name}`);
      assert.ok(own.has('accept') || own.has('accept4'), `${key(entry)}: no accept`);
      assert.ok(own.has('epoll_wait') || own.has('epoll_pwait'), `${key(entry)}: no epoll wait`);
    }
    for (const entry of FIXTURE_MATRIX.filter((e) => e.name === 'spawn')) {
      const own = get(entry).ownSyscalls;
      for (const name of ['execve', 'wait4', 'setuid', 'setgid', 'setresuid', 'setresgid']) assert.ok(own.has(name), `${key(entry)}: missing ${name}`);
    }
  });

  it('lists the loader and libraries of a trixie program inside its root', async () => {
    const entry = FIXTURE_MATRIX.find((e) => e.name === 'hello' && e.toolchain === 'glibc-dynamic' && e.root === TRIXIE_ROOT)!;
    const glibc = await lddClosure(built.get(key(entry)) ?? '', TRIXIE_ROOT);
    assert.ok(glibc.interpreter?.startsWith(`${TRIXIE_ROOT.path}/`), JSON.stringify(glibc));
    assert.ok(glibc.libraries.some((lib) => lib.startsWith(`${TRIXIE_ROOT.path}/`) && path.basename(lib) === 'libc.so.6'), JSON.stringify(glibc));
  });

  it('sees the Go program use loopback TCP and its raw syscalls', () => {
    const own = get('go', 'go').ownSyscalls;
    for (const name of ['socket', 'connect', 'bind', 'listen', 'getpid', 'gettid', 'clone']) {
      assert.ok(own.has(name), `go: missing ${name}`);
    }
    assert.ok(own.has('accept4') || own.has('accept'), 'go: no accept');
  });

  it('gives different sets for hello.c with glibc-dynamic and musl-static', () => {
    const glibc = get('hello', 'glibc-dynamic').syscalls;
    const musl = get('hello', 'musl-static').syscalls;
    const onlyGlibc = [...glibc].filter((s) => !musl.has(s));
    const onlyMusl = [...musl].filter((s) => !glibc.has(s));
    console.log(`hello: only glibc-dynamic: ${onlyGlibc.join(' ')}; only musl-static: ${onlyMusl.join(' ')}`);
    assert.notDeepEqual([...glibc].sort(), [...musl].sort());
    // The dynamic loader maps libc; a static musl program has nothing to load.
    assert.ok(glibc.has('openat') && glibc.has('mmap'));
    for (const name of ['rt_sigaction', 'getdents64', 'unlink', 'munmap', 'mprotect']) {
      assert.ok(glibc.has(name) && musl.has(name), `hello: ${name} missing on one side`);
    }
    // glibc 2.36 implements nanosleep with clock_nanosleep, musl with nanosleep.
    assert.ok(glibc.has('clock_nanosleep') || glibc.has('nanosleep'));
    assert.ok(musl.has('clock_nanosleep') || musl.has('nanosleep'));
  });

  it('lists loader and libraries with lddClosure', async () => {
    const glibc = await lddClosure(built.get('hello/glibc-dynamic') ?? '');
    assert.equal(glibc.interpreter, '/lib64/ld-linux-x86-64.so.2');
    assert.ok(glibc.libraries.some((lib) => path.basename(lib) === 'libc.so.6'), JSON.stringify(glibc));
    for (const lib of glibc.libraries) assert.ok(path.isAbsolute(lib));

    const musl = await lddClosure(built.get('hello/musl-dynamic') ?? '');
    assert.deepEqual(musl, { interpreter: MUSL_LOADER, libraries: [] });

    for (const name of ['hello/glibc-static', 'hello/musl-static', 'go/go']) {
      assert.deepEqual(await lddClosure(built.get(name) ?? ''), { libraries: [] }, name);
    }
  });

  it('straceSyscalls rejects a program that exits non-zero', async () => {
    await assert.rejects(straceSyscalls('/bin/false'), /exit code 1/);
    const ok = await straceSyscalls('/bin/true');
    assert.ok(ok.has('exit_group') && !ok.has('execve'));
  });
});

describe('ground truth: strace parser', () => {
  it('handles unfinished/resumed calls, signals, exits and spawned images', () => {
    const trace = [
      '100   execve("/x/prog", ["/x/prog"], 0x7ffd /* 3 vars */) = 0',
      '100   brk(NULL)                         = 0x5555',
      '100   clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f, stack_size=0x9000}, 88 <unfinished ...>',
      '101   rt_sigprocmask(SIG_SETMASK, [], NULL, 8) = 0',
      '101   execve("/bin/tr\\x75e", ["/bin/true"], 0x7ffd /* 3 vars */ <unfinished ...>',
      '100   <... clone3 resumed>)             = 101',
      '101   <... execve resumed>)             = 0',
      '101   arch_prctl(ARCH_SET_FS, 0x7f)     = 0',
      '101   exit_group(0)                     = ?',
      '101   +++ exited with 0 +++',
      '100   --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=101, si_status=0} ---',
      '100   wait4(101, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 101',
      '100   nanosleep({tv_sec=1, tv_nsec=0}, NULL) = ? ERESTART_RESTARTBLOCK (Interrupted by signal)',
      '100   restart_syscall(<... resuming interrupted nanosleep ...>) = 0',
      '100   execve("/nonexistent", ["x"], 0x7ffd /* 3 vars */) = -1 ENOENT (No such file or directory)',
      '100   exit_group(0)                     = ?',
      '100   +++ exited with 0 +++',
      '',
    ].join('\n');
    const parsed = parseStrace(trace, '/x/prog');
    assert.deepEqual(parsed.unparsed, []);
    assert.match(parsed.initialExecve ?? '', /execve\("\/x\/prog"/);
    assert.deepEqual(
      [...parsed.syscalls].sort(),
      ['arch_prctl', 'brk', 'clone3', 'execve', 'exit_group', 'nanosleep', 'restart_syscall', 'rt_sigprocmask', 'wait4'],
    );
    assert.deepEqual(
      [...parsed.ownSyscalls].sort(),
      ['brk', 'clone3', 'execve', 'exit_group', 'nanosleep', 'restart_syscall', 'rt_sigprocmask', 'wait4'],
    );
    assert.deepEqual([...(parsed.byImage.get('/bin/true') ?? [])].sort(), ['arch_prctl', 'exit_group']);
    // What the corpus benchmark reads: calls per name (the initial execve included, a resumed call
    // once), tasks, and successful execs in order.
    assert.equal(parsed.tasks, 2);
    assert.deepEqual(parsed.execs, ['/x/prog', '/bin/true']);
    assert.equal(parsed.counts.get('execve'), 3);
    assert.equal(parsed.counts.get('clone3'), 1);
    assert.equal(parsed.counts.get('exit_group'), 2);
  });

  it("names syscalls newer than strace's table after the kernel's table", () => {
    const parsed = parseStrace('7 syscall_0x1c3(0x3, 0, 0x1000, 0x7ffc, 0) = 0\n7 exit_group(0) = ?\n');
    assert.deepEqual([...parsed.syscalls].sort(), ['cachestat', 'exit_group']);
  });
});
