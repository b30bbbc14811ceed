/**
 * Knowledge-base query benchmark (issue 12, acceptance 3): fills a fresh embedded store (SQLite)
 * and a fresh PostgreSQL database with synthetic records of N images (default 10,000: one tag
 * each, profiles of 60–180 syscalls drawn from the x86_64 table, 5% allowing ptrace, 20% with a
 * fallback and its reasons) and 500 libraries of 200 exports, then times each query of `dockergate
 * kb` over repeated runs and prints its median and p99 latency.
 *
 * PostgreSQL's tables are ANALYZEd once filled, as autovacuum does in a database in use.
 *
 * Baseline, measured in the same run on the same data: "which tags allow ptrace?" answered without
 * the reverse index, by reading every tag's stored scans (`registry_tags.scans`, what a store
 * without `profile_syscalls` would have to do); the ratio is baseline / indexed.
 *
 *   npm run bench:kb [-- --images 10000 --runs 200 --json]
 *
 * PostgreSQL: DOCKERGATE_BENCH_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * a user that may create databases; the database is dropped at the end.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { namesOf } from '../coordinator/plan/platforms.js';
import type { KnowledgeBase } from '../store/kb/index.js';
import { openPostgresKnowledgeBase } from '../store/kb/postgres.js';
import { openEmbeddedKnowledgeBase } from '../store/kb/sqlite.js';
import type { ObjectFacts } from '../store/facts.js';

const { values: flags } = parseArgs({
  options: { images: { type: 'string', default: '10000' }, runs: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } },
});
const IMAGES = Number(flags.images);
const RUNS = Number(flags.runs);
const REGISTRY = 'bench.invalid:5000';
const STATE = 'sbench';
const ADMIN_URL = process.env.DOCKERGATE_BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Deterministic: every store gets the same records. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (random: () => number): string => Array.from({ length: 64 }, () => Math.floor(random() * 16).toString(16)).join('');
const SYSCALLS = [...namesOf('x86_64')].filter((name) => name !== 'ptrace').sort();

async function fill(kb: KnowledgeBase): Promise<void> {
  const random = prng(12);
  for (let i = 0; i < IMAGES; i++) {
    const manifestDigest = `sha256:${hex(random)}`;
    const count = 60 + Math.floor(random() * 120);
    const names = new Set<string>();
    while (names.size < count) names.add(SYSCALLS[Math.floor(random() * SYSCALLS.length)]!);
    if (random() < 0.05) names.add('ptrace');
    const fallback = random() < 0.2;
    const syscalls = new Map([...names].map((name) => [name, ['entrypoint', `/usr/bin/app${i % 50}`, `/usr/lib/libbench${i % 500}.so`, `${name}_wrapper`]] as const));
    await kb.putProfile({
      manifestDigest,
      state: STATE,
      platform: 'linux/amd64',
      fallback,
      reasons: fallback ? [{ kind: 'unresolved', detail: `2 syscall site(s) of /usr/lib/libbench${i % 500}.so` }] : [],
      syscalls,
    });
    await kb.putTag({
      registry: REGISTRY,
      repository: `team/r${Math.floor(i / 10)}`,
      tag: `t${i % 10}`,
      digest: manifestDigest,
      state: STATE,
      scans: [{ platform: 'linux/amd64', manifestDigest, syscalls: [...names].sort() }],
    });
  }
  for (let k = 0; k < 500; k++) {
    const reaches = Array.from({ length: 20 }, () => ({ syscalls: SYSCALLS.filter(() => random() < 0.05), imports: [], unresolvedCount: 0, indirect: random() < 0.3, callbacks: [] }));
    const facts: ObjectFacts = {
      sha256: hex(random),
      analyser: 'native',
      analyserVersion: 1,
      arch: 'x86_64',
      elfType: 'dyn',
      soname: `libbench${k % 250}.so.${Math.floor(k / 250)}`,
      needed: ['libc.so.6'],
      rpath: [],
      runpath: [],
      flags: { static: false, pie: true, go: false, stripped: true },
      initialisers: [],
      reaches,
      callbacks: [],
      dataRegions: [{ address: 0, reach: 0, holds: [], always: true }],
      exports: Array.from({ length: 200 }, (_, e) => ({ symbol: e === 0 ? 'getaddrinfo@@GLIBC_2.2.5' : `bench_fn${e}`, address: 0x1000 + e * 16, reach: e % 20 })),
      unresolved: [],
      symbolNames: [],
      pathStrings: [],
      stats: { functions: 200, syscallSites: 10, resolvedSites: 10, codeBytes: 1000 },
    };
    await kb.putFacts(facts, 1);
  }
}

interface Timing {
  readonly query: string;
  readonly medianMs: number;
  readonly p99Ms: number;
}

async function time(query: string, run: () => Promise<unknown>): Promise<Timing> {
  for (let i = 0; i < 3; i++) await run();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => Number(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!.toFixed(2));
  return { query, medianMs: at(0.5), p99Ms: at(0.99) };
}

/** "Which tags allow ptrace?" without the reverse index: every tag's scans read and filtered. */
async function unindexedPtrace(kb: KnowledgeBase): Promise<number> {
  const tags = await kb.tagsOf(REGISTRY);
  return tags.filter((tag) => tag.scans.some((scan) => scan.syscalls.includes('ptrace'))).length;
}

async function measure(name: string, kb: KnowledgeBase, settle: () => Promise<void> = async () => {}): Promise<{ store: string; fillSeconds: number; timings: Timing[]; ratio: number }> {
  const started = performance.now();
  await fill(kb);
  const fillSeconds = Number(((performance.now() - started) / 1000).toFixed(1));
  // A knowledge base in use has planner statistics (autovacuum's ANALYZE); a just-filled one not yet.
  await settle();
  const first = await kb.tagsAllowing('ptrace', { limit: 100 });
  const [library] = await kb.objectsNamed('libbench7.so.1');
  const timings = [
    await time('kb syscall ptrace (first page of 100)', () => kb.tagsAllowing('ptrace', { limit: 100 })),
    await time('kb syscall ptrace (second page)', () => kb.tagsAllowing('ptrace', { limit: 100, ...(first.next ? { after: first.next } : {}) })),
    await time('kb syscall read (common: first page)', () => kb.tagsAllowing('read', { limit: 100 })),
    await time('kb library libbench7.so.1', () => kb.objectsNamed('libbench7.so.1')),
    await time('kb library --export (exports of one object)', () => kb.exportsOf(library!)),
    await time('exports named getaddrinfo, every version', () => kb.exportsNamed('getaddrinfo')),
    await time('kb image (tag + history)', async () => {
      await kb.getTag(REGISTRY, 'team/r42', 't3');
      await kb.tagHistory(REGISTRY, 'team/r42', 't3');
    }),
    await time('kb diff (two profiles)', async () => {
      const a = await kb.getTag(REGISTRY, 'team/r1', 't1');
      const b = await kb.getTag(REGISTRY, 'team/r2', 't2');
      await kb.profileSyscalls(a!.scans[0]!.manifestDigest);
      await kb.profileSyscalls(b!.scans[0]!.manifestDigest);
    }),
  ];
  const statsRuns = Math.max(5, Math.floor(RUNS / 20));
  const stats = await (async () => {
    const samples: number[] = [];
    for (let i = 0; i < statsRuns; i++) {
      const t0 = performance.now();
      await kb.fleetStats(10);
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    return { query: `kb stats (${statsRuns} runs)`, medianMs: Number(samples[Math.floor(samples.length / 2)]!.toFixed(2)), p99Ms: Number(samples[samples.length - 1]!.toFixed(2)) };
  })();
  timings.push(stats);
  const baselineRuns = Math.max(5, Math.floor(RUNS / 20));
  const baselineSamples: number[] = [];
  for (let i = 0; i < baselineRuns; i++) {
    const t0 = performance.now();
    await unindexedPtrace(kb);
    baselineSamples.push(performance.now() - t0);
  }
  baselineSamples.sort((a, b) => a - b);
  const baseline = { query: `baseline: ptrace without the index (${baselineRuns} runs)`, medianMs: Number(baselineSamples[Math.floor(baselineSamples.length / 2)]!.toFixed(2)), p99Ms: Number(baselineSamples[baselineSamples.length - 1]!.toFixed(2)) };
  timings.push(baseline);
  return { store: name, fillSeconds, timings, ratio: Number((baseline.medianMs / timings[0]!.medianMs).toFixed(1)) };
}

const results = [];
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-bench-kb-'));
try {
  const sqlite = await openEmbeddedKnowledgeBase(path.join(dir, 'kb.sqlite'));
  try {
    results.push(await measure('SQLite (embedded)', sqlite));
  } finally {
    await sqlite.close();
  }
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
const database = `dgbench_${randomUUID().slice(0, 8)}`;
const admin = new pg.Client({ connectionString: ADMIN_URL });
await admin.connect();
await admin.query(`create database ${database}`);
try {
  const postgres = await openPostgresKnowledgeBase(ADMIN_URL.replace(/\/[^/]*$/, `/${database}`));
  try {
    const databaseUrl = ADMIN_URL.replace(/\/[^/]*$/, `/${database}`);
    results.push(
      await measure('PostgreSQL', postgres, async () => {
        const client = new pg.Client({ connectionString: databaseUrl });
        await client.connect();
        await client.query('analyze');
        await client.end();
      }),
    );
  } finally {
    await postgres.close();
  }
} finally {
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.end();
}

if (flags.json) process.stdout.write(`${JSON.stringify({ images: IMAGES, runs: RUNS, results }, null, 2)}\n`);
else {
  process.stdout.write(`knowledge base queries, ${IMAGES} images (one tag each), ${RUNS} runs per query\n`);
  for (const result of results) {
    process.stdout.write(`\n${result.store}: filled in ${result.fillSeconds} s\n`);
    for (const timing of result.timings) process.stdout.write(`  ${timing.query.padEnd(52)} median ${String(timing.medianMs).padStart(8)} ms   p99 ${String(timing.p99Ms).padStart(8)} ms\n`);
    process.stdout.write(`  the reverse index answers "which tags allow ptrace?" ${result.ratio}× faster than reading every tag's scans\n`);
  }
}
