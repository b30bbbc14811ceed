/**
 * Cluster processes for tests: `dockergate coordinator` and `dockergate worker` run as child
 * processes from sources (test/helpers/cli.ts), their stderr kept, their /metrics read over
 * loopback; a deployment is one database (`dgtest_*`) and one stream prefix (`dgtest-*`) of its
 * own, removed by `close()`. Every wait is bounded.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startTestS3, type TestS3 } from './s3.js';

const run = promisify(execFile);

export const OUTPUTS = ['profile.json', 'profile.yaml', 'report.json', 'graph.dot'] as const;

export const outputFlags = (dir: string): string[] => ['-o', path.join(dir, OUTPUTS[0]), '--k8s', path.join(dir, OUTPUTS[1]), '--report', path.join(dir, OUTPUTS[2]), '--graph', path.join(dir, OUTPUTS[3])];

/** `dockergate …` from sources, as a process; rejects on a non-zero exit or after `timeoutMs`. */
export function cli(args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 300_000) {
  return run(process.execPath, ['--import', 'tsx', 'test/helpers/cli.ts', ...args], { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs, killSignal: 'SIGKILL' });
}

export interface Service {
  readonly name: string;
  readonly child: ChildProcess;
  readonly stderr: string[];
}

export function startService(name: string, args: readonly string[], env: NodeJS.ProcessEnv): Service {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/cli.ts', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  return { name, child, stderr };
}

const HEALTH = ['--health-port', '0', '--health-address', '127.0.0.1'];

/** A worker of both roles running one unit of each kind at a time, with /metrics. */
export function startWorker(env: NodeJS.ProcessEnv, name = 'worker'): Service {
  return startService(name, ['worker', '--concurrency', '1', ...HEALTH], env);
}

export function startCoordinator(env: NodeJS.ProcessEnv, name = 'coordinator'): Service {
  return startService(name, ['coordinator', ...HEALTH], env);
}

export const logOf = (service: Service): string => service.stderr.join('');
export const logsOf = (services: readonly Service[]): string => services.map((service) => `--- ${service.name}\n${logOf(service)}`).join('\n');

/** Resolves once `condition()` is true; rejects after `timeoutMs` with `what` (and `detail()`). */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string, detail: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${detail()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves once the service has written `text` to stderr. */
export async function said(service: Service, text: string | RegExp, timeoutMs = 60_000): Promise<void> {
  const matches = (): boolean => (typeof text === 'string' ? logOf(service).includes(text) : text.test(logOf(service)));
  await waitFor(() => {
    if (!matches() && (service.child.exitCode !== null || service.child.signalCode !== null)) throw new Error(`${service.name} exited before saying ${text}:\n${logOf(service)}`);
    return matches();
  }, timeoutMs, `${service.name} to say ${text}`, () => logOf(service));
}

/** The service's health endpoint, once it is up. */
export async function healthBase(service: Service): Promise<string> {
  await said(service, '/healthz');
  return /health on (http:\/\/\S+)\/healthz/.exec(logOf(service))![1]!;
}

/** A metric of the service's /metrics, summed over its label sets (`kind` filters by unit kind). */
export async function metric(service: Service, name: string, kind?: string): Promise<number> {
  const url = `${await healthBase(service)}/metrics`;
  // A fresh connection per read: a kept-alive one may be closed by the server as it is reused.
  const read = async (): Promise<string> => (await fetch(url, { headers: { connection: 'close' } })).text();
  const text = await read().catch(async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    return read();
  });
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name} `) || line.startsWith(`${name}{`))) continue;
    if (kind !== undefined && !line.includes(`kind="${kind}"`)) continue;
    sum += Number(line.split(' ').pop());
  }
  return sum;
}

/** Objects the worker analysed, whatever the outcome (its /metrics). */
export async function analysesOf(worker: Service): Promise<number> {
  return (await metric(worker, 'dockergate_objects_analysed_total')) + (await metric(worker, 'dockergate_objects_failed_total'));
}

/** Resolves with the first of `workers` seen in the middle of an analysis. */
export async function firstAnalysing(workers: readonly Service[], timeoutMs = 60_000): Promise<Service> {
  let found: Service | undefined;
  await waitFor(async () => {
    for (const worker of workers) if ((await metric(worker, 'dockergate_objects_analysing')) > 0) found = worker;
    return found !== undefined;
  }, timeoutMs, 'a worker to start an analysis', () => logsOf(workers));
  return found!;
}

/** SIGTERM, and the exit code once the process is gone (SIGKILL after `timeoutMs`). */
export async function stopService(service: Service, timeoutMs = 60_000): Promise<number | null> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return service.child.exitCode;
  const exited = new Promise<number | null>((resolve) => service.child.once('exit', (code) => resolve(code)));
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

export interface DeploymentServers {
  readonly natsUrl: string;
  /** A PostgreSQL URL whose user may create databases. */
  readonly pgAdminUrl: string;
  readonly s3Endpoint: string;
}

export interface Deployment {
  /** The environment of every process of this deployment. */
  readonly env: NodeJS.ProcessEnv;
  readonly databaseUrl: string;
  readonly prefix: string;
  /** Runs `query` on the deployment's database. */
  query<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  /** Rows of the `analyses` table: every object analysed, ok or failed. */
  analysesRows(): Promise<number>;
  /** Deletes the deployment's streams and bucket, and drops its database. */
  close(): Promise<void>;
}

export async function createDeployment(servers: DeploymentServers, extraEnv: NodeJS.ProcessEnv = {}): Promise<Deployment> {
  const tag = randomUUID().slice(0, 8);
  const database = `dgtest_${tag}`;
  const prefix = `dgtest-${tag}`;
  const admin = new pg.Client({ connectionString: servers.pgAdminUrl });
  await admin.connect();
  await admin.query(`create database ${database}`);
  await admin.end();
  const databaseUrl = servers.pgAdminUrl.replace(/\/[^/]*$/, `/${database}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NATS_URL: servers.natsUrl,
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: servers.s3Endpoint,
    S3_BUCKET: `dgtest-${tag}`,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    DOCKERGATE_CLUSTER: prefix,
    ...extraEnv,
  };
  const query = async <T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    env,
    databaseUrl,
    prefix,
    query,
    async analysesRows() {
      const rows = await query<{ n: string }>('select count(*) as n from analyses');
      return Number(rows[0]!.n);
    },
    async close() {
      const { JetStreamBus } = await import('../../infra/jetstream-bus.js');
      const bus = await JetStreamBus.connect(servers.natsUrl, { prefix });
      await bus.destroy();
      await bus.close();
      const client = new pg.Client({ connectionString: servers.pgAdminUrl });
      await client.connect();
      await client.query(`drop database if exists ${database} with (force)`);
      await client.end();
    },
  };
}

/** Asserts that every output file is the same bytes in both directories. */
export async function assertSameOutputs(expectedDir: string, actualDir: string, what: string): Promise<void> {
  for (const name of OUTPUTS) {
    const [a, b] = await Promise.all([fs.readFile(path.join(expectedDir, name)), fs.readFile(path.join(actualDir, name))]);
    assert.ok(a.equals(b), `${what}: ${name} differs from embedded mode`);
  }
}

/** The machine's NATS JetStream and PostgreSQL, as the test environment provides them. */
export const MACHINE_NATS_URL = process.env.DOCKERGATE_TEST_NATS_URL ?? '127.0.0.1:4222';
export const MACHINE_PG_ADMIN_URL = process.env.DOCKERGATE_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface MachineDeployment {
  readonly s3: TestS3;
  readonly deployment: Deployment;
  /** Removes the deployment, then stops its S3 server. */
  close(): Promise<void>;
}

/** A deployment on the machine's NATS and PostgreSQL with an s3rver of its own. */
export async function startMachineDeployment(extraEnv: NodeJS.ProcessEnv = {}): Promise<MachineDeployment> {
  const s3 = await startTestS3();
  const deployment = await createDeployment({ natsUrl: MACHINE_NATS_URL, pgAdminUrl: MACHINE_PG_ADMIN_URL, s3Endpoint: s3.endpoint }, extraEnv);
  return {
    s3,
    deployment,
    async close() {
      await deployment.close();
      await s3.close();
    },
  };
}
