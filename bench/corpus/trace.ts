/**
 * Ground truth for the corpus: every syscall the container's processes make, from the entrypoint's
 * execve on, while the container starts, passes its smoke test and is stopped.
 *
 * Method: the host's strace, its shared libraries and the host's dynamic loader are copied into a
 * temporary directory that is bind-mounted read-only at /.dgtrace; the container runs with
 *
 *   --entrypoint /.dgtrace/ld-linux-x86-64.so.2
 *   --library-path /.dgtrace /.dgtrace/strace -f -qq -o /.dgtrace-out/trace -- <Entrypoint + Cmd>
 *
 * (so it needs nothing from the image: it works in FROM scratch, musl and non-root images), with
 * --cap-add SYS_PTRACE, seccomp=unconfined, and /.dgtrace-out a writable bind mount. Docker keeps
 * the image's User, WorkingDir and Env. After the smoke test, the image's stop signal goes to the
 * top traced process (what `docker stop` sends to PID 1), so the shutdown path is traced too; what
 * is still alive after a grace period is killed.
 *
 *   node --import tsx bench/corpus/trace.ts [--out DIR] [--verify] [names...]
 *
 * --out writes DIR/<name>.json (syscalls, call counts, execs) and DIR/<name>.trace (the raw trace);
 * --verify also writes DIR/<name>.seccomp.json (allow the traced set plus RUNC_INIT_SYSCALLS, deny
 * the rest with EPERM) and runs the image under it with runWithProfile.
 */
import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { docker, dockerOk, runCommand, sleep, tail } from './docker.js';
import { parseStrace } from '../../test/helpers/strace.js';
import { type CorpusImage, selectImages } from './images.js';
import {
  cleanupStaleContainers,
  containerLogs,
  containerName,
  containerState,
  DEFAULT_TIMEOUT_MS,
  labelArgs,
  removeContainer,
  runWithProfile,
  type SmokeResult,
  track,
  waitExit,
  waitForSmoke,
} from './run.js';

export const TRACE_MOUNT = '/.dgtrace';
export const TRACE_OUT_MOUNT = '/.dgtrace-out';
const LOADER_NAME = 'ld-linux-x86-64.so.2';

export interface TraceOptions {
  /** Bound on start + smoke test (default 60 s). */
  timeoutMs?: number;
  /** After the stop signal, how long the processes get to exit before SIGKILL (default 5 s). */
  stopGraceMs?: number;
  /** Copy the raw strace output here. */
  saveTraceTo?: string;
  /** How long to wait while a host tracer follows the container runtime (default 10 min). */
  waitForTracerMs?: number;
  log?: (message: string) => void;
}

export interface TraceResult {
  image: CorpusImage;
  /** Kernel syscall names (as strace prints them), every process and thread, initial execve included. */
  syscalls: Set<string>;
  /** Calls per syscall name (a call interrupted and resumed counts once). */
  counts: Map<string, number>;
  /** Distinct pids (processes and threads) seen in the trace. */
  tasks: number;
  /** Successful execve/execveat paths, in order. */
  execs: string[];
  /** Trace lines of no known shape (expected empty). */
  unparsed: string[];
  smoke: SmokeResult;
  /** The traced container's exit code (strace's: the top process's), if it exited. */
  exitCode: number | undefined;
  /** How the container ended: 'exited' (by itself), 'stop-signal', 'killed'. */
  ending: 'exited' | 'stop-signal' | 'killed';
  durationMs: number;
  traceBytes: number;
}

// ------------------------------------------------------------------ strace bundle

let bundle: Promise<string> | undefined;

/**
 * Copies strace, the libraries `ldd` lists for it and the dynamic loader into a fresh temporary
 * directory (once per process; removed at exit) and returns its path.
 */
export function straceBundle(): Promise<string> {
  bundle ??= (async () => {
    const which = await runCommand('sh', ['-c', 'command -v strace']);
    const strace = which.stdout.trim();
    if (which.code !== 0 || strace === '') throw new Error('strace not found on the host (apt-get install strace; infra/setup/test-env.sh installs it)');
    const ldd = await runCommand('ldd', [strace]);
    if (ldd.code !== 0) throw new Error(`ldd ${strace}: ${ldd.stderr}`);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-strace-bundle-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    let loader = false;
    for (const line of ldd.stdout.split('\n')) {
      const linked = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(0x/.exec(line);
      const direct = /^\s*(\/\S+)\s+\(0x/.exec(line);
      if (linked?.[1] !== undefined && linked[2] !== undefined) {
        await fs.copyFile(linked[2], path.join(dir, linked[1]));
      } else if (direct?.[1] !== undefined) {
        await fs.copyFile(direct[1], path.join(dir, LOADER_NAME));
        loader = true;
      }
    }
    if (!loader) throw new Error(`no dynamic loader in ldd ${strace} output:\n${ldd.stdout}`);
    await fs.copyFile(strace, path.join(dir, 'strace'));
    for (const file of await fs.readdir(dir)) await fs.chmod(path.join(dir, file), 0o755);
    await fs.chmod(dir, 0o755);
    return dir;
  })();
  return bundle;
}

// ------------------------------------------------------------------ host process helpers

/** Host pid -> parent pid, from /proc. */
async function processParents(): Promise<Map<number, number>> {
  const parent = new Map<number, number>();
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid ..." — comm may contain spaces and parentheses.
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(after[1]);
    if (Number.isFinite(ppid)) parent.set(Number(entry), ppid);
  }
  return parent;
}

/** Host pids of every process whose parent chain leads to `root` (not `root` itself). */
async function descendants(root: number): Promise<number[]> {
  const parent = await processParents();
  const out: number[] = [];
  const frontier = [root];
  while (frontier.length > 0) {
    const current = frontier.pop();
    for (const [pid, ppid] of parent) {
      if (ppid === current) {
        out.push(pid);
        frontier.push(pid);
      }
    }
  }
  return out;
}

function signalNumber(name: string): NodeJS.Signals | number {
  const trimmed = name.trim();
  if (trimmed === '') return 'SIGTERM';
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const full = (trimmed.startsWith('SIG') ? trimmed : `SIG${trimmed}`).toUpperCase();
  return full in os.constants.signals ? (full as NodeJS.Signals) : 'SIGTERM';
}

function kill(pid: number, signal: NodeJS.Signals | number): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

interface ImageConfig {
  Entrypoint: string[] | null;
  Cmd: string[] | null;
  User?: string;
  StopSignal?: string;
}

// ------------------------------------------------------------------ tracing

/** strace could not trace its child: the container's processes are traced by someone else. */
class PtraceDeniedError extends Error {}

const RUNTIME_COMMS = new Set(['dockerd', 'containerd', 'containerd-shim', 'containerd-shim-runc-v2', 'runc']);

/**
 * A tracer attached to dockerd, containerd, a shim or runc (e.g. `strace -f -p <containerd>` run
 * to measure the runtime's own syscalls) follows every container process, so strace inside a
 * container then cannot trace (PTRACE_TRACEME fails with EPERM). Returns "pid (command line)" of
 * such a tracer, if any.
 */
export async function runtimeTracer(): Promise<string | undefined> {
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = (await fs.readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '')).trim();
    if (!RUNTIME_COMMS.has(comm)) continue;
    const status = await fs.readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const tracer = Number(/^TracerPid:\s*(\d+)/m.exec(status)?.[1] ?? 0);
    if (tracer === 0) continue;
    const cmdline = (await fs.readFile(`/proc/${tracer}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
    return `pid ${tracer} (${cmdline || '?'}) traces ${comm} (pid ${entry})`;
  }
  return undefined;
}

/**
 * Runs `image` under strace (see the file comment) through start, smoke test and stop.
 * While some host tracer follows the container runtime (see runtimeTracer), waits for it to go
 * away (up to `waitForTracerMs`, default 10 min); if strace still cannot trace, retries twice.
 */
export async function traceImage(image: CorpusImage, options: TraceOptions = {}): Promise<TraceResult> {
  const waitUntil = performance.now() + (options.waitForTracerMs ?? 10 * 60_000);
  for (let attempt = 1; ; attempt++) {
    let reported = false;
    for (let tracer = await runtimeTracer(); tracer !== undefined; tracer = await runtimeTracer()) {
      if (performance.now() > waitUntil) throw new Error(`${image.name}: cannot trace while ${tracer}`);
      if (!reported) options.log?.(`waiting: ${tracer}`);
      reported = true;
      await sleep(2000);
    }
    try {
      return await traceOnce(image, options);
    } catch (error) {
      if (!(error instanceof PtraceDeniedError) || attempt >= 3) throw error;
      options.log?.(`${error.message}; retrying in 10 s`);
      await sleep(10_000);
    }
  }
}

async function traceOnce(image: CorpusImage, options: TraceOptions): Promise<TraceResult> {
  const log = options.log ?? (() => {});
  const bundleDir = await straceBundle();
  const config = JSON.parse(await dockerOk(['image', 'inspect', '-f', '{{json .Config}}', image.tag], { timeoutMs: 30_000 })) as ImageConfig;
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (argv.length === 0) throw new Error(`${image.tag} has neither Entrypoint nor Cmd`);

  await cleanupStaleContainers();
  const outDir = await fs.mkdtemp(path.join(os.tmpdir(), `dockergate-trace-${image.name}-`));
  await fs.chmod(outDir, 0o777); // the image's USER may not be root
  const name = containerName(image, 'trace');
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  track(name);
  try {
    const args = [
      'run', '-d', '--name', name, ...labelArgs(),
      '--cap-add', 'SYS_PTRACE', '--security-opt', 'seccomp=unconfined',
      '-v', `${bundleDir}:${TRACE_MOUNT}:ro`, '-v', `${outDir}:${TRACE_OUT_MOUNT}`,
      ...image.runArgs,
      '--entrypoint', `${TRACE_MOUNT}/${LOADER_NAME}`,
      image.tag,
      '--library-path', TRACE_MOUNT, `${TRACE_MOUNT}/strace`,
      '-f', '-qq', '-s', '64', '-o', `${TRACE_OUT_MOUNT}/trace`, '--', ...argv,
    ];
    log(`docker ${args.join(' ')}`);
    await dockerOk(args, { timeoutMs: 60_000 });

    const smoke = await waitForSmoke(image, name, deadline);
    const durationMs = Math.round(performance.now() - started);
    log(`smoke: ${smoke.passed ? 'passed' : 'FAILED'}: ${smoke.detail}`);

    // Stop: the image's stop signal to the top traced process, as `docker stop` would send it to
    // PID 1 (here strace is PID 1). Then SIGKILL to every traced process, then to the container.
    let ending: TraceResult['ending'] = 'exited';
    let exitCode: number | undefined;
    const state = await containerState(name);
    if (state?.status === 'running') {
      ending = 'stop-signal';
      const signal = signalNumber(config.StopSignal ?? '');
      const direct = [...(await processParents())].filter(([, ppid]) => ppid === state.pid).map(([pid]) => pid);
      log(`stop: ${String(signal)} to host pid(s) ${direct.join(', ')} (children of strace, host pid ${state.pid})`);
      for (const pid of direct) kill(pid, signal);
      exitCode = await waitExit(name, options.stopGraceMs ?? 5000);
      if (exitCode === undefined) {
        ending = 'killed';
        const all = await descendants(state.pid);
        log(`stop: still running, SIGKILL to ${all.length} processes`);
        for (const pid of all) kill(pid, 'SIGKILL');
        exitCode = await waitExit(name, 5000);
        if (exitCode === undefined) {
          await docker(['kill', name], { timeoutMs: 30_000 });
          exitCode = await waitExit(name, 10_000);
        }
      }
    } else {
      exitCode = state?.exitCode;
    }
    if (!smoke.passed) log(`logs:\n${await containerLogs(name, 30)}`);

    const traceFile = path.join(outDir, 'trace');
    const text = await fs.readFile(traceFile, 'utf8').catch(() => '');
    if (text === '') {
      const logs = await containerLogs(name, 30);
      const message = `${image.name}: no trace written (exit ${exitCode}); logs:\n${logs}`;
      if (/PTRACE_TRACEME.*Operation not permitted/.test(logs)) {
        throw new PtraceDeniedError(`${message}\n(the container's processes were already traced: a tracer attached to dockerd/containerd with -f?)`);
      }
      throw new Error(message);
    }
    if (options.saveTraceTo !== undefined) await fs.copyFile(traceFile, options.saveTraceTo);
    const { counts, tasks, execs, unparsed } = parseStrace(text);
    // Initial execve included: the entrypoint's exec is made under the profile too.
    return { image, syscalls: new Set(counts.keys()), counts, tasks, execs, unparsed, smoke, exitCode, ending, durationMs, traceBytes: Buffer.byteLength(text) };
  } finally {
    await removeContainer(name);
    await fs.rm(outDir, { recursive: true, force: true });
  }
}

/**
 * The ground truth for `image`: every syscall name its processes made from the entrypoint's
 * execve on, during start + smoke test (+ stop). Rejects if the smoke test did not pass under
 * strace (the trace would then not show the image working).
 */
export async function traceSyscalls(image: CorpusImage, options: TraceOptions = {}): Promise<Set<string>> {
  const result = await traceImage(image, options);
  if (!result.smoke.passed) throw new Error(`${image.name}: smoke test failed under strace: ${result.smoke.detail}`);
  return result.syscalls;
}

/**
 * Syscalls runc itself makes after it has installed the container's seccomp filter and before it
 * execs the entrypoint (so the profile must allow them, but they are not in the strace ground
 * truth). Measured on this machine (docker 20.10.24, runc 1.1.5) with audit.ts: a SCMP_ACT_LOG
 * profile, records with comm="runc:[2:INIT]"; fchown and newfstatat only for a non-root USER.
 * The second group is what runc's Go runtime may do at any moment (seen in some runs only).
 * bench/runtime-syscalls.ts (another module) measures the runtime's syscalls more thoroughly.
 */
export const RUNC_INIT_SYSCALLS: readonly string[] = [
  'capget', 'capset', 'chdir', 'close', 'epoll_ctl', 'execve', 'faccessat2', 'fchown', 'fcntl', 'fstat', 'fstatfs',
  'futex', 'getcwd', 'getdents64', 'getpid', 'getppid', 'newfstatat', 'openat', 'prctl', 'read', 'rt_sigreturn',
  'setgid', 'setgroups', 'setuid', 'write',
  'epoll_pwait', 'gettid', 'madvise', 'mmap', 'munmap', 'nanosleep', 'rt_sigaction', 'rt_sigprocmask', 'sched_yield',
  'sigaltstack', 'tgkill',
];

/** A Docker seccomp profile allowing exactly `syscalls` (everything else fails with EPERM). */
export function profileFor(syscalls: Iterable<string>): object {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: [...syscalls].sort(), action: 'SCMP_ACT_ALLOW' }],
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      verify: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const outDir = values.out ?? (values.verify ? await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-traces-')) : undefined);
  if (outDir !== undefined) await fs.mkdir(outDir, { recursive: true });
  let failed = 0;
  for (const image of selectImages(positionals)) {
    const options: TraceOptions = values.verbose ? { log: (m) => console.error(`  ${m}`) } : {};
    if (outDir !== undefined) options.saveTraceTo = path.join(outDir, `${image.name}.trace`);
    let line: string;
    try {
      const result = await traceImage(image, options);
      if (!result.smoke.passed) failed++;
      line =
        `${image.name.padEnd(22)} ${result.smoke.passed ? 'PASS' : 'FAIL'} ${String(result.syscalls.size).padStart(3)} syscalls ` +
        `${String(result.tasks).padStart(4)} tasks ${String(result.execs.length).padStart(3)} execs ` +
        `${(result.traceBytes / 1024).toFixed(0).padStart(6)} KiB  ${(result.durationMs / 1000).toFixed(1)}s to smoke, ${result.ending}` +
        (result.exitCode === undefined ? '' : ` (exit ${result.exitCode})`) +
        (result.unparsed.length > 0 ? `  ${result.unparsed.length} unparsed lines, e.g. ${JSON.stringify(result.unparsed[0])}` : '') +
        (result.smoke.passed ? '' : `\n    ${result.smoke.detail.replace(/\n/g, '\n    ')}`);
      if (outDir !== undefined) {
        const json = {
          image: image.tag,
          smoke: result.smoke,
          syscalls: [...result.syscalls].sort(),
          counts: Object.fromEntries([...result.counts].sort((a, b) => b[1] - a[1])),
          tasks: result.tasks,
          execs: result.execs,
          ending: result.ending,
          exitCode: result.exitCode,
        };
        await fs.writeFile(path.join(outDir, `${image.name}.json`), `${JSON.stringify(json, null, 2)}\n`);
      }
      if (values.verify && outDir !== undefined) {
        const allowed = new Set([...result.syscalls, ...RUNC_INIT_SYSCALLS]);
        const profilePath = path.join(outDir, `${image.name}.seccomp.json`);
        await fs.writeFile(profilePath, `${JSON.stringify(profileFor(allowed), null, 2)}\n`);
        const verified = await runWithProfile(image, profilePath);
        line +=
          `\n    profile traced + runc (${allowed.size} syscalls): ${verified.passed ? 'PASS' : 'FAIL'}: ` +
          tail(verified.detail, 3).replace(/\n/g, '\n    ');
      }
    } catch (error) {
      failed++;
      line = `${image.name.padEnd(22)} ERROR ${error instanceof Error ? error.message : String(error)}`;
    }
    console.log(line);
  }
  if (outDir !== undefined) console.log(`output in ${outDir}`);
  if (failed > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
