/**
 * Cluster mode end to end, on real servers on loopback: the machine's NATS JetStream and
 * PostgreSQL (a database of its own per run), and an S3-protocol server (s3rver) this test starts,
 * reached only through @aws-sdk/client-s3. A `dockergate coordinator` process plans the scans that
 * `dockergate scan --cluster` submits, and two `dockergate worker` processes run the units. Every
 * output file must be byte-identical to what embedded `dockergate scan` writes for the same image,
 * no object may be analysed twice, and a coordinator killed mid-scan must lose nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseImageId, buildImage } from '../bench/corpus/build.js';
import { selectImages } from '../bench/corpus/images.js';
import {
  analysesOf,
  assertSameOutputs,
  cli,
  type Deployment,
  type MachineDeployment,
  logOf,
  logsOf,
  metric,
  outputFlags,
  said,
  type Service,
  startCoordinator,
  startMachineDeployment,
  startWorker,
  stopService,
} from './helpers/cluster.js';
import { tempDir } from './helpers/layers.js';

const CORPUS = selectImages(['static-c', 'musl-http', 'trixie-shell', 'trixie-forking', 'trixie-musl-http']);
/** The corpus images from the daemon, and one test image from the loopback registry. */
const REFERENCES = [...CORPUS.map((image) => `docker-daemon:${image.tag}`), 'docker://127.0.0.1:5000/dockergate-test/app:1'];

let work: string;
let machine: MachineDeployment;
let deployment: Deployment;
const workers: Service[] = [];
const coordinators: Service[] = [];

before(async () => {
  work = await tempDir('dockergate-cluster-');
  const baseId = await baseImageId();
  for (const image of CORPUS) await buildImage(image, baseId);
  machine = await startMachineDeployment();
  deployment = machine.deployment;
});

after(async () => {
  for (const service of [...coordinators, ...workers]) await stopService(service);
  if (process.env.DOCKERGATE_TEST_SERVICE_LOGS) console.error(logsOf([...coordinators, ...workers]));
  await machine?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** Both directories of one image's outputs: embedded mode's and cluster mode's. */
async function outputDirs(name: string): Promise<{ embedded: string; cluster: string }> {
  const dirs = { embedded: path.join(work, `embedded-${name}`), cluster: path.join(work, `cluster-${name}`) };
  await fs.mkdir(dirs.embedded);
  await fs.mkdir(dirs.cluster);
  return dirs;
}

describe('cluster mode', () => {
  it('one coordinator and two worker processes write the same bytes as embedded mode, analysing each object once', { timeout: 900_000 }, async () => {
    coordinators.push(startCoordinator(deployment.env));
    workers.push(startWorker(deployment.env, 'worker-1'), startWorker(deployment.env, 'worker-2'));
    for (const [index, reference] of REFERENCES.entries()) {
      const dirs = await outputDirs(String(index));
      await cli(['scan', reference, '--cache-dir', path.join(work, 'cache'), ...outputFlags(dirs.embedded)]);
      await cli(['scan', reference, '--cluster', ...outputFlags(dirs.cluster)], deployment.env);
      await assertSameOutputs(dirs.embedded, dirs.cluster, reference);
    }
    // The workers' metrics count the same analyses, and every analyse-object unit answered once.
    const analysedByMetrics = (await Promise.all(workers.map(analysesOf))).reduce((a, b) => a + b, 0);
    const unitsDone = (await Promise.all(workers.map((worker) => metric(worker, 'dockergate_units_done_total')))).reduce((a, b) => a + b, 0);
    const stopped = await Promise.all(workers.map((worker) => stopService(worker)));
    assert.deepEqual(stopped, [0, 0], `workers exit 0 on SIGTERM: ${logsOf(workers)}`);
    // Every analysis that ran is one analyses row; each object's row is unique by its key.
    const ran = workers.map((worker) => {
      const counted = /after (\d+) analyses \((\d+) failed\)/.exec(logOf(worker));
      return counted ? Number(counted[1]) + Number(counted[2]) : Number.NaN;
    });
    const rows = await deployment.analysesRows();
    assert.ok(ran.every((n) => Number.isInteger(n)), `workers report their analyses: ${logsOf(workers)}`);
    assert.equal(ran[0]! + ran[1]!, rows, `analyses run by the workers (${ran}) = objects in the knowledge base`);
    assert.ok(ran[0]! > 0 && ran[1]! > 0, `both workers analysed objects: ${ran}`);
    assert.equal(analysedByMetrics, rows, 'analysed + failed objects in the workers\' metrics = analyses in the knowledge base');
    assert.ok(unitsDone >= analysedByMetrics, `units done (${unitsDone}) cover the analyses`);
  });

  it('a coordinator killed mid-scan loses nothing: another one finishes the scan, with the same bytes', { timeout: 200_000 }, async () => {
    for (const coordinator of coordinators) await stopService(coordinator);
    workers.push(startWorker(deployment.env, 'worker-3'));
    const reference = 'docker-daemon:dockergate-test/whiteout:1';
    const dirs = await outputDirs('killed');
    await cli(['scan', reference, '--cache-dir', path.join(work, 'cache'), ...outputFlags(dirs.embedded)]);
    const doomed = startCoordinator(deployment.env, 'doomed');
    coordinators.push(doomed);
    const submitted = cli(['scan', reference, '--cluster', ...outputFlags(dirs.cluster)], deployment.env);
    await said(doomed, `scanning ${reference}`);
    doomed.child.kill('SIGKILL');
    // JetStream redelivers the scan once its ack wait passes without a heartbeat.
    const successor = startCoordinator(deployment.env, 'successor');
    coordinators.push(successor);
    await submitted;
    await said(successor, `scanned ${reference}`);
    await assertSameOutputs(dirs.embedded, dirs.cluster, `${reference} after a coordinator restart`);
  });

  it('a missing service setting is a one-line error naming it', async () => {
    await assert.rejects(cli(['scan', REFERENCES[0]!, '--cluster', '-o', path.join(work, 'x.json')], { ...deployment.env, DATABASE_URL: '' }), (err: { stderr?: string }) =>
      /cluster mode needs DATABASE_URL \(or --database\)/.test(err.stderr ?? ''),
    );
  });
});
