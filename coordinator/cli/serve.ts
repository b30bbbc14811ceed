/**
 * The cluster coordinator process (`dockergate coordinator`): takes `scan-image` units (and the
 * `scan-image-bulk` units of crawls, from a queue of their own) from
 * JetStream and plans each scan with the cluster runtime (layer blobs staged into S3, layer and
 * object units sent to workers, linking and policy here), then stores the finished scan in
 * PostgreSQL for the requester to read. A coordinator that dies mid-scan loses nothing: the unit is
 * redelivered to another (or the restarted) coordinator, which re-plans from the stored layer
 * records and facts, so only the linking is done again.
 */
import { InvalidInputError } from '../../infra/errors.js';
import type { ClusterConfig } from '../../infra/cluster-config.js';
import type { Limits } from '../../infra/limits.js';
import { serviceLog } from '../../infra/log.js';
import { type ClusterServices, connectCluster } from '../../store/cluster-services.js';
import { analyserNamed } from '../../worker/analysers.js';
import type { UnitContext } from '../../infra/bus.js';
import { type ScanImageDone, type ScanImageUnit, UNIT_SCAN_IMAGE, UNIT_SCAN_IMAGE_BULK } from '../../worker/contracts.js';
import { clusterRuntime } from '../runtime/cluster.js';
import { scanCacheKey, scanImage } from '../plan/scan.js';

export const log = serviceLog('dockergate-coordinator');

export interface RunningCoordinator {
  readonly services: ClusterServices;
  /** Stops taking scans, lets running ones finish, closes everything. */
  stop(): Promise<void>;
}

export async function startCoordinator(config: ClusterConfig, limits: Limits, options: { concurrency?: number } = {}): Promise<RunningCoordinator> {
  const services = await connectCluster(config, { concurrency: options.concurrency ?? 2, log });
  // Interactive and bulk (crawl, rescan) scans are two queues, each with `concurrency` slots here:
  // a crawl of thousands of tags never takes the slots of a scan someone waits for.
  const scan = async (unit: ScanImageUnit, context: UnitContext): Promise<ScanImageDone> => {
    const analyser = analyserNamed(unit.analyser);
    if (analyser.version !== unit.analyserVersion) {
      throw new InvalidInputError(`the scan asks for ${unit.analyser} v${unit.analyserVersion}; this coordinator runs v${analyser.version}`);
    }
    // The runtime shares the services; its close() is the process's, not the scan's.
    const runtime = clusterRuntime(limits, services, { analyser });
    const started = performance.now();
    log(`scanning ${unit.reference}`);
    const result = await scanImage(runtime, unit.reference, { source: unit.source, strict: unit.strict, signal: context.signal });
    log(`scanned ${unit.reference}: ${result.syscalls.size} syscalls, ${result.analysed.fresh} objects analysed now, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { key: scanCacheKey(result.manifestDigest, analyser, unit.strict), reference: result.reference, fresh: result.analysed.fresh };
  };
  services.bus.handle<ScanImageUnit, ScanImageDone>(UNIT_SCAN_IMAGE, scan);
  services.bus.handle<ScanImageUnit, ScanImageDone>(UNIT_SCAN_IMAGE_BULK, scan);
  return {
    services,
    async stop() {
      await services.close();
    },
  };
}
