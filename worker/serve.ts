/**
 * A cluster worker process (`dockergate worker`): takes `extract-layer` and/or `analyse-object`
 * units from JetStream and runs the same handlers as embedded mode, with blobs in S3 and records and
 * facts in PostgreSQL. Layer blobs are read from S3, where the planning process staged them.
 * SIGTERM/SIGINT: stop pulling, let running units finish, close the services, exit 0.
 */
import os from 'node:os';
import { Readable } from 'node:stream';
import type { ClusterConfig } from '../infra/cluster-config.js';
import type { Limits } from '../infra/limits.js';
import { type ClusterServices, connectCluster } from '../store/cluster-services.js';
import { registerObjectAnalyser } from './analyse-object.js';
import { AnalysisPool } from './analysis-pool.js';
import { analyserRegistry } from './analysers.js';
import { type LayerBlobs, registerLayerExtractor } from './extract-layer.js';

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
  /** Stops pulling, waits for running units, closes everything. */
  stop(): Promise<void>;
}

export async function startWorker(config: ClusterConfig, limits: Limits, options: WorkerOptions): Promise<RunningWorker> {
  const concurrency = Math.max(1, options.concurrency ?? os.availableParallelism());
  const services = await connectCluster(config, { concurrency });
  const { bus, cas, kb } = services;
  const counters = { analysed: 0, failed: 0 };
  let pool: AnalysisPool | undefined;
  if (options.roles.includes('extract')) {
    const blobs: LayerBlobs = {
      // Staged under the blob's digest; `get` verifies the SHA-256 before a byte is used.
      async open(_image, layer) {
        return Readable.from(await cas.get(layer.digest.slice('sha256:'.length)));
      },
    };
    registerLayerExtractor(bus, { cas, records: kb, blobs, limits });
  }
  if (options.roles.includes('analyse')) {
    pool = new AnalysisPool(limits, concurrency);
    registerObjectAnalyser(bus, { cas, kb: async () => kb, analyser: analyserRegistry(limits, pool), counters });
  }
  return {
    services,
    counters,
    async stop() {
      await bus.close();
      await pool?.close();
      await kb.close();
      cas.close();
    },
  };
}
