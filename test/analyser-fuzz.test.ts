/**
 * Fuzzing the whole native analyser (ELF reader + decoder + call graph + summaries): mutated
 * fixture binaries and libc must end in facts or in dockergate's own typed errors, never in a crash,
 * another exception type or a hang. Deterministic (seeded); `DOCKERGATE_FUZZ_ITERATIONS` sets the
 * count (default 10,000; a longer run: DOCKERGATE_FUZZ_ITERATIONS=200000).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { DockergateError } from '../infra/errors.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { analyzeElf } from '../worker/native/analyser.js';
import { buildFixture } from './helpers/ground-truth.js';
import { tempDir } from './helpers/layers.js';
import { mutate, prng } from './helpers/mutate.js';

const ITERATIONS = Number(process.env.DOCKERGATE_FUZZ_ITERATIONS ?? 10_000);
/** One input's analysis time beyond which we call it a hang (the real bound is the pool's timeout). */
const SLOW_MS = 5_000;

let work: string;
const seeds: { name: string; bytes: Uint8Array; weight: number }[] = [];

before(async () => {
  work = await tempDir('dockergate-fuzz-');
  for (const [name, toolchain, weight] of [
    ['hello', 'glibc-dynamic', 6],
    ['direct-syscall', 'musl-static', 3],
  ] as const) {
    seeds.push({ name: `${name}.${toolchain}`, bytes: await fs.readFile(await buildFixture(name, toolchain, work)), weight });
  }
  seeds.push({ name: 'libc.so.6', bytes: await fs.readFile('/lib/x86_64-linux-gnu/libc.so.6'), weight: 0 });
});

after(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('analyser fuzzing', () => {
  it(`${ITERATIONS} mutated binaries end in facts or typed errors`, { timeout: 60 * 60_000 }, () => {
    const random = prng(0x5eed);
    const pool = seeds.flatMap((seed) => Array.from({ length: seed.weight }, () => seed));
    const libc = seeds.find((seed) => seed.name === 'libc.so.6')!;
    const outcomes = new Map<string, number>();
    let slowest = 0;
    const started = performance.now();
    for (let i = 0; i < ITERATIONS; i++) {
      // One input in 500 mutates libc (slow, ~1 s each): its tables are the richest.
      const seed = i % 500 === 499 ? libc : pool[random() % pool.length]!;
      const input = mutate(seed.bytes, random);
      const t = performance.now();
      try {
        analyzeElf(input, 'fuzz', DEFAULT_LIMITS);
        outcomes.set('facts', (outcomes.get('facts') ?? 0) + 1);
      } catch (err) {
        if (!(err instanceof DockergateError)) {
          assert.fail(`input ${i} (from ${seed.name}) threw ${err instanceof Error ? err.stack : String(err)}`);
        }
        outcomes.set(err.constructor.name, (outcomes.get(err.constructor.name) ?? 0) + 1);
      }
      const ms = performance.now() - t;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < SLOW_MS, `input ${i} (from ${seed.name}) took ${ms.toFixed(0)} ms`);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`analyser fuzz: ${ITERATIONS} inputs in ${seconds.toFixed(1)} s (${(ITERATIONS / seconds).toFixed(0)}/s), slowest ${slowest.toFixed(0)} ms; ${JSON.stringify(Object.fromEntries(outcomes))}`);
  });
});
