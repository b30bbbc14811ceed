/**
 * Every hostile case of `helpers/hostile-cases.ts` again, each in a child process of its own under
 * `strace -f` (issue 11, acceptance 1): the case must pass there too, within 20 s and 512 MiB of
 * RSS, and the trace must show that nothing was read that the input only points at (the
 * `outside` directory the escape cases aim at, /proc/self/environ, /etc/passwd, /etc/shadow) and
 * nothing written outside the case's sandbox (its input and cache dir), besides tsx's own cache.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { END_MARKER, START_MARKER } from './helpers/hostile-cases.js';
import { INSPECT_CASES, PLAN_CASES } from './helpers/hostile-suite.js';
import { tempDir } from './helpers/layers.js';

const TIME_BOUND_MS = 20_000;
const RSS_BOUND_KIB = 512 * 1024;
const TRACED = 'open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat';

interface ChildOutcome {
  readonly ok: boolean;
  readonly error?: string;
  readonly maxRssKiB: number;
}

/** One syscall line of strace's log that succeeded: its name, path and (for opens) flags. */
interface TracedCall {
  readonly call: string;
  readonly path: string;
  readonly flags: string;
}

/** The calls between the child's start and end markers: dockergate's, not the harness's set-up and checks. */
function tracedCalls(log: string): TracedCall[] {
  const calls: TracedCall[] = [];
  const lines = log.split('\n');
  const start = lines.findIndex((line) => line.includes(`/${START_MARKER}"`));
  const end = lines.findIndex((line) => line.includes(`/${END_MARKER}"`));
  assert.ok(start >= 0 && end > start, 'the child marked where dockergate starts and ends');
  for (const line of lines.slice(start + 1, end)) {
    const match = /^\d+\s+(\w+)\((?:AT_FDCWD|\d+)?,?\s*"((?:[^"\\]|\\.)*)"(?:,\s*([^)]*))?\)\s*=\s*(-?\d+)/.exec(line);
    if (!match || Number(match[4]) < 0) continue;
    calls.push({ call: match[1]!, path: match[2]!, flags: match[3] ?? '' });
  }
  return calls;
}

async function runIsolated(kind: 'inspect' | 'scan', index: number): Promise<{ outcome: ChildOutcome; ms: number; calls: TracedCall[]; sandbox: string }> {
  const sandbox = await tempDir('dockergate-isolated-');
  const log = path.join(os.tmpdir(), `${path.basename(sandbox)}.strace`);
  const started = performance.now();
  const child = spawn('strace', ['-f', '-qq', '-e', `trace=${TRACED}`, '-o', log, process.execPath, '--import', 'tsx', 'test/helpers/hostile-child.ts', kind, String(index), sandbox], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 3 * TIME_BOUND_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exit) => resolve(exit)));
  clearTimeout(killer);
  const ms = performance.now() - started;
  const calls = tracedCalls(await fs.readFile(log, 'utf8').catch(() => ''));
  await fs.rm(log, { force: true });
  await fs.rm(sandbox, { recursive: true, force: true });
  const line = stdout.trim().split('\n').pop() ?? '';
  assert.equal(code, 0, `the child exited ${code}: ${stderr.slice(-2000)}`);
  return { outcome: JSON.parse(line) as ChildOutcome, ms, calls, sandbox };
}

/** What no case may read: what the hostile inputs point at outside themselves. */
function forbiddenRead(call: TracedCall, sandbox: string): boolean {
  return call.path.startsWith(`${sandbox}/outside`) || ['/proc/self/environ', '/etc/passwd', '/etc/shadow'].includes(call.path);
}

function isWrite(call: TracedCall): boolean {
  if (call.call.startsWith('open') || call.call === 'creat') return call.call === 'creat' || /O_WRONLY|O_RDWR|O_CREAT/.test(call.flags);
  return true;
}

/** Where a case may write: its sandbox; besides, tsx's compile cache and devices. */
function allowedWrite(call: TracedCall, sandbox: string): boolean {
  return call.path.startsWith(`${sandbox}/`) || call.path === sandbox || call.path.startsWith(path.join(os.tmpdir(), 'tsx-')) || call.path.startsWith('/dev/');
}

const ALL = [...INSPECT_CASES.map((testCase, index) => ({ kind: 'inspect' as const, index, name: testCase.name })), ...PLAN_CASES.map((testCase, index) => ({ kind: 'scan' as const, index, name: testCase.name }))];

describe('hostile input, each case in its own process under strace', () => {
  it('has at least 100 cases', () => assert.ok(ALL.length >= 100, `${ALL.length} cases`));
  for (const { kind, index, name } of ALL) {
    it(`${kind}: ${name}`, { timeout: 4 * TIME_BOUND_MS }, async (t) => {
      const { outcome, ms, calls, sandbox } = await runIsolated(kind, index);
      t.diagnostic(`${Math.round(ms)} ms, ${Math.round(outcome.maxRssKiB / 1024)} MiB`);
      assert.ok(outcome.ok, outcome.error);
      assert.ok(ms < TIME_BOUND_MS, `took ${Math.round(ms)} ms`);
      assert.ok(outcome.maxRssKiB < RSS_BOUND_KIB, `peak RSS ${Math.round(outcome.maxRssKiB / 1024)} MiB`);
      const readOutside = calls.filter((call) => forbiddenRead(call, sandbox));
      assert.deepEqual(readOutside, [], 'opened what the input points at outside itself');
      const writtenOutside = calls.filter((call) => isWrite(call) && !allowedWrite(call, sandbox));
      assert.deepEqual(writtenOutside, [], 'written outside the sandbox');
    });
  }
});
