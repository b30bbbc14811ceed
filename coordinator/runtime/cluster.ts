/**
 * The cluster runtime: the same `Runtime` as embedded mode, over shared services. Work units go to
 * worker processes through NATS JetStream (infra/jetstream-bus.ts), blobs live in S3
 * (store/s3-cas.ts), and layer records, facts and finished scans in PostgreSQL (store/kb). The
 * planner (scan, inspect, analyze) runs unchanged on top, so a profile is the same bytes in both
 * modes. Registry layers are fetched by the worker that extracts them; layers of the other sources
 * (daemon, archives, layouts: files of this machine) are staged into S3 under their blob digest
 * before their units are sent, so any worker can extract them.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { EXTRACTOR_VERSION } from '../../extractor/version.js';
import { parseReference } from '../../extractor/reference.js';
import { VerifyingStream } from '../../extractor/streams.js';
import type { Limits } from '../../infra/limits.js';
import type { ClusterServices } from '../../store/cluster-services.js';
import { type AnalyserIdentity, DEFAULT_ANALYSER } from '../../worker/analysers.js';
import type { Runtime } from './runtime.js';

export interface ClusterRuntimeOptions {
  readonly analyser?: AnalyserIdentity;
}

/** The runtime of a process that plans scans and leaves the units to worker processes. */
export function clusterRuntime(limits: Limits, services: ClusterServices, options: ClusterRuntimeOptions = {}): Runtime {
  const { bus, cas, kb } = services;
  return {
    bus,
    cas,
    records: kb,
    kb: async () => kb,
    counters: { analysed: 0, failed: 0, extracted: 0 },
    scans: kb.scans,
    limits,
    analyser: options.analyser ?? DEFAULT_ANALYSER,
    async share(image, wrap) {
      // Registry layers are fetched by the workers themselves (worker/serve.ts): nothing to stage.
      if (parseReference(image.reference).transport === 'docker') return () => {};
      // A layer whose record exists is never read again; the others go to S3 once, under the
      // SHA-256 of the blob as the source holds it (the unit's layer digest).
      for (const layer of image.layers) {
        if (await kb.get(layer.digest, EXTRACTOR_VERSION)) continue;
        const hex = layer.digest.slice('sha256:'.length);
        if (await cas.has(hex)) continue;
        await fs.mkdir(cas.spoolDir, { recursive: true });
        const spool = path.join(cas.spoolDir, `layer-${randomUUID()}`);
        // `putFile` trusts the caller's hash: the blob is checked against its digest (and bounded)
        // on its way to the spool file, as the sources check what they hand out.
        const verify = new VerifyingStream({ digest: layer.digest, size: layer.size, maxBytes: limits.maxLayerBlobBytes, limitName: 'maxLayerBlobBytes', what: `layer of ${image.reference}` });
        try {
          const blob = await image.openLayer(layer, new AbortController().signal);
          await pipeline(wrap ? wrap(layer, blob) : blob, verify, createWriteStream(spool));
          await cas.putFile(hex, spool);
        } finally {
          await fs.rm(spool, { force: true });
        }
      }
      return () => {};
    },
    // The workers analyse: nothing starts here.
    warmAnalysis() {},
    async close() {
      await services.close();
    },
  };
}
