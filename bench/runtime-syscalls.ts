/**
 * Measures which syscalls the container runtime itself makes between loading the seccomp filter and
 * exec'ing the entrypoint (runc under Docker); `coordinator/plan/runtime-syscalls.ts` records the result.
 *
 *   node --import tsx bench/runtime-syscalls.ts [--image dockergate-test/base:bookworm]
 *        [--variants root,user,named,readonly] [--trace 10] [--repeat 30] [--json out.json]
 *
 * The entrypoint is a static program built here with `-nostdlib` whose only syscall is `exit_group(0)`
 * (inline asm), bind-mounted into the image: every other syscall after the filter is the runtime's.
 * Profiles are written by `coordinator/output/policy.ts` exactly as the product writes them (EPERM default
 * plus the ENOSYS rule); candidates are Docker's unconditional default list, under which the probe
 * starts. A run passes when `docker run` exits 0.
 *
 * `runc init` is a Go program, and some of its syscalls happen only in some starts (`rt_sigreturn`
 * after the scheduler's SIGURG preemption signal). A single run therefore cannot prove a syscall
 * unneeded, and a flaky failure must not make one look needed. So, per variant:
 *
 * 1. trace (once, before any variant): `strace -f` attached to containerd for `--trace` starts of
 *    every variant under the full list; every syscall a runc init (and the threads it clones) makes
 *    after loading its filter and before exec'ing the probe is "observed". The union over variants
 *    is used for each: the Go runtime's occasional calls do not depend on the variant, and ten starts
 *    may miss one that a quarter of the starts make;
 * 2. the never-observed candidates are removed by delta debugging (chunks, halved on failure, a
 *    single name kept only if it fails three times) while every observed one stays allowed;
 * 3. each observed name is removed in turn: needed if the run fails (the error Docker prints is its
 *    reason), else tried `--repeat` times more and needed if any of them fails ("sometimes"); else it
 *    stays out for the following names;
 * 4. the result is run `--repeat` times.
 *
 * Without strace, step 2 runs over all candidates, and step 3 only over the names it kept.
 * Variants: `root` (image default user), `user` (`--user 1000:1000`), `named` (`--user nobody`,
 * looked up in the image's /etc/passwd after the filter), `readonly` (`--read-only`).
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { Platform } from '../extractor/types.js';
import { dockerProfile } from '../coordinator/output/policy.js';
import { DEFAULT_PROFILE_SYSCALLS } from '../coordinator/plan/platforms.js';

const run = promisify(execFile);

const VARIANTS: Readonly<Record<string, readonly string[]>> = {
  root: [],
  user: ['--user', '1000:1000'],
  named: ['--user', 'nobody'],
  readonly: ['--read-only'],
};

/** DESIGN.md's expectation, printed next to the measurement. */
const EXPECTED = ['capget', 'capset', 'setgroups', 'setgid', 'setuid', 'prctl', 'chdir', 'getcwd', 'fstat', 'fstatfs', 'getdents64', 'getppid', 'futex', 'execve'];

/** The probe entrypoint: exit_group(0) and nothing else, no libc, no dynamic loader. */
const PROBE_SOURCE: Readonly<Record<string, string>> = {
  x86_64: 'void _start(void) { __asm__ volatile("mov $231, %eax\\n xor %edi, %edi\\n syscall\\n hlt"); }\n',
  aarch64: 'void _start(void) { __asm__ volatile("mov x8, #94\\n mov x0, #0\\n svc #0\\n brk #0"); }\n',
};
const PROBE_SYSCALL = 'exit_group';
const PROBE_PATH = '/dockergate-probe';
/** How runc loads the filter: `prctl(PR_SET_SECCOMP, ...)` in runc 1.1, `seccomp(2)` with a program elsewhere. */
const FILTER_LOAD = /^(prctl\(PR_SET_SECCOMP, SECCOMP_MODE_FILTER|seccomp\(SECCOMP_SET_MODE_FILTER, [^,]*, \{len=)/;

interface Outcome {
  readonly ok: boolean;
  readonly error: string;
}

const { values } = parseArgs({
  options: {
    image: { type: 'string', default: 'dockergate-test/base:bookworm' },
    variants: { type: 'string', default: Object.keys(VARIANTS).join(',') },
    trace: { type: 'string', default: '10' },
    repeat: { type: 'string', default: '30' },
    chunk: { type: 'string', default: '16' },
    json: { type: 'string' },
  },
});
const repeat = Number(values.repeat);
const traceCount = Number(values.trace);

const machine = os.machine();
const platform: Platform = { os: 'linux', architecture: machine === 'aarch64' ? 'arm64' : machine === 'x86_64' ? 'amd64' : machine };
const source = PROBE_SOURCE[machine];
if (!source) throw new Error(`no probe program for ${machine}`);

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-runtime-syscalls-'));
const probe = path.join(work, 'probe');
await fs.writeFile(`${probe}.c`, source);
await run('gcc', ['-static', '-nostdlib', '-nostartfiles', '-O2', '-o', probe, `${probe}.c`]);
await run(probe); // exits 0 on the host, or this throws

const info = JSON.parse((await run('docker', ['info', '--format', '{{json .}}'])).stdout) as {
  ServerVersion: string;
  KernelVersion: string;
  DefaultRuntime: string;
};
const runcVersion = (await run('runc', ['--version']).catch(() => ({ stdout: 'runc not on PATH' }))).stdout.split('\n')[0] ?? '';
const haveStrace = traceCount > 0 && (await run('strace', ['-V']).then(() => true, () => false));
console.log(`docker ${info.ServerVersion}, runtime ${info.DefaultRuntime} (${runcVersion}), kernel ${info.KernelVersion}, ${machine}`);
console.log(`image ${values.image}; probe makes only ${PROBE_SYSCALL}; ${haveStrace ? `${traceCount} traced starts per variant` : 'no strace: delta debugging only'}\n`);

let runs = 0;
let profileSeq = 0;

/** One `docker run` of the probe under a profile allowing `names` (+ the probe's own syscall). */
async function attempt(names: readonly string[], variantArgs: readonly string[]): Promise<Outcome> {
  runs++;
  const file = path.join(work, `profile-${profileSeq++ % 4}.json`);
  await fs.writeFile(file, JSON.stringify(dockerProfile([...names, PROBE_SYSCALL], platform)));
  const args = [
    'run', '--rm', '--network', 'none', '--label', 'dockergate.bench=runtime-syscalls',
    '--security-opt', `seccomp=${file}`, '-v', `${probe}:${PROBE_PATH}:ro`, '--entrypoint', PROBE_PATH,
    ...variantArgs, values.image,
  ];
  try {
    await run('docker', args, { timeout: 60_000 });
    return { ok: true, error: '' };
  } catch (err) {
    const e = err as { code?: number; stderr?: string; killed?: boolean };
    const message = (e.stderr ?? '').trim().replace(/^docker: Error response from daemon: /, '').split('\n')[0] ?? '';
    return { ok: false, error: e.killed ? 'timeout' : `exit ${e.code}: ${message}` };
  }
}

/** The failures among `times` runs. */
async function failures(names: readonly string[], variantArgs: readonly string[], times: number): Promise<string[]> {
  const failed: string[] = [];
  for (let i = 0; i < times; i++) {
    const outcome = await attempt(names, variantArgs);
    if (!outcome.ok) failed.push(outcome.error);
  }
  return failed;
}

/** Per syscall name: in how many starts a runc init made it after loading its filter (strace -f of containerd). */
function postFilterSyscalls(trace: string): { seen: Map<string, number>; starts: number } {
  const seen = new Map<string, number>();
  const filtered = new Map<number, Set<string>>(); // thread id -> the names of its start
  let starts = 0;
  for (const line of trace.split('\n')) {
    const match = /^(\d+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const pid = Number(match[1]);
    const rest = match[2]!;
    const names = filtered.get(pid);
    const resumed = /^<\.\.\. (clone3?) resumed>.*= (\d+)$/.exec(rest);
    if (resumed && names) filtered.set(Number(resumed[2]), names); // threads cloned after the filter inherit it
    if (FILTER_LOAD.test(rest)) {
      filtered.set(pid, new Set());
      continue;
    }
    const call = /^(\w+)\(/.exec(rest);
    if (!call || !names) continue;
    const name = call[1]!;
    if (name === 'execve') {
      filtered.delete(pid);
      // Only the probe's starts count: other containers may start on the same daemon meanwhile.
      if (!rest.startsWith(`execve("${PROBE_PATH}"`)) continue;
      starts++;
      for (const made of names) seen.set(made, (seen.get(made) ?? 0) + 1);
      continue;
    }
    names.add(name);
    const child = /= (\d+)$/.exec(rest);
    if (child && (name === 'clone' || name === 'clone3')) filtered.set(Number(child[1]), names);
  }
  return { seen, starts };
}

/** `count` starts of each variant under `names` with strace attached to containerd (runc's parent). */
async function traceStarts(names: readonly string[], variants: readonly (readonly string[])[], count: number) {
  const pids = (await run('pidof', ['containerd'])).stdout.trim().split(/\s+/);
  const out = path.join(work, 'strace.txt');
  const strace = spawn('strace', ['-f', '-qq', '-s', '64', '-o', out, ...pids.flatMap((pid) => ['-p', pid])], { stdio: 'ignore' });
  const exited = new Promise((resolve) => strace.once('exit', resolve));
  try {
    await new Promise((resolve) => setTimeout(resolve, 2000)); // let strace attach to every thread
    for (const variantArgs of variants) for (let i = 0; i < count; i++) await attempt(names, variantArgs);
  } finally {
    strace.kill('SIGINT');
    await exited;
  }
  const result = postFilterSyscalls(await fs.readFile(out, 'utf8'));
  await fs.rm(out, { force: true });
  return result;
}

/**
 * Delta debugging of `candidates` while `fixed` stays allowed: chunks are removed while runs pass, a
 * failing chunk is halved, and a single name is kept only if three runs without it fail (a flaky
 * failure must not make a syscall look needed).
 */
async function minimise(candidates: readonly string[], fixed: readonly string[], variantArgs: readonly string[]): Promise<string[]> {
  let current = [...candidates];
  const tryRemove = async (chunk: readonly string[]): Promise<void> => {
    const without = new Set(chunk);
    const rest = () => [...fixed, ...current.filter((name) => !without.has(name))];
    let ok = (await attempt(rest(), variantArgs)).ok;
    if (!ok && chunk.length === 1) ok = (await attempt(rest(), variantArgs)).ok || (await attempt(rest(), variantArgs)).ok;
    if (ok) {
      current = current.filter((name) => !without.has(name));
      return;
    }
    if (chunk.length === 1) return;
    const half = Math.ceil(chunk.length / 2);
    await tryRemove(chunk.slice(0, half));
    await tryRemove(chunk.slice(half));
  };
  const size = Number(values.chunk);
  for (let i = 0; i < candidates.length; i += size) await tryRemove(candidates.slice(i, i + size));
  return current;
}

interface Needed {
  /** `always`: the first run without it failed; `sometimes`: a later one of `--repeat` did. */
  readonly how: 'always' | 'sometimes';
  /** The error Docker printed for the failing run. */
  readonly error: string;
  /** Failing runs / runs without it. */
  readonly failed: string;
  /** Starts that made it / traced starts, when traced. */
  readonly seen?: string;
}

interface VariantResult {
  readonly variant: string;
  readonly args: readonly string[];
  readonly needed: Record<string, Needed>;
  /** Observed after the filter, but every run without it passed: starts / traced starts. */
  readonly observedNotNeeded: Record<string, string>;
  readonly stability: string;
  readonly stabilityFailures: string[];
  readonly seconds: number;
  readonly runs: number;
}

const candidates = DEFAULT_PROFILE_SYSCALLS(platform).filter((name) => name !== PROBE_SYSCALL);
const variants = values.variants.split(',');
for (const variant of variants) {
  const variantArgs = VARIANTS[variant];
  if (!variantArgs) throw new Error(`unknown variant ${variant} (known: ${Object.keys(VARIANTS).join(', ')})`);
  const baseline = await attempt(candidates, variantArgs);
  if (!baseline.ok) throw new Error(`${variant}: fails even under Docker's default list: ${baseline.error}`);
}

// 1. trace every variant.
const traceStarted = performance.now();
const traced = haveStrace ? await traceStarts(candidates, variants.map((variant) => VARIANTS[variant]!), traceCount) : undefined;
const observed = traced ? candidates.filter((name) => traced.seen.has(name)) : [];
if (traced) {
  console.log(`traced ${traced.starts} starts in ${((performance.now() - traceStarted) / 1000).toFixed(0)} s; observed after the filter:`);
  console.log(`  ${[...traced.seen].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, count]) => `${name} ${count}`).join(', ')}\n`);
}

const results: VariantResult[] = [];
for (const variant of variants) {
  const variantArgs = VARIANTS[variant]!;
  const started = performance.now();
  const runsBefore = runs;

  // 2. delta debugging of what was never observed.
  const unobservedKept = await minimise(candidates.filter((name) => !observed.includes(name)), observed, variantArgs);

  // 3. each observed (or, without strace, each kept) name removed in turn, with repeats.
  let current = [...observed, ...unobservedKept].sort();
  const needed: Record<string, Needed> = {};
  const observedNotNeeded: Record<string, string> = {};
  const seenShare = (name: string) => (traced ? `${traced.seen.get(name) ?? 0}/${traced.starts}` : undefined);
  for (const name of [...current]) {
    const without = current.filter((n) => n !== name);
    const first = await attempt(without, variantArgs);
    const seen = seenShare(name);
    if (!first.ok) {
      needed[name] = { how: 'always', error: first.error, failed: '1/1', ...(seen ? { seen } : {}) };
      continue;
    }
    const later = await failures(without, variantArgs, repeat);
    if (later.length > 0) {
      needed[name] = { how: 'sometimes', error: later[0]!, failed: `${later.length}/${repeat + 1}`, ...(seen ? { seen } : {}) };
      continue;
    }
    current = without;
    if (seen) observedNotNeeded[name] = seen;
  }

  // 4. stability of the result.
  const stabilityFailures = await failures(current, variantArgs, repeat);
  const result: VariantResult = {
    variant,
    args: variantArgs,
    needed,
    observedNotNeeded,
    stability: `${repeat - stabilityFailures.length}/${repeat}`,
    stabilityFailures,
    seconds: Math.round((performance.now() - started) / 1000),
    runs: runs - runsBefore,
  };
  results.push(result);
  console.log(`== ${variant} (${variantArgs.join(' ') || 'image defaults'}): ${Object.keys(needed).length} syscalls, ${result.runs} runs, ${result.seconds} s`);
  for (const [name, why] of Object.entries(needed)) {
    console.log(`  ${name.padEnd(14)} ${why.how.padEnd(9)} failed ${why.failed}${why.seen ? `, seen in ${why.seen} starts` : ''}: ${why.error}`);
  }
  for (const [name, seen] of Object.entries(observedNotNeeded)) console.log(`  (${name}: seen in ${seen} traced starts of all variants, never needed)`);
  console.log(`  stability: ${result.stability} runs of the result passed`);
  for (const failure of stabilityFailures) console.log(`    failed: ${failure}`);
}

const union = [...new Set(results.flatMap((r) => Object.keys(r.needed)))].sort();
console.log(`\nunion (${union.length}): ${union.join(' ')}`);
for (const name of union) {
  const where = results.filter((r) => name in r.needed).map((r) => r.variant);
  console.log(`  ${name.padEnd(14)} ${where.length === results.length ? 'all variants' : where.join(',')}`);
}
console.log(`DESIGN.md expected but not needed: ${EXPECTED.filter((n) => !union.includes(n)).join(' ') || '-'}`);
console.log(`needed but not in DESIGN.md's list: ${union.filter((n) => !EXPECTED.includes(n)).join(' ') || '-'}`);
console.log(`total: ${runs} container runs`);
if (values.json) {
  const report = {
    docker: info.ServerVersion,
    runc: runcVersion,
    kernel: info.KernelVersion,
    machine,
    image: values.image,
    observed: traced ? Object.fromEntries([...traced.seen].sort(([a], [b]) => (a < b ? -1 : 1))) : null,
    tracedStarts: traced?.starts ?? 0,
    results,
    union,
  };
  await fs.writeFile(values.json, `${JSON.stringify(report, null, 2)}\n`);
}
await fs.rm(work, { recursive: true, force: true });
