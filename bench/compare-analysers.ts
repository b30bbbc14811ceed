/**
 * Both analysers on the same files: wall time per file and per MB of code (native in-process;
 * radare2 including its process), the ratio radare2/native measured in the same run, syscall
 * sites found and resolved by each, and how far their syscall sets agree (every syscall any root
 * of the object reaches).
 *
 *   npm run bench:analysers [-- --files /lib/x86_64-linux-gnu/libc.so.6,/usr/bin/bash,...]
 *
 * The default files are libc.so.6, bash, musl's libc.so and the Go ground-truth fixture (built and
 * cached by the test helpers). Policy sizes and pass rates per corpus image come from
 * `npm run bench:corpus -- --analyser radare2` against `npm run bench:corpus`.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { type ObjectFacts, syscallsOfObject } from '../store/facts.js';
import { analyzeElf } from '../worker/native/analyser.js';
import { Radare2Analyser } from '../worker/radare2/analyser.js';
import { locateRadare2, radare2Version } from '../worker/radare2/locate.js';
import { buildFixture } from '../test/helpers/ground-truth.js';
import { sha256 } from '../test/helpers/layers.js';

const { values } = parseArgs({ options: { files: { type: 'string' } } });

async function defaultFiles(): Promise<string[]> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-bench-'));
  const go = await buildFixture('go', 'go', work);
  return ['/lib/x86_64-linux-gnu/libc.so.6', '/usr/bin/bash', await fs.realpath('/lib/ld-musl-x86_64.so.1'), go];
}

async function timed(run: () => Promise<ObjectFacts> | ObjectFacts): Promise<{ facts: ObjectFacts; seconds: number }> {
  const started = performance.now();
  const facts = await run();
  return { facts, seconds: (performance.now() - started) / 1000 };
}

const binary = locateRadare2();
console.log(`${await radare2Version(binary)} (${binary}); ${os.cpus().length} cores\n`);
const radare2 = new Radare2Analyser(DEFAULT_LIMITS, binary);
const context = { signal: new AbortController().signal, working: () => {} };
console.log('| file | code MB | native s | radare2 s | radare2/native | native MB/s | radare2 MB/s | sites resolved native | sites resolved radare2 | syscalls native | syscalls radare2 | both | only native | only radare2 |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
let nativeTotal = 0;
let radare2Total = 0;
for (const file of values.files ? values.files.split(',') : await defaultFiles()) {
  const bytes = await fs.readFile(file);
  const sha = sha256(bytes);
  const native = await timed(() => analyzeElf(bytes, sha, DEFAULT_LIMITS));
  const started = performance.now();
  const viaRadare2 = await timed(() => radare2.analyze(bytes, sha, context)).catch((error: unknown) => error as Error);
  if (viaRadare2 instanceof Error) {
    // A limit (radare2TimeoutMs) is a result too: the scan would record the object as failed.
    console.log(`| ${path.basename(file)} | ${(native.facts.stats.codeBytes / 1e6).toFixed(2)} | ${native.seconds.toFixed(2)} | failed after ${((performance.now() - started) / 1000).toFixed(0)} s: ${viaRadare2.message} | | | | | | | | | | |`);
    continue;
  }
  nativeTotal += native.seconds;
  radare2Total += viaRadare2.seconds;
  const megabytes = native.facts.stats.codeBytes / 1e6;
  const a = syscallsOfObject(native.facts);
  const b = syscallsOfObject(viaRadare2.facts);
  const both = [...a].filter((name) => b.has(name)).length;
  const sites = (facts: ObjectFacts): string => `${facts.stats.resolvedSites}/${facts.stats.syscallSites}`;
  const onlyNative = [...a].filter((name) => !b.has(name));
  const onlyRadare2 = [...b].filter((name) => !a.has(name));
  console.log(
    `| ${path.basename(file)} | ${megabytes.toFixed(2)} | ${native.seconds.toFixed(2)} | ${viaRadare2.seconds.toFixed(2)} | ${(viaRadare2.seconds / native.seconds).toFixed(1)}× | ${(megabytes / native.seconds).toFixed(1)} | ${(megabytes / viaRadare2.seconds).toFixed(2)} | ${sites(native.facts)} | ${sites(viaRadare2.facts)} | ${a.size} | ${b.size} | ${both} | ${onlyNative.length}${onlyNative.length ? ` (${onlyNative.slice(0, 6).join(' ')}${onlyNative.length > 6 ? ' …' : ''})` : ''} | ${onlyRadare2.length}${onlyRadare2.length ? ` (${onlyRadare2.slice(0, 6).join(' ')}${onlyRadare2.length > 6 ? ' …' : ''})` : ''} |`,
  );
}
console.log(`\ntotal: native ${nativeTotal.toFixed(1)} s, radare2 ${radare2Total.toFixed(1)} s (${(radare2Total / nativeTotal).toFixed(1)}×)`);
