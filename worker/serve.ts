/**
 * A cluster worker process (`dockergate worker`): takes `extract-layer` and/or `analyse-object`
 * units from JetStream and runs the same handlers as embedded mode, with blobs in S3 and records and
 * facts in PostgreSQL. Layer blobs are read from S3, where the planning process staged them.
 * SIGTERM/SIGINT: stop pulling, let running units finish, close the services, exit 0.
 */
import os from 'node:os';
import { AbortedError } from '../infra/errors.js';
import { Readable } from 'node:stream';
import { parseReference } from '../extractor/reference.js';
import { openRegistryLayer } from '../extractor/sources/registry.js';
import type { ClusterConfig } from '../infra/cluster-config.js';
import type { Limits } from '../infra/limits.js';
import { serviceLog } from '../infra/log.js';
import { type ClusterServices, connectCluster } from '../store/cluster-services.js';
import { registerObjectAnalyser } from './analyse-object.js';
import { AnalysisPool } from './analysis-pool.js';
import { analyserRegistry } from './analysers.js';
import { type LayerBlobs, registerLayerExtractor } from './extract-layer.js';

export const log = serviceLog('dockergate-worker');

export type WorkerRole = 'extract' | 'analyse';
export const WORKER_ROLES: readonly WorkerRole[] = ['extract', 'analyse'];

export interface WorkerOptions {
  readonly roles: readonly WorkerRole[];
  /** Units run at once (default: the number of cores). */
  readonly concurrency?: number;
}

export interface RunningWorker {
  readonly services: ClusterServices;
  readonly counters: { analysed: number; failed: number };
  /** Analyses running now. */
  readonly analysing: () => number;
  /** This worker's own counters, named for `/metrics`. */
  metrics(): Record<string, number>;
  /** Stops pulling, waits for running units, closes everything. */
  stop(): Promise<void>;
}

export async function startWorker(config: ClusterConfig, limits: Limits, options: WorkerOptions): Promise<RunningWorker> {
  const concurrency = Math.max(1, options.concurrency ?? os.availableParallelism());
  const services = await connectCluster(config, { concurrency, log });
  const { bus, cas, kb } = services;
  const counters = { analysed: 0, failed: 0 };
  let pool: AnalysisPool | undefined;
  const running = { analysing: 0 };
  const fetched = { layers: 0, bytes: 0 };
  const extraction = { extracted: 0 };
  if (options.roles.includes('extract')) {
    const blobs: LayerBlobs = {
      async open(unit, signal) {
        const reference = parseReference(unit.image);
        if (reference.transport === 'docker') {
          // Registry layers are fetched by the worker that extracts them (the unit id is the
          // layer digest, so a blob shared by many images is fetched once by the fleet).
          const blob = await openRegistryLayer(reference, { limits, insecure: Boolean(unit.insecure), signal }, unit.layer, signal);
          fetched.layers++;
          blob.on('data', (chunk: Buffer) => {
            fetched.bytes += chunk.length;
          });
          return blob;
        }
        // Staged by the coordinator under the blob's digest; `get` verifies the SHA-256.
        return Readable.from(await cas.get(unit.layer.digest.slice('sha256:'.length)));
      },
    };
    registerLayerExtractor(bus, { cas, records: kb, blobs, limits, counters: extraction });
  }
  if (options.roles.includes('analyse')) {
    pool = new AnalysisPool(limits, concurrency);
    registerObjectAnalyser(bus, {
      cas,
      kb: async () => kb,
      analyser: analyserRegistry(limits, pool),
      counters,
      running,
      beforeAnalysis: testHook(process.env),
      onRetry: (err) => log(`retrying: ${err instanceof Error ? err.message : String(err)}`),
    });
  }
  return {
    services,
    counters,
    analysing: () => running.analysing,
    metrics: () => ({
      dockergate_objects_analysed_total: counters.analysed,
      dockergate_objects_failed_total: counters.failed,
      dockergate_layers_extracted_total: extraction.extracted,
      dockergate_registry_layers_fetched_total: fetched.layers,
      dockergate_registry_bytes_fetched_total: fetched.bytes,
    }),
    async stop() {
      await bus.close();
      await pool?.close();
      await kb.close();
      cas.close();
    },
  };
}

/**
 * TEST-ONLY hooks, read from the environment of a worker process; never set them in a deployment.
 * They let the fault tests (test/cluster-faults.test.ts) strike while a worker is in the middle of
 * an analysis: `DOCKERGATE_TEST_ANALYSIS_DELAY_MS` makes every analysis wait that long once it has
 * started (before the object is read from S3), and `DOCKERGATE_TEST_HANG_SHA256` makes the
 * analysis of that object never end until its unit is aborted past `maxRunMs`, as an object that
 * hangs its worker would.
 */
function testHook(env: NodeJS.ProcessEnv): ((sha256: string, signal: AbortSignal) => Promise<void>) | undefined {
  const delayMs = Number(env.DOCKERGATE_TEST_ANALYSIS_DELAY_MS ?? 0) || 0;
  const hang = env.DOCKERGATE_TEST_HANG_SHA256;
  if (!delayMs && !hang) return undefined;
  return (sha256, signal) =>
    new Promise<void>((resolve, reject) => {
      const timer = sha256 === hang ? undefined : setTimeout(resolve, delayMs);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new AbortedError(`analysis of sha256:${sha256} cancelled`));
      }, { once: true });
    });
}
