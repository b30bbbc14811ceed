/**
 * Crawl benchmark (issue 12, acceptance 2): a private docker-registry on loopback filled with R
 * repositories × T tags (default 20 × 10) of distinct images that share their base layer (a
 * debootstrapped root's /bin/sh, coreutils' `sleep` and libc, as real images share a distro layer), then, in one run:
 *   1. a cold crawl (fresh cache): images per minute, layers extracted, objects analysed;
 *   2. a warm crawl right after (nothing changed): wall time and registry requests;
 *   3. `rescan` of the unchanged registry: wall time;
 *   4. the baseline: the same first K images (default 10) each scanned with a cache of its own,
 *      as a tool without shared layers and facts would; images per minute, and the ratio.
 *
 *   npm run bench:crawl [-- --repositories 20 --tags 10 --baseline 10 --json]
 *
 * Needs the test machine's setup (docker-registry, skopeo, the trixie root of infra/setup/test-env.sh).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pLimit from 'p-limit';
import { crawlRegistry, type CrawlSummary, rescanRegistries } from '../coordinator/crawl/crawl.js';
import { analysisState } from '../coordinator/plan/analysis-state.js';
import { scanImage } from '../coordinator/plan/scan.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import type { Runtime } from '../coordinator/runtime/runtime.js';
import type { Platform } from '../extractor/types.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { DEFAULT_ANALYSER } from '../worker/analysers.js';
import { type EntrySpec, gzipLayer, writeOciLayout } from '../test/helpers/layers.js';
import { startPrivateRegistry } from '../test/helpers/private-servers.js';

const { values: flags } = parseArgs({
  options: {
    repositories: { type: 'string', default: '20' },
    tags: { type: 'string', default: '10' },
    baseline: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  },
});
const REPOSITORIES = Number(flags.repositories);
const TAGS = Number(flags.tags);
const BASELINE = Number(flags.baseline);
const ROOT = '/var/cache/dockergate/rootfs/trixie';
const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;

/** The shared base layer: a shell, `sleep` and what they load, from the trixie root. */
async function baseEntries(): Promise<EntrySpec[]> {
  const files = ['bin/dash', 'bin/sleep', 'lib/x86_64-linux-gnu/libc.so.6', 'lib64/ld-linux-x86-64.so.2'];
  const entries: EntrySpec[] = [];
  for (const file of files) {
    const real = await fs.realpath(path.join(ROOT, file));
    entries.push({ name: file === 'bin/dash' ? 'bin/sh' : file, content: await fs.readFile(real), mode: 0o755 });
  }
  return entries;
}

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-bench-crawl-'));
const registry = await startPrivateRegistry();
const runtimes: Runtime[] = [];
try {
  const base = await gzipLayer(await baseEntries());
  const fill = performance.now();
  const limit = pLimit(4);
  const references: string[] = [];
  await Promise.all(
    Array.from({ length: REPOSITORIES }, (_, r) => `bench/r${String(r).padStart(2, '0')}`).flatMap((repository) =>
      Array.from({ length: TAGS }, (_, t) => `t${t}`).map((tag) =>
        limit(async () => {
          const layout = path.join(work, 'layouts', `${repository.replace('/', '_')}-${tag}`);
          const script = `#!/bin/sh\n# ${repository}:${tag}\nexec sleep 1\n`;
          const top = await gzipLayer([{ name: 'entrypoint.sh', content: script, mode: 0o755 }]);
          await writeOciLayout(layout, { layers: [base, top], config: { Entrypoint: ['/entrypoint.sh'] } });
          await registry.push(`oci:${layout}`, repository, tag);
          await fs.rm(layout, { recursive: true, force: true });
          references.push(`docker://${registry.address}/${repository}:${tag}`);
        }),
      ),
    ),
  );
  const fillSeconds = (performance.now() - fill) / 1000;
  const images = REPOSITORIES * TAGS;

  const runtime = embeddedRuntime(DEFAULT_LIMITS, path.join(work, 'cache'));
  runtimes.push(runtime);
  const options = {
    platform: PLATFORM,
    allPlatforms: false,
    concurrency: 4,
    insecure: false,
    limits: DEFAULT_LIMITS,
    state: analysisState(DEFAULT_ANALYSER, { strict: false }),
    kb: await runtime.kb(),
    scan: (reference: string, platform: Platform) => scanImage(runtime, reference, { source: { platform, insecure: false } }),
  };
  const cold: CrawlSummary = await crawlRegistry({ ...options, registry: registry.address });
  const work1 = { ...runtime.counters };
  const warm: CrawlSummary = await crawlRegistry({ ...options, registry: registry.address });
  const rescan = await rescanRegistries(options, [registry.address]);

  // Baseline: each image with a cache of its own (nothing shared between images).
  const baselineStarted = performance.now();
  let baselineExtracted = 0;
  let baselineAnalysed = 0;
  for (const [index, reference] of references.sort().slice(0, BASELINE).entries()) {
    const own = embeddedRuntime(DEFAULT_LIMITS, path.join(work, `cache-${index}`));
    try {
      await scanImage(own, reference, { source: { platform: PLATFORM, insecure: false } });
      baselineExtracted += own.counters.extracted;
      baselineAnalysed += own.counters.analysed;
    } finally {
      await own.close();
    }
  }
  const baselineSeconds = (performance.now() - baselineStarted) / 1000;
  const perMinute = (count: number, seconds: number) => Number(((count / seconds) * 60).toFixed(1));
  const result = {
    images,
    repositories: REPOSITORIES,
    fillSeconds: Number(fillSeconds.toFixed(1)),
    cold: { seconds: cold.seconds, imagesPerMinute: perMinute(cold.scanned, cold.seconds), layersExtracted: work1.extracted, objectsAnalysed: work1.analysed, requests: cold.requests, failed: cold.failed },
    warm: { seconds: warm.seconds, imagesPerMinute: perMinute(warm.tags, warm.seconds), scanned: warm.scanned, requests: warm.requests },
    rescan: { seconds: rescan.seconds, scanned: rescan.scanned, requests: rescan.requests },
    baseline: { images: BASELINE, seconds: Number(baselineSeconds.toFixed(1)), imagesPerMinute: perMinute(BASELINE, baselineSeconds), layersExtracted: baselineExtracted, objectsAnalysed: baselineAnalysed },
  };
  const ratio = Number((result.cold.imagesPerMinute / result.baseline.imagesPerMinute).toFixed(1));
  if (flags.json) process.stdout.write(`${JSON.stringify({ ...result, coldOverBaseline: ratio }, null, 2)}\n`);
  else {
    process.stdout.write(`crawl of ${images} images in ${REPOSITORIES} repositories sharing one base layer (registry filled in ${result.fillSeconds} s)\n`);
    process.stdout.write(`  cold crawl:  ${result.cold.seconds} s, ${result.cold.imagesPerMinute} images/min, ${result.cold.layersExtracted} layers extracted, ${result.cold.objectsAnalysed} objects analysed, ${result.cold.requests} requests, ${result.cold.failed} failed\n`);
    process.stdout.write(`  warm crawl:  ${result.warm.seconds} s (${result.warm.scanned} scanned), ${result.warm.requests} requests\n`);
    process.stdout.write(`  rescan:      ${result.rescan.seconds} s (${result.rescan.scanned} scanned), ${result.rescan.requests} requests\n`);
    process.stdout.write(`  baseline, ${BASELINE} images each with its own cache: ${result.baseline.seconds} s, ${result.baseline.imagesPerMinute} images/min, ${result.baseline.layersExtracted} layers extracted, ${result.baseline.objectsAnalysed} objects analysed\n`);
    process.stdout.write(`  cold crawl / baseline throughput: ${ratio}×\n`);
  }
} finally {
  for (const runtime of runtimes) await runtime.close();
  await registry.close();
  await fs.rm(work, { recursive: true, force: true });
}
