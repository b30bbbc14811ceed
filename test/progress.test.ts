/**
 * What `scan` and `analyze` show while they work: one line per phase when stderr is not a
 * terminal, bars with counts and an ETA on a real terminal (a pseudo-terminal from util-linux's
 * `script`), nothing with `--quiet`, and `--timings`' table. The image is an OCI layout of this
 * machine's dash and libc, so every object is analysed for real.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { lineProgress } from '../infra/progress.js';
import { PhaseTimer } from '../infra/timings.js';
import type { ScanDiff } from '../coordinator/output/report.js';
import { type EntrySpec, gzipLayer, writeOciLayout } from './helpers/layers.js';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'test/helpers/cli.ts'];

async function hostFile(file: string): Promise<EntrySpec> {
  return { name: file.slice(1), content: await fs.readFile(await fs.realpath(file)), mode: 0o755 };
}

describe('progress of the command line', () => {
  let work = '';
  let layout = '';

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-progress-'));
    layout = path.join(work, 'image');
    const files = await Promise.all(['/usr/bin/dash', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'].map(hostFile));
    await writeOciLayout(layout, {
      layers: [await gzipLayer([...files, { name: 'bin', type: 'symlink', linkname: 'usr/bin' }, { name: 'lib', type: 'symlink', linkname: 'usr/lib' }])],
      config: { Entrypoint: ['/usr/bin/dash', '-c', 'exit 0'] },
    });
  });

  after(async () => {
    await fs.rm(work, { recursive: true, force: true });
  });

  it('prints one line per phase when stderr is not a terminal, and the timings table with --timings', { timeout: 300_000 }, async () => {
    const cache = path.join(work, 'cache-lines');
    const { stdout, stderr } = await run(process.execPath, [...CLI, 'scan', `oci:${layout}`, '--cache-dir', cache, '-o', path.join(work, 'p.json'), '--timings']);
    assert.match(stdout, /wrote /);
    const lines = stderr.split('\n');
    assert.ok(lines.some((line) => /^dockergate layers: 1 read, [\d.]+ MiB, [\d.]+ s$/.test(line)), stderr);
    // dash, libc and the loader, each analysed now (a fresh cache).
    assert.ok(lines.some((line) => /^dockergate analysis: 3 objects \(0 known, 3 analysed, 0 failed\), [\d.]+ s$/.test(line)), stderr);
    assert.ok(lines.some((line) => /^dockergate link: 1 programs \(\d+ syscalls reached\), [\d.]+ s$/.test(line)), stderr);
    for (const phase of ['open', 'layers', 'analysis', 'link', 'plan', 'output', 'total']) assert.match(stderr, new RegExp(`^  ${phase} +[\\d.]+ s`, 'm'), `${phase} in\n${stderr}`);
    assert.match(stderr, /peak RSS \d+ MiB/);
    // No bar and no cursor control on a pipe.
    assert.doesNotMatch(stderr, /\x1b\[|█|░/);

    // Again: every object is known now; the stored scan answers at once, with no phase to show.
    const again = await run(process.execPath, [...CLI, 'scan', `oci:${layout}`, '--cache-dir', cache, '-o', path.join(work, 'p.json')]);
    assert.equal(again.stderr, '');
  });

  it('prints nothing on stderr with --quiet', { timeout: 300_000 }, async () => {
    const { stderr } = await run(process.execPath, [...CLI, 'scan', `oci:${layout}`, '--cache-dir', path.join(work, 'cache-quiet'), '-o', path.join(work, 'q.json'), '--quiet']);
    assert.equal(stderr, '');
  });

  it('draws bars with counts and an ETA on a terminal', { timeout: 300_000 }, async () => {
    const args = [process.execPath, ...CLI, 'scan', `oci:${layout}`, '--cache-dir', path.join(work, 'cache-tty'), '-o', path.join(work, 't.json')];
    const quoted = args.map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ');
    // script(1) runs the command on a pseudo-terminal and copies what it wrote to stdout.
    const { stdout } = await run('script', ['-qec', `${quoted} 2>&1 >/dev/null`, '/dev/null'], { env: { ...process.env, COLUMNS: '160', TERM: 'xterm' } });
    assert.match(stdout, /█|░/, 'a bar');
    assert.match(stdout, /\d+\/3 objects \| analysis \| .* \| ETA /, 'the analysis bar with its count and ETA');
    assert.match(stdout, /  analysis: 3 objects \(0 known, 3 analysed, 0 failed\)/, 'the phase line after the bar');
    assert.match(stdout, /  layers: 1 read/);
  });

  it('scan --json prints the report and explain --json the witness, as JSON on stdout', { timeout: 300_000 }, async () => {
    const cache = path.join(work, 'cache-json');
    const scan = await run(process.execPath, [...CLI, 'scan', `oci:${layout}`, '--cache-dir', cache, '-o', path.join(work, 'j.json'), '--report', path.join(work, 'r.json'), '--json', '-q']);
    const report = JSON.parse(scan.stdout) as { counts: { syscalls: number }; syscalls: Record<string, string[]> };
    assert.deepEqual(report, JSON.parse(await fs.readFile(path.join(work, 'r.json'), 'utf8')));
    assert.ok(report.counts.syscalls > 10);
    const explained = JSON.parse((await run(process.execPath, [...CLI, 'explain', `oci:${layout}`, 'exit_group', '--cache-dir', cache, '--json', '-q'])).stdout) as { allowed: boolean; witness: string[]; origin: string };
    assert.equal(explained.allowed, true);
    assert.deepEqual(explained.witness, report.syscalls.exit_group);
    assert.equal(explained.witness[0], 'entrypoint');
    const absent = JSON.parse((await run(process.execPath, [...CLI, 'explain', `oci:${layout}`, 'ptrace', '--cache-dir', cache, '--json', '-q'])).stdout) as { allowed: boolean };
    assert.equal(absent.allowed, report.syscalls.ptrace !== undefined);
  });

  it('diff --json says what diff prints, and nothing for an image against itself', { timeout: 300_000 }, async () => {
    const cache = path.join(work, 'cache-diff');
    // The same tree, started through the dynamic loader: one program more.
    const viaLoader = path.join(work, 'image-via-loader');
    const files = await Promise.all(['/usr/bin/dash', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'].map(hostFile));
    await writeOciLayout(viaLoader, {
      layers: [await gzipLayer([...files, { name: 'bin', type: 'symlink', linkname: 'usr/bin' }, { name: 'lib', type: 'symlink', linkname: 'usr/lib' }])],
      config: { Entrypoint: ['/lib64/ld-linux-x86-64.so.2', '/usr/bin/dash', '-c', 'exit 0'] },
    });
    const diff = async (...extra: string[]) => (await run(process.execPath, [...CLI, 'diff', `oci:${layout}`, `oci:${viaLoader}`, '--cache-dir', cache, '-q', ...extra])).stdout;
    const json = JSON.parse(await diff('--json')) as ScanDiff;
    const text = await diff();
    assert.equal(json.from.reference, `oci:${layout}`);
    assert.equal(json.to.reference, `oci:${viaLoader}`);
    assert.deepEqual(json.programs.added, ['/lib64/ld-linux-x86-64.so.2']);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines[0], `oci:${layout} → oci:${viaLoader}: ${json.from.syscalls} → ${json.to.syscalls} syscalls`);
    const expected = [
      ...json.programs.added.map((p) => `+ program ${p}`),
      ...json.programs.removed.map((p) => `- program ${p}`),
      ...json.objects.added.map((p) => `+ object ${p}`),
      ...json.objects.changed.map((p) => `~ object ${p} (changed)`),
      ...json.added.map(({ name, witness }) => `+ ${name}: ${[...witness].reverse().join(' ← ')}`),
      ...json.removed.map(({ name, witness }) => `- ${name}: was ${[...witness].reverse().join(' ← ')}`),
    ];
    const same = json.added.length === 0 && json.removed.length === 0;
    assert.deepEqual(lines.slice(1), same ? [...expected, 'same syscalls'] : expected);
    const self = JSON.parse((await run(process.execPath, [...CLI, 'diff', `oci:${layout}`, `oci:${layout}`, '--cache-dir', cache, '-q', '--json'])).stdout) as ScanDiff;
    assert.deepEqual([self.programs, self.objects, self.added, self.removed], [{ added: [], removed: [] }, { added: [], changed: [] }, [], []]);
  });

  it('analyze shows its phase too', { timeout: 120_000 }, async () => {
    const { stderr } = await run(process.execPath, [...CLI, 'analyze', '/usr/bin/dash', '--cache-dir', path.join(work, 'cache-analyze')]);
    assert.match(stderr, /^dockergate analysis: 1 files \(0 known, 1 analysed, 0 failed\), [\d.]+ s$/m);
  });
});

describe('lineProgress', () => {
  it('writes a line every heartbeat while a long phase runs, and one when it ends', async () => {
    const written: string[] = [];
    const stream = { write: (text: string) => written.push(text) } as unknown as NodeJS.WritableStream;
    const progress = lineProgress(stream, 20);
    const phase = progress.phase('analysis', 'objects');
    phase.add(2);
    phase.done('/lib/libc.so.6');
    await new Promise((resolve) => setTimeout(resolve, 70));
    phase.done('/lib/libm.so.6');
    phase.end('2 analysed');
    phase.end('again');
    assert.ok(written.some((line) => line === 'dockergate analysis: 1/2 objects so far, last /lib/libc.so.6\n'), written.join(''));
    assert.match(written.at(-1)!, /^dockergate analysis: 2 objects \(2 analysed\), [\d.]+ s\n$/);
    assert.equal(written.filter((line) => !line.includes('so far')).length, 1, 'ended once');
  });

  it('shows nothing for a phase that had no work', () => {
    const written: string[] = [];
    const progress = lineProgress({ write: (text: string) => written.push(text) } as unknown as NodeJS.WritableStream);
    progress.phase('link', 'programs').end('nothing');
    progress.stop();
    assert.deepEqual(written, []);
  });
});

describe('PhaseTimer', () => {
  it('sums each phase over its intervals and counts them', async () => {
    const timer = new PhaseTimer();
    await timer.time('analysis', () => new Promise((resolve) => setTimeout(resolve, 30)));
    await timer.time('analysis', () => new Promise((resolve) => setTimeout(resolve, 30)));
    timer.timeSync('link', () => 1);
    const [analysis, link] = timer.phases();
    assert.equal(analysis!.phase, 'analysis');
    assert.equal(analysis!.count, 2);
    assert.ok(analysis!.ms >= 55, String(analysis!.ms));
    assert.equal(link!.count, 1);
    assert.match(timer.text(), /^timings:\n  analysis +[\d.]+ s  \(2 times\)\n  link +[\d.]+ s\n  total /);
  });
});
