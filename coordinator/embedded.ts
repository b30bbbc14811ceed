/**
 * The embedded runtime: one process, an in-process bus, a directory CAS and layer-record store
 * under the user's cache dir, an embedded knowledge base (PGlite) and a pool of analysis threads. The cluster runtime swaps these for NATS, S3 and PostgreSQL.
 */
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { LayerDescriptor, OpenedImage } from '../extractor/types.js';
import { type Bus, InProcessBus } from '../infra/bus.js';
import { defaultCacheDir } from '../infra/config.js';
import { NotFoundError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';
import { type Cas, DirCas } from '../store/cas.js';
import { DirLayerRecordStore, type LayerRecordStore } from '../store/layer-records.js';
import { registerLayerExtractor, type LayerBlobs } from '../worker/extract-layer.js';
import { registerObjectAnalyser } from '../worker/analyse-object.js';
import { AnalysisPool } from '../worker/analysis-pool.js';
import { type AnalyserIdentity, analyserRegistry, DEFAULT_ANALYSER } from '../worker/analysers.js';
import type { KnowledgeBase } from '../store/kb/index.js';
import { DirScanCache, type ScanCache } from '../store/scan-cache.js';

export interface Runtime {
  readonly bus: Bus;
  readonly cas: Cas;
  readonly records: LayerRecordStore;
  /** The knowledge base, opened on first use (PGlite takes about a second to open). */
  readonly kb: () => Promise<KnowledgeBase>;
  readonly counters: { analysed: number; failed: number };
  readonly scans: ScanCache;
  readonly limits: Limits;
  /** The analyser whose facts `analyze` and `scan` use (`--analyser`). */
  readonly analyser: AnalyserIdentity;
  /**
   * Makes an opened image's layers readable by workers (in process: the open image; in a cluster:
   * layer blobs staged into S3). `wrap` sees each blob as it is read (progress). Returns `unshare`.
   */
  share(image: OpenedImage, wrap?: (layer: LayerDescriptor, blob: Readable) => Readable): Promise<() => void>;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Default: the native analyser. */
  readonly analyser?: AnalyserIdentity;
}

export function embeddedRuntime(limits: Limits, cacheDir = defaultCacheDir(), options: RuntimeOptions = {}): Runtime {
  const cas = new DirCas(path.join(cacheDir));
  const records = new DirLayerRecordStore(cacheDir);
  const bus = new InProcessBus({ concurrency: Math.max(1, Math.min(os.availableParallelism(), 4)), maxAttempts: 3, backoffMs: 250 });
  const shared = new Map<string, { image: OpenedImage; wrap?: (layer: LayerDescriptor, blob: Readable) => Readable }>();
  const blobs: LayerBlobs = {
    async open(reference, layer, signal) {
      const entry = shared.get(reference);
      if (!entry) throw new NotFoundError(`image ${reference} is not open in this process`);
      const blob = await entry.image.openLayer(layer, signal);
      return entry.wrap ? entry.wrap(layer, blob) : blob;
    },
  };
  registerLayerExtractor(bus, { cas, records, blobs, limits });
  let kbOpening: Promise<KnowledgeBase> | undefined;
  // PGlite and drizzle load on first use: `inspect` and warm rescans never pay for them.
  const kb = (): Promise<KnowledgeBase> =>
    (kbOpening ??= import('../store/kb/index.js').then(({ openEmbeddedKnowledgeBase }) => openEmbeddedKnowledgeBase(path.join(cacheDir, 'kb'))));
  const pool = new AnalysisPool(limits, Math.max(1, Math.min(os.availableParallelism(), 4)));
  const counters = { analysed: 0, failed: 0 };
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
    async close() {
      await bus.close();
      await pool.close();
      if (kbOpening) await (await kbOpening).close();
    },
  };
}
