/**
 * The JetStream bus against the machine's NATS server (127.0.0.1:4222, JetStream enabled; override
 * with DOCKERGATE_TEST_NATS_URL). Every test uses its own prefix, so its streams, consumers and
 * bucket are its own, and deletes them at the end. A "coordinator" bus only requests; "worker"
 * buses only handle, as the separate processes of cluster mode do.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { InvalidInputError, PoisonedUnitError, RemoteUnitError, UnavailableError } from '../infra/errors.js';
import { JetStreamBus, type JetStreamBusOptions } from '../infra/jetstream-bus.js';

const NATS_URL = process.env.DOCKERGATE_TEST_NATS_URL ?? '127.0.0.1:4222';
const opened: JetStreamBus[] = [];

async function bus(prefix: string, options: Partial<JetStreamBusOptions> = {}): Promise<JetStreamBus> {
  const created = await JetStreamBus.connect(NATS_URL, { prefix, ackWaitMs: 2_000, backoffMs: [50], ...options });
  opened.push(created);
  return created;
}

const freshPrefix = (): string => `dgtest-${randomUUID().slice(0, 8)}`;

after(async () => {
  // Each test's streams and bucket go with it; deleting twice is harmless.
  for (const item of opened) await item.destroy();
  await Promise.all(opened.map((item) => item.close()));
});

test('a unit published by one process is run by a worker process and its result comes back', async () => {
  const prefix = freshPrefix();
  const coordinator = await bus(prefix);
  const worker = await bus(prefix);
  let runs = 0;
  worker.handle<{ n: number }, { doubled: number }>('double', async ({ n }) => {
    runs++;
    return { doubled: n * 2 };
  });
  assert.deepEqual(await coordinator.request('double', 'unit-1', { n: 21 }), { doubled: 42 });
  // The same unit again: answered from the stored result, not run again.
  assert.deepEqual(await coordinator.request('double', 'unit-1', { n: 21 }), { doubled: 42 });
  // Concurrent requests for one new unit: one run.
  const both = await Promise.all([coordinator.request('double', 'unit-2', { n: 1 }), coordinator.request('double', 'unit-2', { n: 1 })]);
  assert.deepEqual(both, [{ doubled: 2 }, { doubled: 2 }]);
  assert.equal(runs, 2);
});

test('work is shared between workers, and no worker runs more units than its concurrency', async () => {
  const prefix = freshPrefix();
  const coordinator = await bus(prefix);
  const workers = [await bus(prefix, { concurrency: 2 }), await bus(prefix, { concurrency: 2 })];
  const ranBy = [0, 0];
  const active = [0, 0];
  const peak = [0, 0];
  workers.forEach((worker, w) =>
    worker.handle<{ i: number }, number>('slow', async ({ i }) => {
      active[w]!++;
      peak[w] = Math.max(peak[w]!, active[w]!);
      await new Promise((resolve) => setTimeout(resolve, 100));
      active[w]!--;
      ranBy[w]!++;
      return i;
    }),
  );
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => coordinator.request<{ i: number }, number>('slow', `u${i}`, { i })));
  assert.deepEqual(results, Array.from({ length: 16 }, (_, i) => i));
  assert.equal(ranBy[0]! + ranBy[1]!, 16);
  assert.ok(ranBy[0]! > 0 && ranBy[1]! > 0, `both workers ran units: ${ranBy}`);
  assert.ok(peak[0]! <= 2 && peak[1]! <= 2, `peak concurrency per worker: ${peak}`);
});

test('a final error is reported with its code once, recorded as a dead letter, and not retried', async () => {
  const prefix = freshPrefix();
  const coordinator = await bus(prefix);
  const worker = await bus(prefix);
  let runs = 0;
  worker.handle('hostile', async () => {
    runs++;
    throw new InvalidInputError('truncated ELF header');
  });
  await assert.rejects(coordinator.request('hostile', 'h1', {}), (err: unknown) => err instanceof RemoteUnitError && err.code === 'invalid-input' && /truncated ELF/.test(err.message));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(runs, 1);
  const letters = await coordinator.deadLetters();
  assert.equal(letters.length, 1);
  assert.equal(letters[0]!.id, 'h1');
  assert.equal(letters[0]!.error.code, 'invalid-input');
});

test('a retryable error is retried with backoff until it succeeds', async () => {
  const prefix = freshPrefix();
  const coordinator = await bus(prefix);
  const worker = await bus(prefix);
  let runs = 0;
  worker.handle('flaky', async () => {
    runs++;
    if (runs < 3) throw new UnavailableError('registry timed out');
    return 'done';
  });
  assert.equal(await coordinator.request('flaky', 'f1', {}), 'done');
  assert.equal(runs, 3);
});

test('a unit whose worker process is killed mid-unit is redelivered to another worker', async () => {
  const prefix = freshPrefix();
  const options = { ackWaitMs: 1_000, maxDeliver: 3 };
  const coordinator = await bus(prefix, options);
  const doomed = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/bus-worker.ts', NATS_URL, prefix, String(options.ackWaitMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: doomed.stdout! });
  const said = (text: string): Promise<void> => new Promise((resolve) => lines.on('line', (line) => line === text && resolve()));
  const ready = said('ready');
  await ready;
  const took = said('took w1');
  const answer = coordinator.request('work', 'w1', { id: 'w1' });
  await took;
  doomed.kill('SIGKILL');
  const survivor = await bus(prefix, options);
  let runs = 0;
  survivor.handle('work', async () => {
    runs++;
    return 'finished elsewhere';
  });
  assert.equal(await answer, 'finished elsewhere');
  assert.equal(runs, 1);
});

test('a unit that hangs every worker is recorded as poisoned after its last delivery, and the request fails', async () => {
  const prefix = freshPrefix();
  const options = { ackWaitMs: 1_000, maxDeliver: 2, maxRunMs: 300 };
  const coordinator = await bus(prefix, options);
  const worker = await bus(prefix, options);
  let runs = 0;
  worker.handle('hang', () => {
    runs++;
    return new Promise<never>(() => {});
  });
  await assert.rejects(coordinator.request('hang', 'x1', {}), (err: unknown) => err instanceof PoisonedUnitError && /delivered 2 times/.test(err.message));
  assert.equal(runs, 2);
  const letters = await coordinator.deadLetters();
  assert.deepEqual(letters.map((letter) => [letter.id, letter.error.code]), [['x1', 'poisoned']]);
  // The worker is still serving: a poisoned unit never takes it down.
  worker.handle('echo', async (payload) => payload);
  assert.deepEqual(await coordinator.request('echo', 'e1', { still: 'alive' }), { still: 'alive' });
});

test('an unreachable NATS server is a one-line error naming it', async () => {
  await assert.rejects(JetStreamBus.connect('127.0.0.1:1', { prefix: 'never' }), (err: unknown) => err instanceof UnavailableError && /NATS at 127\.0\.0\.1:1 is unreachable/.test(err.message));
});

test('processes that start together all connect: creating the same streams and bucket at once is not an error', async () => {
  // nats-server can answer the loser of a creation race with "subjects overlap"; ten rounds of four.
  for (let round = 0; round < 10; round++) {
    const prefix = freshPrefix();
    const buses = await Promise.all(Array.from({ length: 4 }, () => bus(prefix)));
    assert.equal(buses.length, 4);
  }
});
