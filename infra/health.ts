/**
 * The health endpoint of cluster processes (`--health-port`): `GET /healthz` answers 200 while the
 * process runs, `GET /readyz` 200 once it takes work and 503 while it stops, and `GET /metrics` the
 * process's counters in the Prometheus text format (version 0.0.4). Kubernetes probes and scrapers
 * use these; nothing else is served.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { UnitStats } from './jetstream-bus.js';

export interface HealthSource {
  ready(): boolean;
  /** Per unit kind handled by this process. */
  units(): ReadonlyMap<string, UnitStats>;
  /** Further counters, `name → value` (names already prefixed `dockergate_`). */
  counters(): Readonly<Record<string, number>>;
  /** Values that go up and down, `name → value`. */
  gauges?(): Readonly<Record<string, number>>;
}

export interface HealthServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startHealthServer(port: number, address: string, source: HealthSource): Promise<HealthServer> {
  const server = http.createServer((request, response) => {
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    if (request.method !== 'GET') return send(405, 'method not allowed\n');
    if (request.url === '/healthz') return send(200, 'ok\n');
    if (request.url === '/readyz') return source.ready() ? send(200, 'ready\n') : send(503, 'stopping\n');
    if (request.url === '/metrics') return send(200, metricsText(source), 'text/plain; version=0.0.4; charset=utf-8');
    return send(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Per-kind unit counters: field of `UnitStats`, metric name, help (also the OpenTelemetry instruments'). */
export const UNIT_METRICS: readonly [Exclude<keyof UnitStats, 'running'>, string, string][] = [
  ['done', 'dockergate_units_done_total', 'Units answered with a result.'],
  ['failed', 'dockergate_units_failed_total', 'Units that failed for good (dead letters).'],
  ['redelivered', 'dockergate_units_redelivered_total', 'Deliveries that were not the unit\'s first.'],
  ['retried', 'dockergate_units_retried_total', 'Retryable errors handed back with backoff.'],
  ['queueSeconds', 'dockergate_unit_queue_seconds_total', 'Seconds units waited in the queue before they were taken.'],
  ['runSeconds', 'dockergate_unit_run_seconds_total', 'Seconds units ran.'],
];

export const UNITS_RUNNING = 'dockergate_units_running';

function metricsText(source: HealthSource): string {
  const lines: string[] = [];
  const units = source.units();
  for (const [field, name, help] of UNIT_METRICS) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const [kind, stats] of units) lines.push(`${name}{kind="${kind}"} ${stats[field]}`);
  }
  lines.push(`# HELP ${UNITS_RUNNING} Units running now.`, `# TYPE ${UNITS_RUNNING} gauge`);
  for (const [kind, stats] of units) lines.push(`${UNITS_RUNNING}{kind="${kind}"} ${stats.running}`);
  for (const [name, value] of Object.entries(source.counters())) lines.push(`# TYPE ${name} counter`, `${name} ${value}`);
  for (const [name, value] of Object.entries(source.gauges?.() ?? {})) lines.push(`# TYPE ${name} gauge`, `${name} ${value}`);
  return `${lines.join('\n')}\n`;
}
