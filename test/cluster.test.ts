/**
 * Cluster mode end to end, on real servers on loopback: the machine's NATS JetStream and
 * PostgreSQL (a database of its own per run), and an S3-protocol server (s3rver) this test starts,
 * reached only through @aws-sdk/client-s3. A `dockergate coordinator` process plans the scans that
 * `dockergate scan --cluster` submits, and two `dockergate worker` processes run the units. Every
 * output file must be byte-identical to what embedded `dockergate scan` writes for the same image,
 * no object may be analysed twice, and a coordinator killed mid-scan must lose nothing.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { baseImageId, buildImage } from '../bench/corpus/build.js';
import { selectImages } from '../bench/corpus/images.js';
import { tempDir } from './helpers/layers.js';
import { startTestS3, type TestS3 } from './helpers/s3.js';

const run = promisify(execFile);
const PG_ADMIN_URL = process.env.DOCKERGATE_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env.DOCKERGATE_TEST_NATS_URL ?? '127.0.0.1:4222';
const CORPUS = selectImages(['static-c', 'musl-http', 'trixie-shell', 'trixie-forking', 'trixie-musl-http']);
/** The corpus images from the daemon, and one test image from the loopback registry. */
const REFERENCES = [...CORPUS.map((image) => `docker-daemon:${image.tag}`), 'docker://127.0.0.1:5000/dockergate-test/app:1'];
const OUTPUTS = ['profile.json', 'profile.yaml', 'report.json', 'graph.dot'];

let work: string;
let s3: TestS3;
let database: string;
let env: NodeJS.ProcessEnv;
interface Service {
  readonly child: ChildProcess;
  readonly stderr: string[];
}
const workers: Service[] = [];
const coordinators: Service[] = [];

function cli(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, ['--import', 'tsx', 'test/helpers/cli.ts', ...args], { env: { ...process.env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 });
}

function startService(args: readonly string[]): Service {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/cli.ts', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  return { child, stderr };
}

function startWorker(): void {
  workers.push(startService(['worker', '--concurrency', '1', '--health-port', '0', '--health-address', '127.0.0.1']));
}

/** A counter of a worker's /metrics, summed over its label sets. */
async function metric(worker: Service, name: string): Promise<number> {
  await said(worker, '/healthz');
  const base = /health on (http:\/\/\S+)\/healthz/.exec(worker.stderr.join(''))![1]!;
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
  return sum;
}

function startCoordinator(): Service {
  const coordinator = startService(['coordinator']);
  coordinators.push(coordinator);
  return coordinator;
}

/** Resolves once the service has written `text` to stderr. */
async function said(service: Service, text: string): Promise<void> {
  while (!service.stderr.join('').includes(text)) await new Promise((resolve) => setTimeout(resolve, 100));
}

async function stopWorker(worker: Service): Promise<number | null> {
  // A process that already exited, or was killed by a signal, has nothing left to stop.
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return worker.child.exitCode;
  const exited = new Promise<number | null>((resolve) => worker.child.once('exit', (code) => resolve(code)));
  worker.child.kill('SIGTERM');
  return exited;
}

const outputFlags = (dir: string): string[] => ['-o', path.join(dir, OUTPUTS[0]!), '--k8s', path.join(dir, OUTPUTS[1]!), '--report', path.join(dir, OUTPUTS[2]!), '--graph', path.join(dir, OUTPUTS[3]!)];

before(async () => {
  work = await tempDir('dockergate-cluster-');
  const baseId = await baseImageId();
  for (const image of CORPUS) await buildImage(image, baseId);
  s3 = await startTestS3();
  database = `dgtest_${randomUUID().slice(0, 8)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${database}`);
  await admin.end();
  env = {
    ...process.env,
    NATS_URL,
    DATABASE_URL: PG_ADMIN_URL.replace(/\/[^/]*$/, `/${database}`),
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: 'dockergate-cluster-test',
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    DOCKERGATE_CLUSTER: `dgtest-${randomUUID().slice(0, 8)}`,
  };
});

after(async () => {
  for (const service of [...coordinators, ...workers]) await stopWorker(service);
  if (process.env.DOCKERGATE_TEST_SERVICE_LOGS) for (const service of [...coordinators, ...workers]) console.error(service.stderr.join(""));
  // The deployment's streams and bucket, then its database and S3 server.
  const { JetStreamBus } = await import('../infra/jetstream-bus.js');
  const bus = await JetStreamBus.connect(NATS_URL, { prefix: env.DOCKERGATE_CLUSTER! });
  await bus.destroy();
  await bus.close();
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.end();
  await s3.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('cluster mode', () => {
  it('one coordinator and two worker processes write the same bytes as embedded mode, analysing each object once', { timeout: 900_000 }, async () => {
    startCoordinator();
    startWorker();
    startWorker();
    for (const [index, reference] of REFERENCES.entries()) {
      const embedded = path.join(work, `embedded-${index}`);
      const cluster = path.join(work, `cluster-${index}`);
      await fs.mkdir(embedded);
      await fs.mkdir(cluster);
      await cli(['scan', reference, '--cache-dir', path.join(work, 'cache'), ...outputFlags(embedded)]);
      await cli(['scan', reference, '--cluster', ...outputFlags(cluster)], env);
      for (const name of OUTPUTS) {
        const [a, b] = await Promise.all([fs.readFile(path.join(embedded, name)), fs.readFile(path.join(cluster, name))]);
        assert.ok(a.equals(b), `${reference}: ${name} differs between embedded and cluster mode`);
      }
    }
    // The workers' metrics count the same analyses, and every analyse-object unit answered once.
    const analysedByMetrics = (
      await Promise.all(workers.map(async (worker) => (await metric(worker, 'dockergate_objects_analysed_total')) + (await metric(worker, 'dockergate_objects_failed_total'))))
    ).reduce((a, b) => a + b, 0);
    const unitsDone = (await Promise.all(workers.map((worker) => metric(worker, 'dockergate_units_done_total')))).reduce((a, b) => a + b, 0);
    const stopped = await Promise.all(workers.map(stopWorker));
    assert.deepEqual(stopped, [0, 0], `workers exit 0 on SIGTERM: ${workers.map((w) => w.stderr.join('')).join('\n')}`);
    // Every analysis that ran is one analyses row; each object's row is unique by its key.
    const ran = workers.map((worker) => {
      const counted = /after (\d+) analyses \((\d+) failed\)/.exec(worker.stderr.join(''));
      return counted ? Number(counted[1]) + Number(counted[2]) : Number.NaN;
    });
    const db = new pg.Client({ connectionString: env.DATABASE_URL });
    await db.connect();
    const { rows } = await db.query<{ n: string }>('select count(*) as n from analyses');
    await db.end();
    assert.ok(ran.every((n) => Number.isInteger(n)), `workers report their analyses: ${workers.map((w) => w.stderr.join('')).join('\n')}`);
    assert.equal(ran[0]! + ran[1]!, Number(rows[0]!.n), `analyses run by the workers (${ran}) = objects in the knowledge base`);
    assert.ok(ran[0]! > 0 && ran[1]! > 0, `both workers analysed objects: ${ran}`);
    assert.equal(analysedByMetrics, Number(rows[0]!.n), 'analysed + failed objects in the workers\' metrics = analyses in the knowledge base');
    assert.ok(unitsDone >= analysedByMetrics, `units done (${unitsDone}) cover the analyses`);
  });

  it('a coordinator killed mid-scan loses nothing: another one finishes the scan, with the same bytes', { timeout: 200_000 }, async () => {
    for (const coordinator of coordinators) await stopWorker(coordinator);
    startWorker();
    const reference = 'docker-daemon:dockergate-test/whiteout:1';
    const embedded = path.join(work, 'embedded-killed');
    const cluster = path.join(work, 'cluster-killed');
    await fs.mkdir(embedded);
    await fs.mkdir(cluster);
    await cli(['scan', reference, '--cache-dir', path.join(work, 'cache'), ...outputFlags(embedded)]);
    const doomed = startCoordinator();
    const submitted = cli(['scan', reference, '--cluster', ...outputFlags(cluster)], env);
    await said(doomed, `scanning ${reference}`);
    doomed.child.kill('SIGKILL');
    // JetStream redelivers the scan once its ack wait passes without a heartbeat.
    const successor = startCoordinator();
    await submitted;
    await said(successor, `scanned ${reference}`);
    for (const name of OUTPUTS) {
      const [a, b] = await Promise.all([fs.readFile(path.join(embedded, name)), fs.readFile(path.join(cluster, name))]);
      assert.ok(a.equals(b), `${reference}: ${name} differs after a coordinator restart`);
    }
  });

  it('a missing service setting is a one-line error naming it', async () => {
    const { DATABASE_URL: _unused, ...withoutDatabase } = env;
    await assert.rejects(cli(['scan', REFERENCES[0]!, '--cluster', '-o', path.join(work, 'x.json')], { ...withoutDatabase, DATABASE_URL: '' }), (err: { stderr?: string }) => /cluster mode needs DATABASE_URL \(or --database\)/.test(err.stderr ?? ''));
  });
});
