/**
 * One scan is one trace across processes (issue 10, acceptance point 5). The CLI (`scan
 * --cluster`), a coordinator and two workers export their spans over OTLP/HTTP to an in-memory
 * receiver in this test (test/helpers/otlp.ts); the spans must form one tree: one root in the CLI,
 * every other span's parent present, the coordinator's spans under the CLI's request and the
 * workers' under the coordinator's, with the work each did (layer extraction, object analysis).
 * Real servers on loopback: the machine's NATS and PostgreSQL, an s3rver started here.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { baseImageId, buildImage } from '../bench/corpus/build.js';
import { selectImages } from '../bench/corpus/images.js';
import { cli, type Deployment, type MachineDeployment, logOf, logsOf, outputFlags, type Service, startCoordinator, startMachineDeployment, startWorker, stopService } from './helpers/cluster.js';
import { tempDir } from './helpers/layers.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './helpers/otlp.js';

const CORPUS = selectImages(['musl-http']);
const REFERENCE = `docker-daemon:${CORPUS[0]!.tag}`;

let work: string;
let machine: MachineDeployment;
let receiver: OtlpReceiver;
let deployment: Deployment;
const services: Service[] = [];

before(async () => {
  work = await tempDir('dockergate-trace-');
  const baseId = await baseImageId();
  for (const image of CORPUS) await buildImage(image, baseId);
  receiver = await startOtlpReceiver();
  machine = await startMachineDeployment({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint });
  deployment = machine.deployment;
});

after(async () => {
  for (const service of services) await stopService(service);
  await machine?.close();
  await receiver?.close();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** The span's ancestors, nearest first. */
function ancestors(span: ReceivedSpan, byId: ReadonlyMap<string, ReceivedSpan>): ReceivedSpan[] {
  const chain: ReceivedSpan[] = [];
  for (let parent = byId.get(span.parentSpanId); parent; parent = byId.get(parent.parentSpanId)) chain.push(parent);
  return chain;
}

it('a cluster scan is one span tree across the CLI, the coordinator and the workers', { timeout: 300_000 }, async () => {
  services.push(startCoordinator(deployment.env), startWorker(deployment.env, 'worker-1'), startWorker(deployment.env, 'worker-2'));
  const out = path.join(work, 'cluster');
  await fs.mkdir(out);
  await cli(['scan', REFERENCE, '--cluster', ...outputFlags(out)], deployment.env);
  // SIGTERM flushes each service's spans and metrics; the CLI flushed when it exited.
  const codes = await Promise.all(services.map((service) => stopService(service)));
  assert.deepEqual(codes, [0, 0, 0], logsOf(services));

  const roots = receiver.spans.filter((span) => span.name === 'dockergate scan' && span.parentSpanId === '');
  assert.equal(roots.length, 1, `one root span of the command: ${receiver.spans.map((s) => s.name).join(', ')}`);
  const root = roots[0]!;
  assert.equal(root.service, 'dockergate');
  const trace = receiver.spans.filter((span) => span.traceId === root.traceId);
  const byId = new Map(trace.map((span) => [span.spanId, span]));
  for (const span of trace) {
    if (span !== root) assert.ok(byId.has(span.parentSpanId), `span ${span.name} (${span.service}) has its parent in the trace`);
  }
  const named = (name: string, service: string): ReceivedSpan[] => trace.filter((span) => span.name === name && span.service === service);
  const only = (name: string, service: string): ReceivedSpan => {
    const found = named(name, service);
    assert.equal(found.length, 1, `one ${name} span in ${service}: ${trace.map((s) => `${s.service}:${s.name}`).join(', ')}`);
    return found[0]!;
  };
  const parentOf = (span: ReceivedSpan): ReceivedSpan => byId.get(span.parentSpanId)!;

  // CLI → coordinator: the scan unit continues the request's trace.
  const request = only('scan request', 'dockergate');
  assert.equal(parentOf(request), root);
  const scanUnit = only('unit scan-image', 'dockergate-coordinator');
  assert.equal(parentOf(scanUnit), request);
  const scan = only('scan', 'dockergate-coordinator');
  assert.equal(parentOf(scan), scanUnit);
  const extract = only('extract layers', 'dockergate-coordinator');
  const plan = only('plan', 'dockergate-coordinator');
  assert.equal(parentOf(extract), scan);
  assert.equal(parentOf(plan), scan);
  assert.ok(named('link', 'dockergate-coordinator').every((link) => ancestors(link, byId).includes(plan)), 'linking happens while planning');
  assert.ok(named('link', 'dockergate-coordinator').length >= 1);
  assert.equal(parentOf(only('policy', 'dockergate')), root);

  // Coordinator → workers: every layer and object unit under the coordinator's phase that sent it.
  const layerUnits = named('unit extract-layer', 'dockergate-worker');
  const layers = await deployment.query<{ n: string }>('select count(*) as n from layers');
  assert.equal(layerUnits.length, Number(layers[0]!.n), 'one traced layer unit per layer record');
  assert.ok(layerUnits.length >= 1, 'layer units traced');
  for (const unit of layerUnits) assert.equal(parentOf(unit), extract, 'a layer unit is a child of the coordinator\'s extract phase');
  const fetches = named('layer fetch and extract', 'dockergate-worker');
  assert.equal(fetches.length, layerUnits.length);
  for (const fetch of fetches) assert.ok(layerUnits.includes(parentOf(fetch)));
  const objectUnits = named('unit analyse-object', 'dockergate-worker');
  const analyses = named('object analysis', 'dockergate-worker');
  const rows = await deployment.analysesRows();
  assert.ok(rows >= 2, `objects analysed: ${rows}`);
  assert.equal(analyses.length, rows, 'one analysis span per object the knowledge base holds');
  for (const unit of objectUnits) assert.ok(ancestors(unit, byId).includes(plan), 'an object unit descends from the coordinator\'s plan phase');
  for (const analysis of analyses) assert.ok(objectUnits.includes(parentOf(analysis)));
  const processes = new Set(trace.map((span) => `${span.service}/${span.pid}`));
  assert.ok(processes.size >= 3, `spans from at least three processes: ${[...processes].join(', ')}`);

  // The coordinator's structured log names the scan's trace.
  const coordinatorLog = logOf(services[0]!).split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg: string; trace_id?: string; service: string });
  const scanning = coordinatorLog.find((entry) => entry.msg === `scanning ${REFERENCE}`);
  assert.ok(scanning, `the coordinator logged the scan: ${logOf(services[0]!)}`);
  assert.equal(scanning.service, 'dockergate-coordinator');
  assert.equal(scanning.trace_id, root.traceId, 'the log line carries the trace id');

  // The same counters as /metrics reach the OTLP endpoint.
  const workerMetrics = receiver.metricNames.get('dockergate-worker') ?? new Set<string>();
  for (const name of ['dockergate_units_done_total', 'dockergate_units_running', 'dockergate_objects_analysed_total', 'dockergate_db_seconds_total', 'dockergate_s3_seconds_total', 'dockergate_nats_seconds_total']) {
    assert.ok(workerMetrics.has(name), `worker metric ${name} exported: ${[...workerMetrics].join(', ')}`);
  }
});
