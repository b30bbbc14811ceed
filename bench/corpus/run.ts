/**
 * Runs a corpus image under a seccomp profile and tells whether it still works (its smoke test
 * passes). Containers are labelled `dockergate.corpus=1` (plus the owning process in
 * `dockergate.corpus.owner`), always removed afterwards, and stale ones left by a dead process are
 * removed before each run.
 *
 *   node --import tsx bench/corpus/run.ts [--profile default|unconfined|PATH.json] [names...]
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { docker, sleep, tail } from './docker.js';
import { type CorpusImage, selectImages } from './images.js';

export const CORPUS_LABEL = 'dockergate.corpus';
export const OWNER_LABEL = 'dockergate.corpus.owner';
/** Default bound on start + smoke test. */
export const DEFAULT_TIMEOUT_MS = 60_000;

export type Profile = 'unconfined' | 'default' | string;

export interface RunOptions {
  /** Bound on container start + smoke test (default 60 s, the maximum the corpus needs). */
  timeoutMs?: number;
  /** `docker stop -t` for services (default 3 s; a few images ignore SIGTERM as PID 1). */
  stopTimeoutSeconds?: number;
  /** More `docker run` arguments, placed before the image's own runArgs. */
  extraArgs?: string[];
  /** Progress messages. */
  log?: (message: string) => void;
}

export interface RunResult {
  passed: boolean;
  detail: string;
  /** From `docker run` to the smoke test's verdict (stop and removal not included). */
  durationMs: number;
}

export interface SmokeResult {
  passed: boolean;
  detail: string;
}

// ------------------------------------------------------------------ container bookkeeping

const owner = `${os.hostname()}:${process.pid}`;
const live = new Set<string>();
let exitHooksInstalled = false;

function removeLiveSync(): void {
  if (live.size === 0) return;
  try {
    execFileSync('docker', ['rm', '-f', ...live], { stdio: 'ignore', timeout: 30_000 });
  } catch {
    /* best effort */
  }
  live.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', removeLiveSync);
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      removeLiveSync();
      process.exit(code);
    });
  }
}

/** Registers a container name for removal at process exit (until `forget`). */
export function track(name: string): void {
  installExitHooks();
  live.add(name);
}

export async function removeContainer(name: string): Promise<void> {
  await docker(['rm', '-f', '-v', name], { timeoutMs: 60_000 });
  live.delete(name);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes corpus containers whose owning process is gone (or unknown). Containers of live
 * processes on this host (another run in parallel) are left alone.
 */
export async function cleanupStaleContainers(): Promise<string[]> {
  const listed = await docker(
    ['ps', '-a', '--filter', `label=${CORPUS_LABEL}=1`, '--format', `{{.Names}}\t{{.Label "${OWNER_LABEL}"}}`],
    { timeoutMs: 30_000 },
  );
  if (listed.code !== 0) return [];
  const stale: string[] = [];
  for (const line of listed.stdout.split('\n')) {
    const [name = '', who = ''] = line.trim().split('\t');
    if (name === '') continue;
    const [host, pid] = who.split(':');
    const mine = host === os.hostname() && pid !== undefined && /^\d+$/.test(pid);
    if (mine && Number(pid) === process.pid && live.has(name)) continue;
    if (mine && Number(pid) !== process.pid && processAlive(Number(pid))) continue;
    if (host !== os.hostname() && who !== '') continue;
    stale.push(name);
  }
  if (stale.length > 0) await docker(['rm', '-f', '-v', ...stale], { timeoutMs: 60_000 });
  return stale;
}

/** A fresh container name for `image`. */
export function containerName(image: CorpusImage, purpose: string): string {
  return `dgc-${image.name}-${purpose}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The labels every corpus container carries. */
export function labelArgs(): string[] {
  return ['--label', `${CORPUS_LABEL}=1`, '--label', `${OWNER_LABEL}=${owner}`];
}

export function seccompArgs(profile: Profile): string[] {
  if (profile === 'default') return [];
  if (profile === 'unconfined') return ['--security-opt', 'seccomp=unconfined'];
  return ['--security-opt', `seccomp=${path.resolve(profile)}`];
}

interface ContainerState {
  status: string;
  exitCode: number;
  pid: number;
  error: string;
}

export async function containerState(name: string): Promise<ContainerState | undefined> {
  const result = await docker(['inspect', '-f', '{{.State.Status}}\t{{.State.ExitCode}}\t{{.State.Pid}}\t{{.State.Error}}', name], {
    timeoutMs: 30_000,
  });
  if (result.code !== 0) return undefined;
  const [status = '', exitCode = '0', pid = '0', error = ''] = result.stdout.trim().split('\t');
  return { status, exitCode: Number(exitCode), pid: Number(pid), error };
}

export async function containerLogs(name: string, lines = 15): Promise<string> {
  const result = await docker(['logs', '--tail', String(lines), name], { timeoutMs: 30_000 });
  return tail(`${result.stdout}${result.stderr}`, lines);
}

/** Waits for the container to exit; returns its exit code, or undefined if it still runs after `ms`. */
export async function waitExit(name: string, ms: number): Promise<number | undefined> {
  const result = await docker(['wait', name], { timeoutMs: Math.max(ms, 1) });
  if (result.timedOut || result.code !== 0) return undefined;
  const code = Number(result.stdout.trim());
  return Number.isFinite(code) ? code : undefined;
}

// ------------------------------------------------------------------ smoke tests

async function httpOnce(url: string, expectBody: string | undefined, timeoutMs: number): Promise<SmokeResult> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { connection: 'close' } });
    const body = await response.text();
    if (response.status !== 200) return { passed: false, detail: `GET ${url}: HTTP ${response.status}` };
    if (expectBody !== undefined && !body.includes(expectBody)) {
      return { passed: false, detail: `GET ${url}: 200 but body lacks ${JSON.stringify(expectBody)}: ${JSON.stringify(body.slice(0, 200))}` };
    }
    return { passed: true, detail: `GET ${url}: 200 (${body.length} bytes)` };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { passed: false, detail: `GET ${url}: ${cause ?? (error instanceof Error ? error.message : String(error))}` };
  }
}

async function sidecarOnce(
  image: CorpusImage,
  argv: string[],
  expectStdout: string | undefined,
  sidecarImage: string,
  timeoutMs: number,
): Promise<SmokeResult> {
  const [entrypoint, ...args] = argv;
  if (entrypoint === undefined) return { passed: false, detail: 'sidecar smoke test with an empty argv' };
  const name = containerName(image, 'sidecar');
  track(name);
  try {
    const result = await docker(
      ['run', '--name', name, ...labelArgs(), '--network', 'host', '--entrypoint', entrypoint, sidecarImage, ...args],
      { timeoutMs },
    );
    const out = result.stdout.trim();
    if (result.timedOut) return { passed: false, detail: `sidecar ${argv.join(' ')}: timed out after ${Math.round(timeoutMs)} ms` };
    if (result.code !== 0) {
      return { passed: false, detail: `sidecar ${argv[0]}: exit ${result.code}: ${tail(result.stderr + out, 3)}` };
    }
    if (expectStdout !== undefined && !out.includes(expectStdout)) {
      return { passed: false, detail: `sidecar ${argv[0]}: stdout ${JSON.stringify(out.slice(0, 200))} lacks ${JSON.stringify(expectStdout)}` };
    }
    return { passed: true, detail: `sidecar ${argv[0]}: ${JSON.stringify(out.slice(0, 80))}` };
  } finally {
    await removeContainer(name);
  }
}

/**
 * Waits until `container` (started from `image`) passes the image's smoke test, or the deadline
 * (a `performance.now()` value) passes, or a service container exits. For 'exit0' images, waits
 * for the container to exit and checks the exit code.
 */
export async function waitForSmoke(image: CorpusImage, container: string, deadline: number): Promise<SmokeResult> {
  const remaining = (): number => Math.max(0, deadline - performance.now());
  const smoke = image.smoke;
  if (smoke.kind === 'exit0') {
    const code = await waitExit(container, remaining());
    if (code === undefined) return { passed: false, detail: `still running after the time limit; logs:\n${await containerLogs(container)}` };
    if (code !== 0) return { passed: false, detail: `exit ${code}; logs:\n${await containerLogs(container)}` };
    return { passed: true, detail: `exit 0: ${tail(await containerLogs(container, 2), 1)}` };
  }
  if (smoke.kind === 'alive') {
    const until = performance.now() + smoke.seconds * 1000;
    while (performance.now() < until) {
      const state = await containerState(container);
      if (state?.status !== 'running') {
        return { passed: false, detail: `${state?.status ?? 'gone'} (exit ${state?.exitCode}) before ${smoke.seconds}s; logs:\n${await containerLogs(container)}` };
      }
      await sleep(Math.min(1000, Math.max(0, until - performance.now())));
    }
    const state = await containerState(container);
    return state?.status === 'running'
      ? { passed: true, detail: `alive after ${smoke.seconds}s` }
      : { passed: false, detail: `${state?.status ?? 'gone'} after ${smoke.seconds}s` };
  }
  let last: SmokeResult = { passed: false, detail: 'not tried' };
  let pause = 200;
  let attempts = 0;
  for (;;) {
    const state = await containerState(container);
    if (state?.status !== 'running') {
      return {
        passed: false,
        detail: `container ${state?.status ?? 'gone'} (exit ${state?.exitCode}${state?.error ? `, ${state.error}` : ''}) after ${attempts} attempts; last: ${last.detail}; logs:\n${await containerLogs(container)}`,
      };
    }
    attempts++;
    // One attempt may not outlast the deadline by much (but gets at least 2 s).
    last =
      smoke.kind === 'http'
        ? await httpOnce(smoke.url, smoke.expectBody, Math.round(Math.max(2000, Math.min(3000, remaining()))))
        : await sidecarOnce(image, smoke.argv, smoke.expectStdout, smoke.image ?? image.tag, Math.round(Math.max(2000, Math.min(15_000, remaining()))));
    if (last.passed) return { passed: true, detail: `${last.detail} (attempt ${attempts})` };
    if (remaining() <= pause) {
      return { passed: false, detail: `no success in ${attempts} attempts; last: ${last.detail}; logs:\n${await containerLogs(container)}` };
    }
    await sleep(pause);
    pause = Math.min(1000, pause * 2);
  }
}

// ------------------------------------------------------------------ runWithProfile

/**
 * Starts `image` with the given seccomp profile ('default' = Docker's built-in profile,
 * 'unconfined', or the path of a seccomp JSON file), waits for its smoke test (≤ 60 s by default),
 * then stops and removes the container.
 */
export async function runWithProfile(image: CorpusImage, profile: Profile, options: RunOptions = {}): Promise<RunResult> {
  const log = options.log ?? (() => {});
  await cleanupStaleContainers();
  const name = containerName(image, 'run');
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const elapsed = (): number => Math.round(performance.now() - started);
  track(name);
  try {
    const args = ['run', '-d', '--name', name, ...labelArgs(), ...seccompArgs(profile), ...(options.extraArgs ?? []), ...image.runArgs, image.tag];
    log(`docker ${args.join(' ')}`);
    const run = await docker(args, { timeoutMs: 60_000 });
    if (run.code !== 0) {
      // E.g. a profile that blocks what runc needs after installing the filter.
      return { passed: false, detail: `docker run failed: ${tail(run.stderr, 5)}`, durationMs: elapsed() };
    }
    const smoke = await waitForSmoke(image, name, deadline);
    const durationMs = elapsed();
    if (image.smoke.kind !== 'exit0') {
      const state = await containerState(name);
      if (state?.status === 'running') {
        await docker(['stop', '-t', String(options.stopTimeoutSeconds ?? 3), name], { timeoutMs: 60_000 });
      }
    }
    return { passed: smoke.passed, detail: smoke.detail, durationMs };
  } finally {
    await removeContainer(name);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { profile: { type: 'string', default: 'default' }, verbose: { type: 'boolean', default: false } },
  });
  let failed = 0;
  for (const image of selectImages(positionals)) {
    const result = await runWithProfile(image, values.profile, values.verbose ? { log: (m) => console.error(`  ${m}`) } : {});
    if (!result.passed) failed++;
    console.log(
      `${image.name.padEnd(22)} ${result.passed ? 'PASS' : 'FAIL'} ${`${(result.durationMs / 1000).toFixed(1)}s`.padStart(6)}  ${result.detail.replace(/\n/g, '\n    ')}`,
    );
  }
  if (failed > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
