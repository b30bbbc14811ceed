/**
 * What the planner (inspect, analyze, scan) runs on: a bus for work units, the CAS, layer records,
 * the knowledge base and finished scans. Two implementations: embedded.ts (one process) and
 * cluster.ts (NATS JetStream, S3, PostgreSQL).
 */
import type { Readable } from 'node:stream';
import type { LayerDescriptor, OpenedImage } from '../../extractor/types.js';
import type { Bus } from '../../infra/bus.js';
import type { Limits } from '../../infra/limits.js';
import type { Cas } from '../../store/cas.js';
import type { KnowledgeBase } from '../../store/kb/index.js';
import type { LayerRecordStore } from '../../store/layer-records.js';
import type { ScanCache } from '../../store/scan-cache.js';
import type { AnalyserIdentity } from '../../worker/analysers.js';

export interface Runtime {
  readonly bus: Bus;
  readonly cas: Cas;
  readonly records: LayerRecordStore;
  /** The knowledge base, opened on first use (commands that need none never load its driver). */
  readonly kb: () => Promise<KnowledgeBase>;
  /** Work this process did: objects analysed (ok or failed) and layers extracted (cached units not counted). */
  readonly counters: { analysed: number; failed: number; extracted: number };
  readonly scans: ScanCache;
  readonly limits: Limits;
  /** The analyser whose facts `analyze` and `scan` use (`--analyser`). */
  readonly analyser: AnalyserIdentity;
  /**
   * Makes an opened image's layers readable by workers (in process: the open image; in a cluster:
   * layer blobs staged into S3). `wrap` sees each blob as it is read (progress). Returns `unshare`.
   */
  share(image: OpenedImage, wrap?: (layer: LayerDescriptor, blob: Readable) => Readable): Promise<() => void>;
  /**
   * Objects will be analysed soon: start what analysis needs (in process: the analysis threads,
   * whose start-up then overlaps reading the image or the files; no more than `objects` of them).
   * A no-op where workers analyse.
   */
  warmAnalysis(objects?: number): void;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Default: the native analyser. */
  readonly analyser?: AnalyserIdentity;
}
