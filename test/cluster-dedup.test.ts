/**
 * Fleet dedup (issue 10, acceptance point 3), on real servers on loopback: the machine's NATS and
 * PostgreSQL, an s3rver started here, and the loopback registry of the test environment, whose
 * images `dockergate-test/app:1` and `dockergate-test/whiteout:1` share their base layer. Scanned
 * at the same time through one coordinator and two workers, the shared layer is fetched from the
 * registry and extracted once in the whole fleet, by a worker (nothing is staged in S3), and every
 * object is analysed once; a second scan of both, and a scan of the base image alone, fetch,
 * extract and analyse nothing. Counted from the workers' /metrics and the knowledge base.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, it } from 'node:test';
import Database from 'better-sqlite3';
import { S3Cas } from '../store/s3-cas.js';
import {
  analysesOf,
  assertSameOutputs,
  cli,
  type Deployment,
  type MachineDeployment,
  logsOf,
  metric,
  outputFlags,
  type Service,
  startCoordinator,
  startMachineDeployment,
  startWorker,
  stopService,
} from './helpers/cluster.js';
import { tempDir } from './helpers/layers.js';

const REGISTRY = 'docker://127.0.0.1:5000/dockergate-test';
const IMAGES = [`${REGISTRY}/app:1`, `${REGISTRY}/whiteout:1`];
const BASE = `${REGISTRY}/base:bookworm`;

let work: string;
let machine: MachineDeployment;
let deployment: Deployment;
const services: Service[] = [];

before(async () => {
  work = await tempDir('dockergate-dedup-');
  machine = await startMachineDeployment();
  deployment = machine.deployment;
});

after(async () => {
  for (const service of services) await stopService(service);
  await machine?.close();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** A counter summed over every worker. */
async function fleet(workers: readonly Service[], name: string): Promise<number> {
  let sum = 0;
  for (const worker of workers) sum += name === 'analyses' ? await analysesOf(worker) : await metric(worker, name);
  return sum;
}

interface FleetCounts {
  fetched: number;
  extracted: number;
  analysed: number;
}

async function counts(workers: readonly Service[]): Promise<FleetCounts> {
  return {
    fetched: await fleet(workers, 'dockergate_registry_layers_fetched_total'),
    extracted: await fleet(workers, 'dockergate_layers_extracted_total'),
    analysed: await fleet(workers, 'analyses'),
  };
}

/** Scans every reference at once with `scan --cluster`, outputs in `dir/<index>`. */
async function scanAll(references: readonly string[], dir: string): Promise<void> {
  await Promise.all(
    references.map(async (reference, index) => {
      const out = path.join(dir, String(index));
      await fs.mkdir(out, { recursive: true });
      await cli(['scan', reference, '--cluster', ...outputFlags(out)], deployment.env);
    }),
  );
}

it('two images sharing a base layer: the layer is fetched and extracted once, each object analysed once, a rescan does nothing', { timeout: 600_000 }, async () => {
  // Embedded baseline: both images with one cache, so each object is analysed once there too.
  const cache = path.join(work, 'cache');
  for (const [index, reference] of IMAGES.entries()) {
    const out = path.join(work, 'embedded', String(index));
    await fs.mkdir(out, { recursive: true });
    await cli(['scan', reference, '--cache-dir', cache, ...outputFlags(out)]);
  }
  const embeddedKb = new Database(path.join(cache, 'kb.sqlite'), { readonly: true });
  const embeddedAnalyses = (embeddedKb.prepare('select count(*) as n from analyses').get() as { n: number }).n;
  embeddedKb.close();

  const workers = [startWorker(deployment.env, 'worker-1'), startWorker(deployment.env, 'worker-2')];
  services.push(startCoordinator(deployment.env), ...workers);
  await scanAll(IMAGES, path.join(work, 'cluster-1'));
  for (const index of IMAGES.keys()) {
    await assertSameOutputs(path.join(work, 'embedded', String(index)), path.join(work, 'cluster-1', String(index)), IMAGES[index]!);
  }

  const layers = await deployment.query<{ digest: string }>('select digest from layers');
  const first = await counts(workers);
  assert.equal(layers.length, 4, `app:1 has 2 layers, whiteout:1 has 3, one of them shared: ${layers.map((l) => l.digest).join(', ')}`);
  assert.deepEqual(first, { fetched: layers.length, extracted: layers.length, analysed: embeddedAnalyses }, `fleet counts\n${logsOf(services)}`);
  assert.equal(await deployment.analysesRows(), embeddedAnalyses, 'one analyses row per object, as in embedded mode');
  // Fetched by the workers from the registry: no layer blob was staged in S3.
  const cas = new S3Cas(machine.s3.config(deployment.env.S3_BUCKET!));
  try {
    for (const { digest } of layers) assert.equal(await cas.has(digest.slice('sha256:'.length)), false, `layer ${digest} staged in S3`);
  } finally {
    cas.close();
  }

  // Both again: the coordinator finds their stored scans, nothing is fetched, extracted or analysed.
  await scanAll(IMAGES, path.join(work, 'cluster-2'));
  for (const index of IMAGES.keys()) {
    await assertSameOutputs(path.join(work, 'embedded', String(index)), path.join(work, 'cluster-2', String(index)), `${IMAGES[index]!} (rescan)`);
  }
  assert.deepEqual(await counts(workers), first, 'a rescan fetches, extracts and analyses nothing');
  // The base image alone: its only layer is the shared one, known already: not fetched again.
  await scanAll([BASE], path.join(work, 'cluster-3'));
  const base = await counts(workers);
  assert.equal(base.fetched, first.fetched, 'the shared layer is not fetched again');
  assert.equal(base.extracted, first.extracted, 'the shared layer is not extracted again');
  assert.equal((await deployment.query('select digest from layers')).length, layers.length, 'the base image adds no layer record');
  assert.equal(base.analysed, await deployment.analysesRows(), 'every analysis the workers ran is one row');
  const codes = await Promise.all(services.map((service) => stopService(service)));
  assert.deepEqual(codes, [0, 0, 0], logsOf(services));
});
