/**
 * Cluster mode under faults (issue 10, acceptance point 2), on real servers on loopback: a private
 * nats-server (JetStream, its own store directory) and a private PostgreSQL cluster that this file
 * starts, stops and restarts, and an s3rver per test. Each test runs one coordinator and two
 * worker processes, scans a corpus image with `dockergate scan --cluster`, breaks one thing in the
 * middle of the scan, and checks that the scan completes with the same bytes as embedded mode,
 * that nothing is lost and that nothing is analysed twice: the analyses in the knowledge base equal
 * the analyses the workers' /metrics count.
 *
 * "In the middle" is observed, not guessed: the workers run with the test-only hook
 * DOCKERGATE_TEST_ANALYSIS_DELAY_MS (worker/serve.ts), so each analysis lasts long enough for the
 * test to see `dockergate_objects_analysing` > 0 in a worker's /metrics before it strikes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseImageId, buildImage } from '../bench/corpus/build.js';
import { selectImages } from '../bench/corpus/images.js';
import { JetStreamBus } from '../infra/jetstream-bus.js';
import { gzipLayer, writeOciLayout } from './helpers/layers.js';
import type { ScanReport } from '../coordinator/output/report.js';
import {
  analysesOf,
  assertSameOutputs,
  cli,
  createDeployment,
  type Deployment,
  firstAnalysing,
  logOf,
  logsOf,
  metric,
  outputFlags,
  said,
  type Service,
  startCoordinator,
  startWorker,
  stopService,
} from './helpers/cluster.js';
import { tempDir } from './helpers/layers.js';
import { type PrivateNats, type PrivatePostgres, startPrivateNats, startPrivatePostgres } from './helpers/private-servers.js';
import { startTestS3, type TestS3 } from './helpers/s3.js';

/** A small image (two layers, FROM scratch): a musl program and musl's libc/loader, two objects. */
const CORPUS = selectImages(['musl-http']);
const REFERENCE = `docker-daemon:${CORPUS[0]!.tag}`;
const OBJECTS = 2;
/** The object the poisoned-unit test hangs on: musl's loader, analysed once the program is. */
const LOADER = '/lib/ld-musl-x86_64.so.1';
/** Long enough for a test to see an analysis running and strike before it ends. */
const ANALYSIS_DELAY_MS = '1500';
/** How long a service stays away. */
const OUTAGE_MS = 4_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let work: string;
let nats: PrivateNats;
let postgres: PrivatePostgres;
/** The embedded scan's outputs, the bytes every cluster scan must write. */
let embedded: string;

before(async () => {
  work = await tempDir('dockergate-cluster-faults-');
  const baseId = await baseImageId();
  for (const image of CORPUS) await buildImage(image, baseId);
  [nats, postgres] = await Promise.all([startPrivateNats(), startPrivatePostgres()]);
  embedded = path.join(work, 'embedded');
  await fs.mkdir(embedded);
  await cli(['scan', REFERENCE, '--cache-dir', path.join(work, 'cache'), ...outputFlags(embedded)]);
});

after(async () => {
  await nats?.close();
  await postgres?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** One test's deployment: its database, prefix and S3 server, its processes, all cleaned up. */
interface Cluster {
  readonly deployment: Deployment;
  readonly s3: TestS3;
  readonly coordinator: Service;
  readonly workers: Service[];
  /** Where the cluster scan writes. */
  readonly out: string;
  /** Starts `dockergate scan --cluster`, bounded by `timeoutMs`. */
  scan(timeoutMs?: number): Promise<unknown>;
  close(): Promise<void>;
}

async function startCluster(name: string, env: { all?: NodeJS.ProcessEnv; workers?: NodeJS.ProcessEnv } = {}): Promise<Cluster> {
  const s3 = await startTestS3();
  const deployment = await createDeployment({ natsUrl: nats.url, pgAdminUrl: postgres.adminUrl, s3Endpoint: s3.endpoint }, env.all);
  const coordinator = startCoordinator(deployment.env);
  const workerEnv = { ...deployment.env, DOCKERGATE_TEST_ANALYSIS_DELAY_MS: ANALYSIS_DELAY_MS, ...env.workers };
  const workers = [startWorker(workerEnv, 'worker-1'), startWorker(workerEnv, 'worker-2')];
  const services = [coordinator, ...workers];
  await Promise.all(services.map((service) => said(service, 'waiting for', 60_000)));
  const out = path.join(work, name);
  await fs.mkdir(out);
  return {
    deployment,
    s3,
    coordinator,
    workers,
    out,
    scan: (timeoutMs = 150_000) => cli(['scan', REFERENCE, '--cluster', ...outputFlags(out)], deployment.env, timeoutMs),
    async close() {
      for (const service of services) await stopService(service, 20_000);
      if (process.env.DOCKERGATE_TEST_SERVICE_LOGS) console.error(logsOf(services));
      await deployment.close().catch(() => {});
      await s3.close();
    },
  };
}

/**
 * The scan's CLI must finish, and no service may crash on the way (the one a test kills itself
 * excepted): a crash fails the test at once, with the logs.
 */
async function finished(cluster: Cluster, scan: Promise<unknown>, killed?: Service): Promise<void> {
  const services = [cluster.coordinator, ...cluster.workers].filter((service) => service !== killed);
  let watching = true;
  const crashed = new Promise<never>((_, reject) => {
    const check = (): void => {
      if (!watching) return;
      const dead = services.find((service) => service.child.exitCode !== null || service.child.signalCode !== null);
      if (dead) reject(new Error(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}) during the scan:\n${logsOf([cluster.coordinator, ...cluster.workers])}`));
      else setTimeout(check, 200);
    };
    check();
  });
  try {
    await Promise.race([scan, crashed]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr;
    throw stderr === undefined ? err : new Error(`the cluster scan failed: ${stderr}\n${logsOf([cluster.coordinator, ...cluster.workers])}`);
  } finally {
    watching = false;
  }
  for (const service of services) assert.doesNotMatch(logOf(service), /Unhandled|\n\s+at /, `${service.name} wrote an error with a stack trace`);
}

/** Nothing analysed twice, nothing lost: every analysis the workers ran is one knowledge-base row. */
async function assertAnalysedOnce(cluster: Cluster, counted: number, extraRows = 0): Promise<void> {
  const rows = await cluster.deployment.analysesRows();
  assert.equal(rows, OBJECTS, `the knowledge base holds the image's ${OBJECTS} objects`);
  assert.equal(counted + extraRows, rows, `analyses counted by the workers' /metrics (${counted}${extraRows ? ` + ${extraRows}` : ''}) = analyses rows (${rows})`);
}

const total = async (services: readonly Service[], read: (service: Service) => Promise<number>): Promise<number> =>
  (await Promise.all(services.map(read))).reduce((a, b) => a + b, 0);

describe('cluster mode under faults', { timeout: 900_000 }, () => {
  it('a worker killed with SIGKILL mid-analysis: its unit is redelivered to the other worker and analysed once', { timeout: 200_000 }, async () => {
    // A short ack wait: the dead worker's unit comes back after 3 s without heartbeat.
    const cluster = await startCluster('killed-worker', { all: { DOCKERGATE_ACK_WAIT_MS: '3000' } });
    try {
      const started = performance.now();
      const scan = cluster.scan();
      const doomed = await firstAnalysing(cluster.workers);
      const survivor = cluster.workers.find((worker) => worker !== doomed)!;
      const doomedAnalyses = await analysesOf(doomed);
      doomed.child.kill('SIGKILL');
      await finished(cluster, scan, doomed);
      console.error(`# killed worker: scan ${((performance.now() - started) / 1000).toFixed(1)} s`);
      await assertSameOutputs(embedded, cluster.out, 'after a worker was killed');
      assert.ok((await metric(survivor, 'dockergate_units_redelivered_total', 'analyse-object')) >= 1, 'the killed worker\'s unit was redelivered to the survivor');
      await assertAnalysedOnce(cluster, doomedAnalyses + (await analysesOf(survivor)));
    } finally {
      await cluster.close();
    }
  });
  it('the NATS server restarted mid-scan: every process reconnects and the scan completes', { timeout: 200_000 }, async () => {
    // The ack wait outlasts the outage: a unit running through it is not handed to another worker.
    const cluster = await startCluster('nats-restart', { all: { DOCKERGATE_ACK_WAIT_MS: '20000' } });
    try {
      const started = performance.now();
      const scan = cluster.scan();
      await firstAnalysing(cluster.workers);
      await nats.stop();
      const down = performance.now();
      await sleep(OUTAGE_MS);
      await nats.start();
      const back = performance.now();
      await finished(cluster, scan);
      console.error(`# NATS restart: down ${((back - down) / 1000).toFixed(1)} s, scan ${((performance.now() - started) / 1000).toFixed(1)} s (${((performance.now() - back) / 1000).toFixed(1)} s after the restart)`);
      await assertSameOutputs(embedded, cluster.out, 'after a NATS restart');
      for (const service of [cluster.coordinator, ...cluster.workers]) {
        await said(service, 'NATS connection lost', 1_000);
        await said(service, 'NATS connection back', 1_000);
      }
      await assertAnalysedOnce(cluster, await total(cluster.workers, analysesOf));
    } finally {
      await cluster.close();
    }
  });

  it('PostgreSQL unavailable for a few seconds mid-scan: writes are retried and the scan completes', { timeout: 200_000 }, async () => {
    const cluster = await startCluster('pg-outage');
    try {
      const started = performance.now();
      const scan = cluster.scan();
      await firstAnalysing(cluster.workers);
      await postgres.stop();
      await sleep(OUTAGE_MS);
      await postgres.start();
      const back = performance.now();
      await finished(cluster, scan);
      console.error(`# PostgreSQL outage: scan ${((performance.now() - started) / 1000).toFixed(1)} s (${((performance.now() - back) / 1000).toFixed(1)} s after the restart)`);
      await assertSameOutputs(embedded, cluster.out, 'after a PostgreSQL outage');
      // The outage was met: a write retried in place, or a unit handed back with backoff.
      const retried = (await total(cluster.workers, (worker) => metric(worker, 'dockergate_units_retried_total'))) + cluster.workers.filter((worker) => /retrying: knowledge base/.test(worker.stderr.join(''))).length;
      assert.ok(retried >= 1, `the workers met the outage and retried:\n${logsOf(cluster.workers)}`);
      await assertAnalysedOnce(cluster, await total(cluster.workers, analysesOf));
    } finally {
      await cluster.close();
    }
  });

  it('the S3 server unreachable for a few seconds mid-scan: units are retried with backoff and the scan completes', { timeout: 200_000 }, async () => {
    const cluster = await startCluster('s3-outage');
    try {
      const started = performance.now();
      const scan = cluster.scan();
      // The analyses read their object from S3 once their (test) delay is over: it is away then.
      await firstAnalysing(cluster.workers);
      await cluster.s3.stop();
      await sleep(OUTAGE_MS);
      await cluster.s3.start();
      const back = performance.now();
      await finished(cluster, scan);
      console.error(`# S3 outage: scan ${((performance.now() - started) / 1000).toFixed(1)} s (${((performance.now() - back) / 1000).toFixed(1)} s after the restart)`);
      await assertSameOutputs(embedded, cluster.out, 'after an S3 outage');
      const retried = await total(cluster.workers, (worker) => metric(worker, 'dockergate_units_retried_total', 'analyse-object'));
      assert.ok(retried >= 1, `the workers met the outage and handed units back: ${retried}`);
      await assertAnalysedOnce(cluster, await total(cluster.workers, analysesOf));
    } finally {
      await cluster.close();
    }
  });

  it('a poisoned unit (its analysis hangs every worker) is a failed object after bounded tries, a dead letter, and a fallback in the report', { timeout: 200_000 }, async () => {
    const report = JSON.parse(await fs.readFile(path.join(embedded, 'report.json'), 'utf8')) as ScanReport;
    const poisoned = report.objects.find((object) => object.path === LOADER)!.sha256;
    const cluster = await startCluster('poisoned', {
      all: { DOCKERGATE_ACK_WAIT_MS: '2000', DOCKERGATE_MAX_DELIVER: '2' },
      // No delay here: every unit must end well within its 5 s but the hung one.
      workers: { DOCKERGATE_MAX_RUN_MS: '5000', DOCKERGATE_TEST_ANALYSIS_DELAY_MS: '0', DOCKERGATE_TEST_HANG_SHA256: poisoned },
    });
    try {
      const started = performance.now();
      await finished(cluster, cluster.scan());
      console.error(`# poisoned unit: scan ${((performance.now() - started) / 1000).toFixed(1)} s`);
      // The report: the program failed with the reason, and the scan fell back to Docker's default.
      const scanned = JSON.parse(await fs.readFile(path.join(cluster.out, 'report.json'), 'utf8')) as ScanReport;
      assert.equal(scanned.unsure, true);
      const failed = scanned.decisions.filter((decision) => decision.kind === 'analysis-failed');
      assert.equal(failed.length, 1, JSON.stringify(scanned.decisions));
      assert.equal(failed[0]!.path, LOADER, JSON.stringify(scanned.decisions));
      assert.match(failed[0]!.detail, /poisoned: work unit analyse-object .* was delivered 2 times and never answered/);
      assert.ok(scanned.decisions.some((decision) => decision.kind === 'fallback'), 'the scan applied the fallback');
      // The dead letter.
      const bus = await JetStreamBus.connect(nats.url, { prefix: cluster.deployment.prefix });
      try {
        const letters = await bus.deadLetters();
        assert.equal(letters.length, 1, JSON.stringify(letters));
        assert.equal(letters[0]!.kind, 'analyse-object');
        assert.equal(letters[0]!.error.code, 'poisoned');
        assert.equal(letters[0]!.attempts, 2);
        assert.equal((letters[0]!.payload as { sha256: string }).sha256, poisoned);
      } finally {
        await bus.close();
      }
      // The knowledge base: the poisoned object is failed with its reason; the program has facts.
      const rows = await cluster.deployment.query<{ sha256: string; status: string; error_code: string | null }>('select sha256, status, error_code from analyses order by sha256');
      assert.deepEqual(rows.find((row) => row.sha256 === poisoned), { sha256: poisoned, status: 'failed', error_code: 'poisoned' });
      assert.ok(rows.some((row) => row.sha256 !== poisoned && row.status === 'ok'), JSON.stringify(rows));
      // Each worker tried it at most once per delivery and never finished it: no analysis counted for it.
      assert.equal(await total(cluster.workers, (worker) => metric(worker, 'dockergate_units_running', 'analyse-object')), 0);
      await assertAnalysedOnce(cluster, await total(cluster.workers, analysesOf), 1);
    } finally {
      await cluster.close();
    }
  });
  it('a hostile ELF is a final outcome at its first delivery: recorded as failed with its reason, never retried, and a fallback in the report', { timeout: 200_000 }, async () => {
    // The entrypoint is 64 bytes that begin like ELF: the analysis rejects it, deterministically.
    const hostile = Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(60)]);
    const layout = path.join(work, 'hostile-layout');
    await writeOciLayout(layout, { layers: [await gzipLayer([{ name: 'bin/hostile', content: hostile, mode: 0o755 }])], config: { Entrypoint: ['/bin/hostile'] } });
    const cluster = await startCluster('hostile', { workers: { DOCKERGATE_TEST_ANALYSIS_DELAY_MS: '0' } });
    try {
      await finished(cluster, cli(['scan', `oci:${layout}`, '--cluster', ...outputFlags(cluster.out)], cluster.deployment.env, 150_000));
      const scanned = JSON.parse(await fs.readFile(path.join(cluster.out, 'report.json'), 'utf8')) as ScanReport;
      assert.equal(scanned.unsure, true);
      const failed = scanned.decisions.filter((decision) => decision.kind === 'analysis-failed');
      assert.equal(failed.length, 1, JSON.stringify(scanned.decisions));
      assert.match(failed[0]!.detail, /\/bin\/hostile: invalid-input: ELF/);
      assert.ok(scanned.decisions.some((decision) => decision.kind === 'fallback'), 'the scan applied the fallback');
      // The failure is the unit's durable result (the knowledge base's record, acked at once): not a
      // dead letter, which is for units that fail or never answer (the poisoned-unit test).
      const bus = await JetStreamBus.connect(nats.url, { prefix: cluster.deployment.prefix });
      try {
        assert.deepEqual(await bus.deadLetters(), []);
      } finally {
        await bus.close();
      }
      const rows = await cluster.deployment.query<{ status: string; error_code: string | null }>('select status, error_code from analyses');
      assert.deepEqual(rows, [{ status: 'failed', error_code: 'invalid-input' }]);
      assert.equal(await total(cluster.workers, (worker) => metric(worker, 'dockergate_units_redelivered_total', 'analyse-object')), 0);
      assert.equal(await total(cluster.workers, (worker) => metric(worker, 'dockergate_units_retried_total', 'analyse-object')), 0);
      assert.equal(await total(cluster.workers, (worker) => metric(worker, 'dockergate_objects_failed_total')), 1);
    } finally {
      await cluster.close();
    }
  });
});
