/**
 * Analyser benchmark: wall time, peak RSS and MB of code per second of the native analyser on
 * libc.so.6, bash and a large Go binary (dockerd), each analysed in its own process (so RSS is the
 * analysis's own), median of `--runs`.
 *
 *   npm run bench:analyse [-- --runs 3 --files /lib/x86_64-linux-gnu/libc.so.6,/usr/bin/bash]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { analyzeElf } from '../worker/native/analyser.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    files: { type: 'string', default: '/lib/x86_64-linux-gnu/libc.so.6,/usr/bin/bash,/usr/sbin/dockerd' },
    one: { type: 'string' },
  },
});

if (values.one) {
  // Child mode: analyse one file, print the figures as JSON.
  const bytes = fs.readFileSync(values.one);
  const started = performance.now();
  const facts = analyzeElf(bytes, 'bench', DEFAULT_LIMITS);
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(JSON.stringify({ seconds, stats: facts.stats, exports: facts.exports.length, reaches: facts.reaches.length }));
} else {
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const runOnce = (file: string): Promise<{ seconds: number; peakMiB: number; codeBytes: number; sites: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, '--import', 'tsx', import.meta.filename, '--one', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('close', (code) => {
        if (code !== 0) return reject(new Error(`${file}: exit ${code}: ${err}`));
        const result = JSON.parse(out) as { seconds: number; stats: { codeBytes: number; syscallSites: number; resolvedSites: number } };
        resolve({
          seconds: result.seconds,
          peakMiB: Number(err.trim().split('\n').pop()) / 1024,
          codeBytes: result.stats.codeBytes,
          sites: `${result.stats.resolvedSites}/${result.stats.syscallSites}`,
        });
      });
    });
  console.log('file                                   code MB   time s   MB/s   peak RSS MiB   sites resolved');
  for (const file of values.files.split(',')) {
    if (!fs.existsSync(file)) {
      console.log(`${file}: not present, skipped`);
      continue;
    }
    const runs = [];
    for (let i = 0; i < Number(values.runs); i++) runs.push(await runOnce(file));
    const seconds = median(runs.map((r) => r.seconds));
    const megabytes = runs[0]!.codeBytes / 1e6;
    console.log(
      `${file.padEnd(38)} ${megabytes.toFixed(2).padStart(7)}   ${seconds.toFixed(2).padStart(6)}   ${(megabytes / seconds).toFixed(1).padStart(5)}   ${median(runs.map((r) => r.peakMiB)).toFixed(0).padStart(12)}   ${runs[0]!.sites}`,
    );
  }
}
