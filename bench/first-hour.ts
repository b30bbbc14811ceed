/**
 * A newcomer's first hour, measured as they would see it: whole `dockergate` processes (the
 * compiled command, `node bin/dockergate.js`), wall time and peak RSS from GNU time, each figure
 * the median of `--runs` runs, with ratios against baselines measured in the same run:
 *
 *   - the knowledge base's cost for one command: `kb stats` on a fresh cache (it creates the
 *     SQLite file) and on an existing one, against `--version` (the same process without it);
 *   - a cold `scan` of a Debian-built service image from the loopback registry, against a cold
 *     `inspect` of the same image (fetch, decompress, hash, classify), and the warm rescan;
 *   - `analyze` of libc.so.6 with a fresh cache, against `radare2 -q -c aaa` on the same file.
 *
 *   npm run bench:first-hour [-- --runs 3 --image dockergate-corpus/nginx:1 --libc /lib/x86_64-linux-gnu/libc.so.6]
 *
 * Needs what the test setup prepares (infra/setup/test-env.sh: dockerd, the registry on
 * 127.0.0.1:5000, skopeo, radare2, GNU time) and the corpus image (bench/corpus/build.ts); the
 * image is copied into the registry first. Prints a Markdown table; targets are in the README.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { locateRadare2, radare2Version } from '../worker/radare2/locate.js';

const run = promisify(execFile);
const CHECKOUT = path.resolve(import.meta.dirname, '..');
const DOCKERGATE = [process.execPath, path.join(CHECKOUT, 'bin', 'dockergate.js')];
const REGISTRY = '127.0.0.1:5000';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    image: { type: 'string', default: 'dockergate-corpus/nginx:1' },
    libc: { type: 'string', default: '/lib/x86_64-linux-gnu/libc.so.6' },
  },
});
const runs = Number(values.runs);

interface Measured {
  readonly seconds: number;
  readonly rssMiB: number;
}

/** One process under GNU time: its wall time and peak RSS. */
async function measure(argv: readonly string[]): Promise<Measured> {
  const { stderr } = await run('/usr/bin/time', ['-f', 'dockergate-bench %e %M', ...argv], { maxBuffer: 256 * 1024 * 1024, timeout: 1_800_000 }).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`${argv.join(' ')} failed: ${err.stderr ?? err.message}`);
  });
  const line = stderr.split('\n').find((text) => text.startsWith('dockergate-bench '))!;
  const [, seconds, kib] = line.split(' ');
  return { seconds: Number(seconds), rssMiB: Number(kib) / 1024 };
}

const median = (numbers: readonly number[]): number => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)]!;

/** `runs` measurements, `prepare` (untimed) before each; the medians of time and RSS. */
async function medianOf(argv: () => readonly string[], prepare: () => Promise<void> = async () => {}): Promise<Measured> {
  const all: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    await prepare();
    all.push(await measure(argv()));
  }
  return { seconds: median(all.map((m) => m.seconds)), rssMiB: median(all.map((m) => m.rssMiB)) };
}

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-first-hour-'));
const fresh = (name: string) => async () => fs.rm(path.join(work, name), { recursive: true, force: true });
const cache = (name: string) => ['--cache-dir', path.join(work, name)];
const quiet = ['--quiet'];

try {
  const radare2 = locateRadare2();
  const remote = `docker://${REGISTRY}/first-hour/${values.image!.split('/').at(-1)}`;
  await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `docker-daemon:${values.image}`, remote], { timeout: 600_000 });
  console.log(`dockergate first hour: ${runs} runs each, median; ${os.cpus().length} cores; ${await radare2Version(radare2)}\n`);

  const version = await medianOf(() => [...DOCKERGATE, '--version']);
  const kbFresh = await medianOf(() => [...DOCKERGATE, 'kb', 'stats', ...cache('kb')], fresh('kb'));
  const kbAgain = await medianOf(() => [...DOCKERGATE, 'kb', 'stats', ...cache('kb')]);

  const inspectCold = await medianOf(() => [...DOCKERGATE, 'inspect', remote, ...cache('inspect'), ...quiet], fresh('inspect'));
  const scanCold = await medianOf(() => [...DOCKERGATE, 'scan', remote, ...cache('scan'), '-o', path.join(work, 'profile.json'), ...quiet], fresh('scan'));
  const scanWarm = await medianOf(() => [...DOCKERGATE, 'scan', remote, ...cache('scan'), '-o', path.join(work, 'profile.json'), ...quiet]);

  const analyzeCold = await medianOf(() => [...DOCKERGATE, 'analyze', values.libc!, ...cache('analyze'), ...quiet], fresh('analyze'));
  const radare2Aaa = await medianOf(() => [radare2, '-q', '-e', 'bin.cache=true', '-c', 'aaa', values.libc!]);

  const row = (what: string, m: Measured, baseline: string, ratio: string, target: string) =>
    `| ${what} | ${m.seconds.toFixed(2)} s | ${m.rssMiB.toFixed(0)} MiB | ${baseline} | ${ratio} | ${target} |`;
  const ms = (seconds: number) => `${(seconds * 1000).toFixed(0)} ms`;
  console.log('| command | time | peak RSS | baseline | ratio / overhead | target |');
  console.log('|---|---|---|---|---|---|');
  console.log(row('`--version` (process start, no knowledge base)', version, '', '', ''));
  console.log(row('`kb stats`, fresh cache (creates the knowledge base)', kbFresh, '`--version`', `+${ms(kbFresh.seconds - version.seconds)}, +${(kbFresh.rssMiB - version.rssMiB).toFixed(0)} MiB`, '≤ 0.2 s, ≤ 100 MiB'));
  console.log(row('`kb stats`, existing knowledge base', kbAgain, '`--version`', `+${ms(kbAgain.seconds - version.seconds)}, +${(kbAgain.rssMiB - version.rssMiB).toFixed(0)} MiB`, '≤ 0.2 s, ≤ 100 MiB'));
  console.log(row(`cold \`inspect\` of ${values.image} (loopback registry)`, inspectCold, '', '', ''));
  console.log(row(`cold \`scan\` of ${values.image}`, scanCold, 'cold `inspect`', `${(scanCold.seconds / inspectCold.seconds).toFixed(2)}×`, '≤ 2×, ≤ 400 MiB'));
  console.log(row('warm rescan (same cache)', scanWarm, 'cold `scan`', `${((100 * scanWarm.seconds) / scanCold.seconds).toFixed(1)} %`, '≤ 3 %'));
  console.log(row(`\`analyze ${values.libc}\`, fresh cache`, analyzeCold, '`radare2 -c aaa`', `${(radare2Aaa.seconds / analyzeCold.seconds).toFixed(1)}× faster`, '≥ 20× faster'));
  console.log(row(`\`radare2 -q -c aaa ${values.libc}\``, radare2Aaa, '', '', ''));
} finally {
  await fs.rm(work, { recursive: true, force: true });
}
