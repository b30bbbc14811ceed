import type { Readable } from 'node:stream';
import { EXTRACTOR_VERSION } from '../extractor/version.js';
import type { Bus } from '../infra/bus.js';
import { withDeadline } from '../infra/deadline.js';
import type { Limits } from '../infra/limits.js';
import { retryUnavailable } from '../infra/retry.js';
import { withSpan } from '../infra/telemetry.js';
import type { Cas } from '../store/cas.js';
import type { LayerRecordStore } from '../store/layer-records.js';
import { type ExtractLayerDone, type ExtractLayerUnit, UNIT_EXTRACT_LAYER } from './contracts.js';

/**
 * Where a worker reads a unit's layer bytes from: the opened images in process; in a cluster the
 * registry (registry images) or the blob the coordinator staged in S3 (the other sources).
 */
export interface LayerBlobs {
  open(unit: ExtractLayerUnit, signal: AbortSignal): Promise<Readable>;
}

export interface LayerExtractorDeps {
  readonly cas: Cas;
  readonly records: LayerRecordStore;
  readonly blobs: LayerBlobs;
  readonly limits: Limits;
  /** Layers this process extracted (cached units not counted). */
  readonly counters?: { extracted: number };
}

/** Handles `extract-layer` units: skip known layers, else stream, record and store. */
export function registerLayerExtractor(bus: Bus, deps: LayerExtractorDeps): void {
  bus.handle<ExtractLayerUnit, ExtractLayerDone>(UNIT_EXTRACT_LAYER, async (unit, context) => {
    const known = await deps.records.get(unit.layer.digest, EXTRACTOR_VERSION);
    if (known) return { digest: known.digest, extractorVersion: EXTRACTOR_VERSION, cached: true, files: known.files.length };
    const record = await withSpan('layer fetch and extract', { 'dockergate.layer': unit.layer.digest, 'dockergate.bytes': unit.layer.size }, () =>
      // Past extractTimeoutMs the fetch and the extraction stop and the unit fails with that limit (never retried).
      withDeadline(deps.limits, 'extractTimeoutMs', `the extraction of layer ${unit.layer.digest}`, context.signal, async (signal) => {
        // The extractor (tar, gzip, zstd) loads with the first layer to extract: a warm rescan has
        // none. Loaded before the blob opens: an open blob may already be flowing (a worker counts
        // its bytes with a 'data' listener), so nothing may come between opening and consuming it.
        const { extractLayer } = await import('../extractor/layer-extract.js');
        const blob = await deps.blobs.open(unit, signal);
        return extractLayer(blob, unit.layer, { cas: deps.cas, limits: deps.limits, signal });
      }),
    );
    await retryUnavailable(() => deps.records.put(record), context);
    if (deps.counters) deps.counters.extracted++;
    return { digest: record.digest, extractorVersion: EXTRACTOR_VERSION, cached: false, files: record.files.length };
  });
}
