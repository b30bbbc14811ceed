/**
 * The embedded runtime: one process, an in-process bus, a directory CAS and layer-record store
 * under the user's cache dir, an embedded knowledge base (SQLite) and a pool of analysis threads.
 * The cluster runtime (cluster.ts) swaps these for NATS, S3 and PostgreSQL.
 */
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { LayerDescriptor, OpenedImage } from '../../extractor/types.js';
import { InProcessBus } from '../../infra/bus.js';
import { defaultCacheDir } from '../../infra/config.js';
import { NotFoundError } from '../../infra/errors.js';
import type { Limits } from '../../infra/limits.js';
import { DirCas } from '../../store/cas.js';
import { DirLayerRecordStore } from '../../store/layer-records.js';
import { registerLayerExtractor, type LayerBlobs } from '../../worker/extract-layer.js';
import { registerObjectAnalyser } from '../../worker/analyse-object.js';
import { UNIT_ANALYSE_OBJECT } from '../../worker/contracts.js';
import { AnalysisPool } from '../../worker/analysis-pool.js';
import { analyserRegistry, DEFAULT_ANALYSER } from '../../worker/analysers.js';
import type { KnowledgeBase } from '../../store/kb/index.js';
import type { Runtime, RuntimeOptions } from './runtime.js';
import { DirScanCache } from '../../store/scan-cache.js';

export function embeddedRuntime(limits: Limits, cacheDir = defaultCacheDir(), options: RuntimeOptions = {}): Runtime {
  const cas = new DirCas(path.join(cacheDir));
  const records = new DirLayerRecordStore(cacheDir);
  const threads = Math.max(1, Math.min(os.availableParallelism(), 4));
  // Twice as many analysis units as threads: a unit's own work on this thread (reading the object,
  // writing its facts) overlaps another's analysis, so the threads do not wait for it; the pool
  // still runs at most `threads` analyses at once. Layers: one per thread.
  const bus = new InProcessBus({ concurrency: threads, concurrencyOf: { [UNIT_ANALYSE_OBJECT]: 2 * threads }, maxAttempts: 3, backoffMs: 250 });
  const shared = new Map<string, { image: OpenedImage; wrap?: (layer: LayerDescriptor, blob: Readable) => Readable }>();
  const blobs: LayerBlobs = {
    async open({ image: reference, layer }, signal) {
      const entry = shared.get(reference);
      if (!entry) throw new NotFoundError(`image ${reference} is not open in this process`);
      const blob = await entry.image.openLayer(layer, signal);
      return entry.wrap ? entry.wrap(layer, blob) : blob;
    },
  };
  let kbOpening: Promise<KnowledgeBase> | undefined;
  // The store and drizzle load on first use: `inspect` and warm rescans never pay for them.
  const kb = (): Promise<KnowledgeBase> =>
    (kbOpening ??= import('../../store/kb/sqlite.js').then(({ openEmbeddedKnowledgeBase }) => openEmbeddedKnowledgeBase(path.join(cacheDir, 'kb.sqlite'))));
  const pool = new AnalysisPool(limits, threads);
  const counters = { analysed: 0, failed: 0, extracted: 0 };
  registerLayerExtractor(bus, { cas, records, blobs, limits, counters });
  registerObjectAnalyser(bus, { cas, kb, analyser: analyserRegistry(limits, pool), counters });
  return {
    bus,
    cas,
    records,
    kb,
    counters,
    scans: new DirScanCache(cacheDir),
    limits,
    analyser: options.analyser ?? DEFAULT_ANALYSER,
    async share(image, wrap) {
      shared.set(image.reference, { image, ...(wrap ? { wrap } : {}) });
      return () => shared.delete(image.reference);
    },
    warmAnalysis(objects) {
      pool.warm(objects);
    },
    async close() {
      await bus.close();
      await pool.close();
      if (kbOpening) await (await kbOpening).close();
    },
  };
}
