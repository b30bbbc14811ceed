/**
 * Corpus benchmark: scans every corpus image (bench/corpus) and reports, per image, the syscalls
 * the generated profile allows, the syscalls `strace -f` saw during start + smoke test, how many of
 * those the profile misses (must be 0), whether the image passes its smoke test under the profile,
 * and the cold and warm scan times; then the same figures for Docker's default profile.
 *
 *   npm run bench:corpus [-- [--analyser radare2] [--shared-cache] names...]   (builds missing images first; needs dockerd)
 *
 * Cold scans use a fresh cache directory per image (with --shared-cache, one for the whole corpus,
 * so each object is analysed once: how the radare2 corpus run fits in an hour); the warm scan
 * rescans with that cache.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import { type AnalyserIdentity, analyserNamed, DEFAULT_ANALYSER } from '../worker/analysers.js';
import { buildDockerProfile } from '../coordinator/output/policy.js';
import { DEFAULT_PROFILE_SYSCALLS } from '../coordinator/plan/platforms.js';
import { scanImage, type SyscallOrigin } from '../coordinator/plan/scan.js';
import { originCounts } from '../coordinator/output/report.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { baseImageId, buildImage } from './corpus/build.js';
import { type CorpusImage, selectImages } from './corpus/images.js';
import { runWithProfile } from './corpus/run.js';
import { traceSyscalls } from './corpus/trace.js';

export interface CorpusRow {
  readonly name: string;
  readonly allowed: number;
  readonly traced: number;
  readonly missed: readonly string[];
  readonly passed: boolean;
  readonly passedDefault: boolean;
  readonly coldSeconds: number;
  readonly warmSeconds: number;
  readonly unsure: boolean;
  readonly detail: string;
  /** Allowed syscalls per origin (the report's breakdown). */
  readonly breakdown: Readonly<Record<SyscallOrigin, number>>;
}

const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;

/** Scans, writes the profile, runs the image under it and compares with strace's ground truth. */
export async function benchImage(image: CorpusImage, work: string, analyser: AnalyserIdentity = DEFAULT_ANALYSER, sharedCache = false): Promise<CorpusRow> {
  const cacheDir = path.join(work, sharedCache ? 'cache-shared' : `cache-${image.name}`);
  const scanOnce = async (): Promise<{ seconds: number; result: Awaited<ReturnType<typeof scanImage>> }> => {
    const runtime = embeddedRuntime(DEFAULT_LIMITS, cacheDir, { analyser });
    const started = performance.now();
    try {
      const result = await scanImage(runtime, `docker-daemon:${image.tag}`, { source: { platform: PLATFORM, insecure: false } });
      return { seconds: (performance.now() - started) / 1000, result };
    } finally {
      await runtime.close();
    }
  };
  const cold = await scanOnce();
  const warm = await scanOnce();
  const { profile } = buildDockerProfile(cold.result.syscalls.keys(), PLATFORM);
  const profileFile = path.join(work, `${image.name}.json`);
  await fs.writeFile(profileFile, JSON.stringify(profile));
  const run = await runWithProfile(image, profileFile);
  const runDefault = await runWithProfile(image, 'default');
  const traced = await traceSyscalls(image);
  const missed = [...traced].filter((name) => !cold.result.syscalls.has(name)).sort();
  return {
    name: image.name,
    allowed: cold.result.syscalls.size,
    traced: traced.size,
    missed,
    passed: run.passed,
    passedDefault: runDefault.passed,
    coldSeconds: cold.seconds,
    warmSeconds: warm.seconds,
    unsure: cold.result.unsure,
    detail: run.passed ? '' : run.detail,
    breakdown: originCounts(cold.result),
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { analyser: { type: 'string', default: DEFAULT_ANALYSER.name }, 'shared-cache': { type: 'boolean', default: false } },
  });
  const analyser = analyserNamed(values.analyser);
  const images = selectImages(positionals);
  const baseId = await baseImageId();
  for (const image of images) await buildImage(image, baseId);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-corpus-'));
  const rows: CorpusRow[] = [];
  try {
    for (const image of images) {
      const row = await benchImage(image, work, analyser, values['shared-cache']);
      rows.push(row);
      process.stderr.write(`${row.name}: ${row.allowed} allowed, ${row.missed.length} missed, ${row.passed ? 'pass' : `FAIL ${row.detail}`}\n`);
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  const dockerDefault = DEFAULT_PROFILE_SYSCALLS(PLATFORM).length;
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  console.log(`analyser: ${analyser.name} v${analyser.version}${values['shared-cache'] ? '; one cache for all images (an object is analysed once for the corpus: "cold" scans reuse earlier images\' facts)' : ''}\n`);
  console.log('| image | allowed | from: direct / callback / data / lookup / run-time module / runtime / fallback | seen by strace | missed | under profile | under Docker default | cold scan | warm scan |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${row.allowed}${row.unsure ? ' (fallback)' : ''} | ${Object.values(row.breakdown).join(' / ')} | ${row.traced} | ${row.missed.length === 0 ? '0' : `${row.missed.length}: ${row.missed.join(' ')}`} | ${row.passed ? 'pass' : 'FAIL'} | ${row.passedDefault ? 'pass' : 'FAIL'} (${dockerDefault}) | ${row.coldSeconds.toFixed(1)} s | ${row.warmSeconds.toFixed(2)} s (${((100 * row.warmSeconds) / row.coldSeconds).toFixed(1)} %) |`,
    );
  }
  console.log(
    `\nmedian allowed: ${median(rows.map((r) => r.allowed))} (Docker default: ${dockerDefault}); images passing under their profile: ${rows.filter((r) => r.passed).length}/${rows.length}; missed syscalls: ${rows.reduce((n, r) => n + r.missed.length, 0)}`,
  );
}

if (import.meta.filename === process.argv[1]) await main();
