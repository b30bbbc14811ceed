/**
 * Cluster benchmark (issue 10, point 4): the same corpus images scanned, in one run,
 *   1. embedded: `dockergate scan --cache-dir FRESH` as one CLI process per image, one after the other;
 *   2. cluster: one `dockergate coordinator` and 1, then 2 `dockergate worker` processes, each time a
 *      fresh deployment (new database, stream prefix, S3 server and bucket: nothing cached), images
 *      submitted one after the other with `dockergate scan --cluster`, and once all at once;
 *   3. where the cluster processes' time goes: the `dockergate_{db,s3,nats}_seconds_total` and
 *      `_calls_total` counters of every coordinator and worker (read from /metrics just before they
 *      stop, minus their values once the process was ready), as seconds, as a share of
 *      wall time × processes and per process; the CPU time of every process involved (/proc);
 *   4. the ratio of each run's wall time to the embedded one of the same run.
 * Then a JetStream work-queue micro-benchmark (no-op units through the same bus) and, unless
 * --no-trace, a traced 2-worker run (spans to an OTLP receiver in this process) for the coordinator's
 * linking time per image and how many analyses one image's scan can run at once. The last section
 * models 100 workers from these numbers, saying what is measured and what is modelled.
 *
 *   npm run bench:cluster [-- [--json] [--worker-concurrency 1] [--no-concurrent] [--no-trace]
 *                            [--bus-units 1000] [--timeout-min 45] names...]
 *
 * Every server is on loopback: the machine's NATS (DOCKERGATE_BENCH_NATS_URL, default
 * 127.0.0.1:4222) and PostgreSQL (DOCKERGATE_BENCH_PG_ADMIN_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres, a user that may create databases), and s3rver
 * started here. A non-loopback address is refused. Missing corpus images are built first
 * (bench/corpus/build.ts; that may run apt-get inside `docker build`), before anything is measured.
 * Deployments are removed at the end (streams, database, S3 directory), also after a failure.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { JetStreamBus } from '../infra/jetstream-bus.js';
import { roundTripCounters } from '../infra/round-trips.js';
import { cli, createDeployment, type Deployment, healthBase, OUTPUTS, outputFlags, said, type Service, startService, stopService } from '../test/helpers/cluster.js';
import { startTestS3 } from '../test/helpers/s3.js';
import { baseImageId, buildImage } from './corpus/build.js';
import { type CorpusImage, selectImages } from './corpus/images.js';

const DEFAULT_IMAGES = ['static-c', 'musl-http', 'trixie-musl-http', 'trixie-forking', 'busybox-httpd', 'python-http'];
const NATS_URL = process.env.DOCKERGATE_BENCH_NATS_URL ?? '127.0.0.1:4222';
const PG_ADMIN_URL = process.env.DOCKERGATE_BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const HEALTH = ['--health-port', '0', '--health-address', '127.0.0.1'];
/** One scan (a CLI process) may take this long. */
const SCAN_TIMEOUT_MS = 15 * 60_000;
/** A cluster process must be up (health endpoint, consumers) within this. */
const START_TIMEOUT_MS = 90_000;
const SERVICES = ['db', 's3', 'nats'] as const;
type ServiceName = (typeof SERVICES)[number];
const CLK_TCK = 100;
const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Small measurements: CPU time from /proc, /metrics, PostgreSQL statistics

/** utime + stime (and the same of waited-for children) of a process, in seconds. */
function cpuOfPid(pid: number): { self: number; children: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17.
    const at = (field: number): number => Number(fields[field - 3]) / CLK_TCK;
    return { self: at(14) + at(15), children: at(16) + at(17) };
  } catch {
    return undefined;
  }
}

/** CPU seconds of the machine's processes named `comm` (their own, and of their exited children whose parent is not one of them). */
function cpuOfCommand(comm: string): number {
  let total = 0;
  const pids = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      pids.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  for (const [pid, parent] of pids) {
    const cpu = cpuOfPid(pid);
    if (cpu) total += cpu.self + (pids.has(parent) ? 0 : cpu.children);
  }
  return total;
}

const MACHINE_PROCESSES = { 'nats-server': 'nats-server', postgres: 'postgres', dockerd: 'dockerd' } as const;
type MachineProcess = keyof typeof MACHINE_PROCESSES;

interface CpuSnapshot {
  readonly machine: Record<MachineProcess, number>;
  /** This process: s3rver, the OTLP receiver and the benchmark's own driving. */
  readonly bench: number;
  /** Children of this process already waited for (CLI processes, stopped services). */
  readonly reaped: number;
}

function cpuSnapshot(): CpuSnapshot {
  const own = process.cpuUsage();
  const machine = Object.fromEntries(Object.keys(MACHINE_PROCESSES).map((name) => [name, cpuOfCommand(name)])) as Record<MachineProcess, number>;
  return { machine, bench: (own.user + own.system) / 1e6, reaped: cpuOfPid(process.pid)?.children ?? 0 };
}

/** Every sample of a /metrics page, summed over label sets (`name{kind="x"}` also kept by kind). */
async function readMetrics(service: Service): Promise<Map<string, number>> {
  const url = `${await healthBase(service)}/metrics`;
  const read = async (): Promise<string> => (await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(10_000) })).text();
  const text = await read().catch(async () => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return read();
  });
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match) continue;
    const [, name, labels, value] = match;
    const number = Number(value);
    values.set(name!, (values.get(name!) ?? 0) + number);
    const kind = /kind="([^"]+)"/.exec(labels ?? '')?.[1];
    if (kind !== undefined) values.set(`${name!}{${kind}}`, (values.get(`${name!}{${kind}}`) ?? 0) + number);
  }
  return values;
}

const minus = (after: Map<string, number>, before: Map<string, number>): Map<string, number> => new Map([...after].map(([name, value]) => [name, value - (before.get(name) ?? 0)]));
const get = (values: Map<string, number> | undefined, name: string): number => values?.get(name) ?? 0;

async function pgAdmin<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 10_000, statement_timeout: 30_000 });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

function assertLoopback(what: string, url: string): void {
  const host = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? new URL(url).hostname : url.replace(/:\d+$/, '');
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) throw new Error(`${what} must be on loopback, not ${host}`);
}

// ---------------------------------------------------------------------------------------------
// Spans: an OTLP/HTTP (JSON) receiver that keeps each span's duration

interface TimedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  name: string;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: OtlpKeyValue[];
}
interface OtlpTraces {
  resourceSpans?: { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

const otlpValue = (value: OtlpValue): string | number | boolean =>
  value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.doubleValue ?? Boolean(value.boolValue)));
const otlpAttributes = (list: readonly OtlpKeyValue[] | undefined): Record<string, string | number | boolean> => Object.fromEntries((list ?? []).map((kv) => [kv.key, otlpValue(kv.value)]));

async function startSpanReceiver(): Promise<{ endpoint: string; spans: TimedSpan[]; close(): Promise<void> }> {
  const spans: TimedSpan[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.url === '/v1/traces' && String(request.headers['content-type'] ?? '').includes('json')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpTraces;
        for (const resource of body.resourceSpans ?? []) {
          const service = String(otlpAttributes(resource.resource?.attributes)['service.name']);
          for (const scope of resource.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              spans.push({
                service,
                traceId: span.traceId,
                name: span.name,
                startMs: Number(BigInt(span.startTimeUnixNano) / 1000n) / 1000,
                endMs: Number(BigInt(span.endTimeUnixNano) / 1000n) / 1000,
                attributes: otlpAttributes(span.attributes),
              });
            }
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Runs

interface ImageScan {
  readonly name: string;
  readonly seconds: number;
  /** Objects the scan analysed now (its `objects … (N analysed now …)` line). */
  readonly analysed: number;
  readonly objects: number;
  /** Outputs byte-identical to embedded mode's (undefined for embedded itself). */
  readonly sameBytes?: boolean;
}

interface ProcessFigures {
  readonly name: string;
  readonly cpuSeconds: number;
  readonly seconds: Record<ServiceName, number>;
  readonly calls: Record<ServiceName, number>;
  readonly unitsDone: Record<string, number>;
  readonly unitRunSeconds: Record<string, number>;
  readonly unitQueueSeconds: Record<string, number>;
  readonly analysed: number;
  readonly exitCode: number | null;
}

interface RunResult {
  readonly label: string;
  readonly mode: 'embedded' | 'cluster';
  readonly workers: number;
  readonly concurrent: boolean;
  readonly traced: boolean;
  readonly wallSeconds: number;
  /** Processes up and ready (cluster only). */
  readonly startSeconds: number;
  readonly images: ImageScan[];
  readonly analysed: number;
  readonly processes: ProcessFigures[];
  /** CPU seconds during the scans, by what spent them. */
  readonly cpu: Record<string, number>;
  readonly pg?: { readonly xactCommit: number; readonly rowsInserted: Record<string, number> };
  readonly spans?: TimedSpan[];
}

const imageRef = (image: CorpusImage): string => `docker-daemon:${image.tag}`;

function parseScanOutput(stdout: string): { analysed: number; objects: number } {
  const match = /^objects\s+(\d+) \((\d+) analysed now/m.exec(stdout);
  if (!match) throw new Error(`no objects line in the scan output:\n${stdout.slice(-2000)}`);
  return { objects: Number(match[1]), analysed: Number(match[2]) };
}

async function sameOutputs(expected: string, actual: string): Promise<boolean> {
  for (const name of OUTPUTS) {
    const [a, b] = await Promise.all([fs.readFile(path.join(expected, name)), fs.readFile(path.join(actual, name))]);
    if (!a.equals(b)) return false;
  }
  return true;
}

async function scanOne(image: CorpusImage, outDir: string, args: string[], env: NodeJS.ProcessEnv, embeddedDir?: string): Promise<ImageScan> {
  await fs.mkdir(outDir, { recursive: true });
  const started = performance.now();
  const { stdout } = await cli(['scan', imageRef(image), ...args, ...outputFlags(outDir)], env, SCAN_TIMEOUT_MS);
  const seconds = (performance.now() - started) / 1000;
  const counted = parseScanOutput(stdout);
  return { name: image.name, seconds, ...counted, ...(embeddedDir ? { sameBytes: await sameOutputs(embeddedDir, outDir) } : {}) };
}

function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(MACHINE_PROCESSES) as MachineProcess[]) out[name] = after.machine[name] - before.machine[name];
  out['bench process (s3rver, driver)'] = after.bench - before.bench;
  return out;
}

async function embeddedRun(images: CorpusImage[], work: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  const cacheDir = path.join(work, 'embedded-cache');
  const before = cpuSnapshot();
  const started = performance.now();
  const scans: ImageScan[] = [];
  for (const image of images) {
    const scan = await scanOne(image, path.join(work, 'embedded', image.name), ['--cache-dir', cacheDir], env);
    progress(`  embedded ${image.name}: ${scan.seconds.toFixed(1)} s, ${scan.analysed} analysed`);
    scans.push(scan);
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const after = cpuSnapshot();
  const cpu = { 'dockergate scan (CLI processes)': after.reaped - before.reaped, ...cpuDelta(before, after) };
  return { label: 'embedded, sequential', mode: 'embedded', workers: 0, concurrent: false, traced: false, wallSeconds, startSeconds: 0, images: scans, analysed: scans.reduce((n, s) => n + s.analysed, 0), processes: [], cpu };
}

interface ClusterOptions {
  readonly workers: number;
  readonly concurrent: boolean;
  readonly workerConcurrency: number;
  readonly coordinatorConcurrency: number;
  readonly otlpEndpoint?: string;
}

/** Cleanups still to run (deployments, S3 servers, processes), run on failure and on the watchdog. */
const cleanups = new Set<() => Promise<void>>();

async function clusterRun(images: CorpusImage[], work: string, options: ClusterOptions): Promise<RunResult> {
  const label = `cluster, ${options.workers} worker${options.workers > 1 ? 's' : ''}, ${options.concurrent ? 'all images at once' : 'sequential'}${options.otlpEndpoint ? ', traced' : ''}`;
  const tag = label.replace(/[^a-z0-9]+/g, '-');
  const s3 = await startTestS3();
  let deployment: Deployment | undefined;
  const services: Service[] = [];
  const cleanup = async (): Promise<void> => {
    for (const service of services) await stopService(service, 30_000);
    await deployment?.close();
    await s3.close();
  };
  cleanups.add(cleanup);
  try {
    const extraEnv: NodeJS.ProcessEnv = options.otlpEndpoint ? { OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint } : {};
    deployment = await createDeployment({ natsUrl: NATS_URL, pgAdminUrl: PG_ADMIN_URL, s3Endpoint: s3.endpoint }, extraEnv);
    const env = deployment.env;
    const starting = performance.now();
    const coordinator = startService('coordinator', ['coordinator', '--concurrency', String(options.coordinatorConcurrency), ...HEALTH], env);
    services.push(coordinator);
    for (let i = 1; i <= options.workers; i++) services.push(startService(`worker-${i}`, ['worker', '--concurrency', String(options.workerConcurrency), ...HEALTH], env));
    await Promise.all(services.map((service) => said(service, service === coordinator ? 'waiting for scans' : 'waiting for units', START_TIMEOUT_MS)));
    await Promise.all(services.map((service) => healthBase(service)));
    const startSeconds = (performance.now() - starting) / 1000;
    const metricsBefore = await Promise.all(services.map(readMetrics));
    const cpuBefore = services.map((service) => cpuOfPid(service.child.pid!)?.self ?? 0);
    const before = cpuSnapshot();
    const started = performance.now();
    const scanImage = (image: CorpusImage): Promise<ImageScan> => scanOne(image, path.join(work, tag, image.name), ['--cluster'], env, path.join(work, 'embedded', image.name));
    let scans: ImageScan[];
    if (options.concurrent) scans = await Promise.all(images.map(scanImage));
    else {
      scans = [];
      for (const image of images) {
        const scan = await scanImage(image);
        progress(`  ${label}: ${image.name}: ${scan.seconds.toFixed(1)} s, ${scan.analysed} analysed${scan.sameBytes ? '' : ', OUTPUTS DIFFER from embedded'}`);
        scans.push(scan);
      }
    }
    const wallSeconds = (performance.now() - started) / 1000;
    const after = cpuSnapshot();
    const metricsAfter = await Promise.all(services.map(readMetrics));
    const cpuAfter = services.map((service) => cpuOfPid(service.child.pid!)?.self ?? 0);
    const processes: ProcessFigures[] = [];
    const exitCodes: (number | null)[] = [];
    for (const service of services) exitCodes.push(await stopService(service, 60_000));
    for (const [index, service] of services.entries()) {
      const delta = minus(metricsAfter[index]!, metricsBefore[index]!);
      const byKind = (name: string): Record<string, number> =>
        Object.fromEntries([...delta].filter(([key]) => key.startsWith(`${name}{`)).map(([key, value]) => [key.slice(name.length + 1, -1), value]));
      processes.push({
        name: service.name,
        cpuSeconds: cpuAfter[index]! - cpuBefore[index]!,
        seconds: Object.fromEntries(SERVICES.map((s) => [s, get(delta, `dockergate_${s}_seconds_total`)])) as Record<ServiceName, number>,
        calls: Object.fromEntries(SERVICES.map((s) => [s, get(delta, `dockergate_${s}_calls_total`)])) as Record<ServiceName, number>,
        unitsDone: byKind('dockergate_units_done_total'),
        unitRunSeconds: byKind('dockergate_unit_run_seconds_total'),
        unitQueueSeconds: byKind('dockergate_unit_queue_seconds_total'),
        analysed: get(delta, 'dockergate_objects_analysed_total') + get(delta, 'dockergate_objects_failed_total'),
        exitCode: exitCodes[index]!,
      });
    }
    // Backends flush their statistics as they exit: give the last ones a moment.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const [database] = await pgAdmin<{ xact_commit: string }>('select xact_commit from pg_stat_database where datname = $1', [deployment.databaseUrl.replace(/^.*\//, '')]);
    const tables = await deployment.query<{ relname: string; n_tup_ins: string }>("select relname, n_tup_ins from pg_stat_user_tables where schemaname = 'public' order by relname");
    const cpu = {
      coordinator: processes[0]!.cpuSeconds,
      workers: processes.slice(1).reduce((n, p) => n + p.cpuSeconds, 0),
      'dockergate scan --cluster (CLI processes)': after.reaped - before.reaped,
      ...cpuDelta(before, after),
    };
    return {
      label,
      mode: 'cluster',
      workers: options.workers,
      concurrent: options.concurrent,
      traced: options.otlpEndpoint !== undefined,
      wallSeconds,
      startSeconds,
      images: scans,
      analysed: scans.reduce((n, s) => n + s.analysed, 0),
      processes,
      cpu,
      pg: { xactCommit: Number(database?.xact_commit ?? 0), rowsInserted: Object.fromEntries(tables.map((t) => [t.relname, Number(t.n_tup_ins)])) },
    };
  } catch (err) {
    for (const service of services) process.stderr.write(`--- ${service.name}\n${service.stderr.join('').slice(-4000)}\n`);
    throw err;
  } finally {
    cleanups.delete(cleanup);
    await cleanup();
  }
}

interface BusBench {
  readonly units: number;
  readonly inFlight: number;
  readonly slots: number;
  readonly seconds: number;
  readonly unitsPerSecond: number;
  readonly natsCallsPerUnit: number;
  readonly natsMsPerCall: number;
  readonly natsServerCpuPerUnitMs: number;
}

/** No-op units through the JetStream bus (publish, pull, result to KV, ack, watch): the work queue's own cost. */
async function busBench(units: number, inFlight: number, slots: number): Promise<BusBench> {
  const prefix = `dgbench-${randomUUID().slice(0, 8)}`;
  const bus = await JetStreamBus.connect(NATS_URL, { prefix, concurrency: slots });
  const cleanup = async (): Promise<void> => {
    await bus.destroy();
    await bus.close();
  };
  cleanups.add(cleanup);
  try {
    bus.handle<{ n: number }, { n: number }>('noop', async (payload) => payload);
    // Warm-up: the consumer exists and one unit went round.
    await bus.request('noop', `warm-${prefix}`, { n: -1 });
    const natsBefore = roundTripCounters();
    const serverBefore = cpuOfCommand('nats-server');
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < units) {
          const n = next++;
          await bus.request('noop', `${prefix}-${n}`, { n });
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const natsAfter = roundTripCounters();
    const calls = natsAfter.dockergate_nats_calls_total! - natsBefore.dockergate_nats_calls_total!;
    const natsSeconds = natsAfter.dockergate_nats_seconds_total! - natsBefore.dockergate_nats_seconds_total!;
    return {
      units,
      inFlight,
      slots,
      seconds,
      unitsPerSecond: units / seconds,
      natsCallsPerUnit: calls / units,
      natsMsPerCall: (1000 * natsSeconds) / calls,
      natsServerCpuPerUnitMs: (1000 * (cpuOfCommand('nats-server') - serverBefore)) / units,
    };
  } finally {
    cleanups.delete(cleanup);
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// Derived figures and the printed report

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
const total = (run: RunResult, service: ServiceName, field: 'seconds' | 'calls'): number => sum(run.processes.map((p) => p[field][service]));
const fixed = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const pct = (value: number): string => `${fixed(100 * value, 1)} %`;

interface TraceFigures {
  readonly perImage: { name: string; scanSeconds: number; linkSeconds: number; links: number; extractSeconds: number; analysisSeconds: number; analyses: number; parallelism: number; peakAnalyses: number }[];
  readonly analysisSecondsPerObject: number;
  readonly analyseUnitSecondsPerObject: number;
}

function traceFigures(run: RunResult, images: CorpusImage[]): TraceFigures | undefined {
  const spans = run.spans;
  if (!spans || spans.length === 0) return undefined;
  const traceOf = new Map<string, string>();
  for (const span of spans) if (span.name === 'scan request') traceOf.set(span.traceId, String(span.attributes['dockergate.reference']));
  const perImage = images.map((image) => {
    const ids = new Set([...traceOf].filter(([, ref]) => ref === imageRef(image)).map(([id]) => id));
    const mine = spans.filter((span) => ids.has(span.traceId));
    const seconds = (name: string, service?: string): number => sum(mine.filter((s) => s.name === name && (service === undefined || s.service === service)).map((s) => s.endMs - s.startMs)) / 1000;
    const analyses = mine.filter((s) => s.name === 'object analysis');
    const scan = seconds('scan', 'dockergate-coordinator');
    // Most analyses running at one moment (sweep over start and end times).
    const events = analyses.flatMap((s) => [[s.startMs, 1] as const, [s.endMs, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let running = 0;
    let peak = 0;
    for (const [, step] of events) peak = Math.max(peak, (running += step));
    const analysisSeconds = sum(analyses.map((s) => s.endMs - s.startMs)) / 1000;
    return {
      name: image.name,
      scanSeconds: scan,
      linkSeconds: seconds('link', 'dockergate-coordinator'),
      links: mine.filter((s) => s.name === 'link').length,
      extractSeconds: seconds('extract layers', 'dockergate-coordinator'),
      analysisSeconds,
      analyses: analyses.length,
      parallelism: scan > 0 ? analysisSeconds / scan : 0,
      peakAnalyses: peak,
    };
  });
  const analyses = spans.filter((s) => s.name === 'object analysis');
  const units = spans.filter((s) => s.name === 'unit analyse-object' && s.service === 'dockergate-worker');
  return {
    perImage,
    analysisSecondsPerObject: sum(analyses.map((s) => s.endMs - s.startMs)) / 1000 / Math.max(1, analyses.length),
    analyseUnitSecondsPerObject: sum(units.map((s) => s.endMs - s.startMs)) / 1000 / Math.max(1, analyses.length),
  };
}

function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

interface Report {
  readonly machine: { cores: number; cpu: string; memoryGiB: number; node: string };
  readonly images: { name: string; sizeMB: number }[];
  readonly cliStartSeconds: number;
  /** 1-minute load average before and after the runs (other work on the machine skews every figure). */
  readonly load: { before: number; after: number };
  readonly workerConcurrency: number;
  readonly runs: RunResult[];
  readonly bus?: BusBench;
  readonly notes: string[];
}

function render(report: Report, images: CorpusImage[]): string {
  const out: string[] = [];
  const { runs } = report;
  const embedded = runs.find((r) => r.mode === 'embedded')!;
  const clusters = runs.filter((r) => r.mode === 'cluster');
  out.push(
    `machine: ${report.machine.cores} cores (${report.machine.cpu}), ${report.machine.memoryGiB} GiB, Node ${report.machine.node}. ` +
      `ONLY ${report.machine.cores} CORES: the coordinator, the workers, nats-server, PostgreSQL, s3rver and dockerd share them, so 1 against 2 workers ` +
      'measures the cost of coordination more than scaling.',
    `images (docker-daemon:, sizes as docker reports them): ${report.images.map((i) => `${i.name} ${fixed(i.sizeMB)} MB`).join(', ')}`,
    `load average (1 min): ${fixed(report.load.before, 2)} before, ${fixed(report.load.after, 2)} after the runs${Math.max(report.load.before, report.load.after) > report.machine.cores ? ` — MORE THAN ${report.machine.cores}: other work shared the machine, the figures are skewed` : ''}.`,
    `a CLI process (node + tsx + dockergate --version) takes ${fixed(report.cliStartSeconds, 2)} s; every scan below is one CLI process (embedded: the scan itself; cluster: scan --cluster, a client that submits and waits).`,
    '',
    '### Wall time',
    '',
  );
  out.push(
    table(
      ['run', 'processes', 'wall', 'images/min', 'objects analysed', 'objects/s', 'CPU s (all processes)', 'wall vs embedded'],
      runs.map((r) => [
        r.label,
        r.mode === 'embedded' ? '1 CLI per image' : `1 coordinator + ${r.workers} worker${r.workers > 1 ? 's' : ''} (start-up ${fixed(r.startSeconds)} s, not counted)`,
        `${fixed(r.wallSeconds)} s`,
        fixed((60 * r.images.length) / r.wallSeconds),
        r.analysed,
        fixed(r.analysed / r.wallSeconds, 2),
        fixed(sum(Object.values(r.cpu))),
        r === embedded ? '1.00× (baseline)' : `${fixed(r.wallSeconds / embedded.wallSeconds, 2)}×`,
      ]),
    ),
  );
  out.push('', '### Per image (seconds of its CLI process; sequential runs)', '');
  const sequential = runs.filter((r) => !r.concurrent);
  out.push(
    table(
      ['image', 'objects (analysed now)', ...sequential.map((r) => r.label), 'same bytes as embedded'],
      images.map((image) => {
        const base = embedded.images.find((s) => s.name === image.name)!;
        return [
          image.name,
          `${base.objects} (${base.analysed})`,
          ...sequential.map((r) => {
            const scan = r.images.find((s) => s.name === image.name)!;
            return r === embedded ? `${fixed(scan.seconds)} s` : `${fixed(scan.seconds)} s (${fixed(scan.seconds / base.seconds, 2)}×)`;
          }),
          clusters.every((r) => r.images.find((s) => s.name === image.name)?.sameBytes) ? 'yes' : 'NO',
        ];
      }),
    ),
  );
  out.push('', '### Round trips to PostgreSQL (db), S3 and NATS, summed over the coordinator and the workers (scan phase only)', '');
  out.push(
    table(
      ['run', 'service', 'seconds', 'calls', 'ms/call', 'share of wall × processes', 'per process (seconds, share of its wall)'],
      clusters.flatMap((r) =>
        SERVICES.map((service) => {
          const seconds = total(r, service, 'seconds');
          const calls = total(r, service, 'calls');
          return [
            r.label,
            service,
            fixed(seconds, 2),
            calls,
            fixed((1000 * seconds) / calls, 2),
            pct(seconds / (r.wallSeconds * r.processes.length)),
            r.processes.map((p) => `${p.name} ${fixed(p.seconds[service], 2)} (${pct(p.seconds[service] / r.wallSeconds)})`).join('; '),
          ];
        }),
      ),
    ),
  );
  out.push('', '### CPU seconds during the scans, by process (from /proc; the machine has ' + `${report.machine.cores} cores)`, '');
  const cpuNames = [...new Set(runs.flatMap((r) => Object.keys(r.cpu)))];
  out.push(
    table(
      ['run', ...cpuNames, 'total', `utilisation of ${report.machine.cores} cores`],
      runs.map((r) => [r.label, ...cpuNames.map((name) => (r.cpu[name] === undefined ? '-' : fixed(r.cpu[name]!))), fixed(sum(Object.values(r.cpu))), pct(sum(Object.values(r.cpu)) / (r.wallSeconds * report.machine.cores))]),
    ),
  );
  out.push('', '### Units and PostgreSQL writes (scan phase; PostgreSQL transactions include each process\'s start-up)', '');
  out.push(
    table(
      ['run', 'analyse-object units', 'analysis run s/unit', 'queue wait s/unit', 'extract-layer units', 'extract run s/unit', 'scan-image units', 'PG transactions', 'rows inserted (public tables)', 'per image: db / s3 / nats calls'],
      clusters.map((r) => {
        const units = (kind: string): number => sum(r.processes.map((p) => p.unitsDone[kind] ?? 0));
        const run = (kind: string): number => sum(r.processes.map((p) => p.unitRunSeconds[kind] ?? 0));
        const queue = (kind: string): number => sum(r.processes.map((p) => p.unitQueueSeconds[kind] ?? 0));
        const rows = sum(Object.values(r.pg?.rowsInserted ?? {}));
        return [
          r.label,
          units('analyse-object'),
          fixed(run('analyse-object') / units('analyse-object'), 2),
          fixed(queue('analyse-object') / units('analyse-object'), 2),
          units('extract-layer'),
          fixed(run('extract-layer') / units('extract-layer'), 2),
          units('scan-image'),
          r.pg?.xactCommit ?? '-',
          `${rows} (${Object.entries(r.pg?.rowsInserted ?? {}).filter(([, n]) => n > 0).map(([t, n]) => `${t} ${n}`).join(', ')})`,
          SERVICES.map((s) => fixed(total(r, s, 'calls') / r.images.length, 0)).join(' / '),
        ];
      }),
    ),
  );
  const traced = clusters.find((r) => r.traced);
  const figures = traced ? traceFigures(traced, images) : undefined;
  if (figures) {
    out.push('', `### Spans of the traced run (${traced!.label}; OTLP to a receiver in this process)`, '');
    out.push(
      table(
        ['image', 'coordinator scan', 'extract layers', 'link (single-threaded)', 'links', 'object analyses', 'analysis s', 'analyses at once (mean / peak)'],
        figures.perImage.map((f) => [f.name, `${fixed(f.scanSeconds, 2)} s`, `${fixed(f.extractSeconds, 2)} s`, `${fixed(f.linkSeconds, 3)} s`, f.links, f.analyses, fixed(f.analysisSeconds, 2), `${fixed(f.parallelism, 2)} / ${f.peakAnalyses}`]),
      ),
    );
  }
  if (report.bus) {
    const b = report.bus;
    out.push(
      '',
      `### JetStream work queue alone: ${b.units} no-op units, ${b.inFlight} requests in flight, one process with ${b.slots} pull slots`,
      '',
      `${fixed(b.unitsPerSecond, 0)} units/s (${fixed(b.seconds, 2)} s); ${fixed(b.natsCallsPerUnit, 2)} timed NATS calls per unit (result look-up, publish, result put, ack; the pull itself is not timed) at ${fixed(b.natsMsPerCall, 2)} ms each; nats-server CPU ${fixed(b.natsServerCpuPerUnitMs, 2)} ms per unit.`,
    );
  }
  out.push('', '### Model: 100 workers', '', ...model(report, figures).map((line) => `- ${line}`));
  out.push('', ...report.notes.map((note) => `note: ${note}`));
  return out.join('\n');
}

/** The 100-worker model from this run's figures; every line says whether it is measured or modelled. */
function model(report: Report, figures: TraceFigures | undefined): string[] {
  const lines: string[] = [];
  const run = report.runs.find((r) => r.mode === 'cluster' && r.workers === 2 && !r.concurrent && !r.traced) ?? report.runs.find((r) => r.mode === 'cluster');
  if (!run) return lines;
  const images = run.images.length;
  const objects = run.analysed;
  const coordinator = run.processes[0]!;
  const workers = run.processes.slice(1);
  const kindSeconds = (kind: string): number => sum(workers.map((p) => p.unitRunSeconds[kind] ?? 0));
  const kindUnits = (kind: string): number => sum(workers.map((p) => p.unitsDone[kind] ?? 0));
  // Worker-seconds one image of this mix keeps a worker slot busy (units of both roles).
  const workerSecondsPerImage = (kindSeconds('extract-layer') + kindSeconds('analyse-object')) / images;
  const coordinatorCpuPerImage = coordinator.cpuSeconds / images;
  const perImage = (service: ServiceName, field: 'seconds' | 'calls', of: readonly ProcessFigures[] = run.processes): number => sum(of.map((p) => p[field][service])) / images;
  const unitsPerImage = sum(run.processes.flatMap((p) => Object.values(p.unitsDone))) / images;
  const rowsPerImage = sum(Object.values(run.pg?.rowsInserted ?? {})) / images;
  const pgCpuPerImage = (run.cpu.postgres ?? 0) / images;
  const natsIdlePerProcessSecond = (run.cpu['nats-server'] ?? 0) / (run.wallSeconds * run.processes.length);
  const stagedMBPerImage = sum(report.images.map((i) => i.sizeMB)) / images;
  const W = 100;
  lines.push(
    `measured (${run.label}), per image of this mix (${fixed(objects / images, 1)} objects analysed, ${fixed(stagedMBPerImage, 0)} MB uncompressed): ` +
      `coordinator ${fixed(perImage('db', 'calls', [coordinator]), 0)} PostgreSQL / ${fixed(perImage('s3', 'calls', [coordinator]), 0)} S3 / ${fixed(perImage('nats', 'calls', [coordinator]), 0)} NATS calls; ` +
      `workers ${fixed(perImage('db', 'calls', workers), 0)} / ${fixed(perImage('s3', 'calls', workers), 0)} / ${fixed(perImage('nats', 'calls', workers), 0)} (an S3 GET counts twice, request and body); ` +
      `${fixed(unitsPerImage, 1)} units; ${fixed(rowsPerImage, 0)} rows inserted (${fixed(rowsPerImage / Math.max(1, objects / images), 0)} per analysed object, mostly object_exports, object_reaches and layer_files).`,
    `measured: per call PostgreSQL ${fixed((1000 * total(run, 'db', 'seconds')) / total(run, 'db', 'calls'), 1)} ms, S3 (s3rver) ${fixed((1000 * total(run, 's3', 'seconds')) / total(run, 's3', 'calls'), 1)} ms, NATS ${fixed((1000 * total(run, 'nats', 'seconds')) / total(run, 'nats', 'calls'), 1)} ms; S3 is ${pct(total(run, 's3', 'seconds') / (run.wallSeconds * run.processes.length))} of the processes' wall time, PostgreSQL ${pct(total(run, 'db', 'seconds') / (run.wallSeconds * run.processes.length))}, NATS ${pct(total(run, 'nats', 'seconds') / (run.wallSeconds * run.processes.length))}.`,
    `measured: worker slots are busy ${fixed(workerSecondsPerImage, 2)} s per image (extract-layer ${fixed(kindSeconds('extract-layer') / Math.max(1, kindUnits('extract-layer')), 2)} s per layer, analyse-object ${fixed(kindSeconds('analyse-object') / Math.max(1, kindUnits('analyse-object')), 3)} s per object` +
      (figures ? `, of which the analysis itself ${fixed(figures.analysisSecondsPerObject, 3)} s: the rest is the unit's KB look-up, S3 fetch and KB write` : '') +
      `); the coordinator spends ${fixed(coordinatorCpuPerImage, 2)} CPU s per image (read the daemon's export, stage layers to S3, merge trees, plan, link, store the scan)` +
      (figures ? `, linking ${fixed(sum(figures.perImage.map((f) => f.linkSeconds)) / images, 3)} s of it on average (at most ${fixed(Math.max(...figures.perImage.map((f) => f.linkSeconds)), 3)} s, traced run)` : '') + '.',
  );
  if (figures) {
    lines.push(
      `measured: one image's scan keeps on average ${fixed(sum(figures.perImage.map((f) => f.analysisSeconds)) / Math.max(1e-9, sum(figures.perImage.map((f) => f.scanSeconds))), 2)} analyses running and at most ${Math.max(...figures.perImage.map((f) => f.peakAnalyses))} at once: objects are found in waves (entrypoint → load set → link → dlopen/exec/extension modules → …) after the layers are extracted, so one image never uses 100 workers; a fleet does, by scanning many images at once.`,
    );
  }
  const imagesPerSecond = W / workerSecondsPerImage;
  lines.push(
    `modelled: 100 worker slots kept busy on unseen images of this mix (${fixed(workerSecondsPerImage, 2)} slot-seconds each, measured on a contended 2-core machine, so pessimistic) finish ≈ ${fixed(imagesPerSecond, 1)} images/s (${fixed(imagesPerSecond * 60, 0)}/min).`,
    `modelled, coordinators: ${fixed(imagesPerSecond * coordinatorCpuPerImage, 1)} coordinator cores for that rate (${fixed(coordinatorCpuPerImage, 2)} CPU s per image, single-threaded per process): ≈ 1 coordinator per ${fixed(W / Math.max(1e-9, imagesPerSecond * coordinatorCpuPerImage), 1)} workers. Any number of coordinators may run (each scan-image unit goes to one; a manifest is planned once under an advisory lock), and for local sources (docker-daemon: as here, archives, OCI layouts) each stages every layer through its own machine: ${fixed(imagesPerSecond * stagedMBPerImage, 0)} MB/s into S3 and as much out to the workers at that rate (registry layers are fetched by the extracting worker instead and skip this).`,
    `modelled, NATS: ${fixed(imagesPerSecond * unitsPerImage, 0)} units/s and ${fixed(imagesPerSecond * (perImage('nats', 'calls')), 0)} timed calls/s` +
      (report.bus ? `; the work queue alone measured ${fixed(report.bus.unitsPerSecond, 0)} no-op units/s from one process here (${fixed(report.bus.natsCallsPerUnit, 1)} timed calls and ${fixed(report.bus.natsServerCpuPerUnitMs, 2)} ms of nats-server CPU each) → ${fixed((imagesPerSecond * unitsPerImage * report.bus.natsServerCpuPerUnitMs) / 1000, 2)} nats-server cores for the units` : '') +
      `; idle cost measured ${fixed(1000 * natsIdlePerProcessSecond, 2)} ms of nats-server CPU per process-second (heartbeats, 2-s pull expiries, KV watch) → ≈ ${fixed((W + 1) * natsIdlePerProcessSecond, 2)} cores for 101 processes. Not the bottleneck.`,
    `modelled, PostgreSQL: ${fixed(imagesPerSecond * perImage('db', 'calls'), 0)} calls/s, ${fixed(imagesPerSecond * rowsPerImage, 0)} rows inserted/s, ${fixed(imagesPerSecond * perImage('db', 'seconds'), 1)} connections busy on average; server CPU ${fixed(imagesPerSecond * pgCpuPerImage, 1)} cores at the measured ${fixed(pgCpuPerImage, 2)} s per image (includes the server's background work: an upper bound). One well-provisioned PostgreSQL primary takes that, but it is the first shared service to need attention: ≈ ${fixed(rowsPerImage / Math.max(1, objects / images), 0)} rows per analysed object (its exports and reaches, and the image's layer files).`,
    `modelled, S3: ${fixed(imagesPerSecond * perImage('s3', 'calls'), 0)} calls/s (mostly the workers' CAS writes while extracting: a HEAD and a PUT per ELF file or script not yet stored; and the parts of staged layers), within what S3 takes per key prefix (blobs/sha256/<2 hex>/ spreads them over 256 prefixes); the bytes (${fixed(2 * imagesPerSecond * stagedMBPerImage, 0)} MB/s in and out) matter more than the calls. Here s3rver, in the benchmark process, was the slowest service.`,
    'modelled, bottleneck at 100 workers: the coordinators\' per-image work (staging local layers through the coordinator\'s machine, then planning and linking on one thread) and the layer bytes through S3, not NATS; with a fleet whose images share objects, analyses become knowledge-base hits and the per-image cost (staging, extraction, linking, PostgreSQL writes of layer files) is all that remains.',
  );
  return lines;
}

// ---------------------------------------------------------------------------------------------

let progressOn = true;
function progress(line: string): void {
  if (progressOn) process.stderr.write(`${line}\n`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      'worker-concurrency': { type: 'string', default: '1' },
      'coordinator-concurrency': { type: 'string', default: '2' },
      'no-concurrent': { type: 'boolean', default: false },
      'no-trace': { type: 'boolean', default: false },
      'bus-units': { type: 'string', default: '1000' },
      'timeout-min': { type: 'string', default: '45' },
    },
  });
  assertLoopback('NATS', NATS_URL.includes('://') ? NATS_URL : `nats://${NATS_URL}`);
  assertLoopback('PostgreSQL', PG_ADMIN_URL);
  const positive = (text: string, flag: string): number => {
    const n = Number(text);
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`${flag} must be a positive integer`);
    return n;
  };
  const workerConcurrency = positive(values['worker-concurrency'], '--worker-concurrency');
  const coordinatorConcurrency = positive(values['coordinator-concurrency'], '--coordinator-concurrency');
  const busUnits = positive(values['bus-units'], '--bus-units');
  const timeoutMs = positive(values['timeout-min'], '--timeout-min') * 60_000;
  const images = selectImages(positionals.length > 0 ? positionals : DEFAULT_IMAGES);

  // Bounded: past the budget, clean up what is running (within 60 s) and exit 1.
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench/cluster: over ${timeoutMs / 60_000} min, stopping\n`);
    void Promise.race([Promise.allSettled([...cleanups].map((c) => c())), new Promise((resolve) => setTimeout(resolve, 60_000))]).then(() => process.exit(1));
  }, timeoutMs);
  watchdog.unref();

  progress(`images: ${images.map((i) => i.name).join(', ')}; building any that are missing`);
  const baseId = await baseImageId();
  for (const image of images) {
    const built = await buildImage(image, baseId);
    if (built.status === 'failed') throw new Error(`${image.name}: ${built.error}`);
  }
  const sizes = await Promise.all(
    images.map(async (image) => {
      const { stdout } = await run('docker', ['image', 'inspect', '-f', '{{.Size}}', image.tag], { timeout: 30_000 });
      return { name: image.name, sizeMB: Number(stdout.trim()) / 1e6 };
    }),
  );
  // The servers answer before anything is measured.
  await pgAdmin('select 1');
  const probe = await JetStreamBus.connect(NATS_URL, { prefix: `dgbench-probe-${randomUUID().slice(0, 8)}` });
  await probe.destroy();
  await probe.close();

  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-bench-cluster-'));
  const loadBefore = os.loadavg()[0]!;
  // Only the traced run exports spans (to this process); nothing goes to a collector elsewhere.
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const env: NodeJS.ProcessEnv = { ...process.env };
  const runs: RunResult[] = [];
  let bus: BusBench | undefined;
  let cliStartSeconds = 0;
  try {
    // Warm-up, not measured: tsx's transform cache and the page cache of the images' layers.
    progress('warming up (tsx cache, image layers in the page cache)');
    await cli(['--version'], env, 120_000);
    const startedCli = performance.now();
    await cli(['--version'], env, 120_000);
    cliStartSeconds = (performance.now() - startedCli) / 1000;
    for (const image of images) await run('sh', ['-c', `docker save ${image.tag} > /dev/null`], { timeout: 300_000 });

    progress('embedded mode: every image once, one fresh cache dir');
    runs.push(await embeddedRun(images, work, env));
    const variants: { workers: number; concurrent: boolean; traced: boolean }[] = [
      { workers: 1, concurrent: false, traced: false },
      { workers: 2, concurrent: false, traced: false },
      ...(values['no-concurrent'] ? [] : [{ workers: 2, concurrent: true, traced: false }]),
      ...(values['no-trace'] ? [] : [{ workers: 2, concurrent: false, traced: true }]),
    ];
    for (const variant of variants) {
      progress(`cluster: ${variant.workers} worker(s), ${variant.concurrent ? 'all images at once' : 'sequential'}${variant.traced ? ', traced' : ''} (fresh deployment)`);
      const receiver = variant.traced ? await startSpanReceiver() : undefined;
      try {
        const result = await clusterRun(images, work, { workers: variant.workers, concurrent: variant.concurrent, workerConcurrency, coordinatorConcurrency, ...(receiver ? { otlpEndpoint: receiver.endpoint } : {}) });
        runs.push(receiver ? { ...result, spans: [...receiver.spans] } : result);
        progress(`  ${result.label}: ${fixed(result.wallSeconds)} s`);
      } finally {
        await receiver?.close();
      }
    }
    progress(`JetStream work queue: ${busUnits} no-op units`);
    bus = await busBench(busUnits, 64, 16);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
    // Leftovers of a failed run (normally none: each run cleans up after itself).
    for (const cleanup of [...cleanups]) await cleanup().catch(() => {});
    clearTimeout(watchdog);
  }
  const notes = [
    `workers run with --concurrency ${workerConcurrency} (one slot per role: extract and analyse), so 2 workers run at most 2 analyses at once, as embedded mode's pool does on ${os.availableParallelism()} cores; the coordinator with --concurrency ${coordinatorConcurrency}.`,
    'round-trip seconds are those of the coordinator and workers (the /metrics counters); the `scan --cluster` client\'s own NATS request and PostgreSQL read are not counted. Concurrent calls add up, so a process may wait more seconds than its wall time. S3 PUT time includes producing the streamed body (for staging: reading the layer from the daemon\'s export).',
    'PostgreSQL transactions are pg_stat_database.xact_commit of the deployment\'s database over its life (migrations and start-up included); rows inserted are pg_stat_user_tables.n_tup_ins of the public schema.',
    'each cluster run is a new database, stream prefix, s3rver directory and bucket: nothing is cached between runs; embedded mode uses one fresh cache dir for all images, so in both modes an object shared by two images is analysed once.',
  ];
  const report: Report = {
    machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? '?', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    images: sizes,
    cliStartSeconds,
    load: { before: loadBefore, after: os.loadavg()[0]! },
    workerConcurrency,
    runs,
    ...(bus ? { bus } : {}),
    notes,
  };
  if (values.json) {
    const figures = runs.find((r) => r.traced);
    const json = {
      ...report,
      runs: runs.map(({ spans: _spans, ...rest }) => rest),
      traced: figures ? traceFigures(figures, images) : undefined,
      model: model(report, figures ? traceFigures(figures, images) : undefined),
    };
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    process.stdout.write(`${render(report, images)}\n`);
  }
  const failed = runs.flatMap((r) => [...r.images.filter((s) => s.sameBytes === false).map((s) => `${r.label}: ${s.name} outputs differ from embedded`), ...r.processes.filter((p) => p.exitCode !== 0).map((p) => `${r.label}: ${p.name} exited ${p.exitCode}`)]);
  if (failed.length > 0) {
    process.stderr.write(`${failed.join('\n')}\n`);
    process.exitCode = 1;
  }
}

if (import.meta.filename === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  });
}
