/**
 * Time spent waiting on the cluster's services, per service, in this process: every call to
 * PostgreSQL (the knowledge base), S3 (the CAS), NATS (publish, ack, KV) and registries (each HTTP
 * request, until its headers) is timed here, and the
 * totals are served as `dockergate_<service>_seconds_total` counters (`/metrics`, OpenTelemetry).
 * `bench/cluster.ts` divides them by wall time to show where a scan's time goes. Concurrent calls
 * add up, so a total can exceed the wall time of a process that waits on many things at once.
 */
export type ServiceName = 'db' | 's3' | 'nats' | 'registry';

const totals: Record<ServiceName, { seconds: number; calls: number }> = {
  db: { seconds: 0, calls: 0 },
  s3: { seconds: 0, calls: 0 },
  nats: { seconds: 0, calls: 0 },
  registry: { seconds: 0, calls: 0 },
};

/**
 * Runs `call` and adds its duration (failed or not) to `service`'s total; it counts as a call
 * unless it is the rest of one already counted (`continued`: reading a response body).
 */
export async function roundTrip<T>(service: ServiceName, call: () => T | Promise<T>, continued = false): Promise<T> {
  const started = performance.now();
  try {
    return await call();
  } finally {
    totals[service].seconds += (performance.now() - started) / 1000;
    if (!continued) totals[service].calls++;
  }
}

/** The totals as counters, named for `/metrics`. */
export function roundTripCounters(): Record<string, number> {
  const counters: Record<string, number> = {};
  for (const [service, total] of Object.entries(totals)) {
    counters[`dockergate_${service}_seconds_total`] = Number(total.seconds.toFixed(6));
    counters[`dockergate_${service}_calls_total`] = total.calls;
  }
  return counters;
}

/** Calls made to `service` so far by this process (a crawl reports its registry requests as a difference). */
export function callsTo(service: ServiceName): number {
  return totals[service].calls;
}
