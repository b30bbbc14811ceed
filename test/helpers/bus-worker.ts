/**
 * A worker process for the JetStream bus tests: handles `work` units by printing `took <id>` and
 * never answering, so the test can kill it mid-unit as a crashed worker dies.
 * Usage: node --import tsx test/helpers/bus-worker.ts <nats url> <prefix> <ack wait ms>
 */
import { JetStreamBus } from '../../infra/jetstream-bus.js';

const [url, prefix, ackWaitMs] = process.argv.slice(2);
const bus = await JetStreamBus.connect(url!, { prefix: prefix!, ackWaitMs: Number(ackWaitMs), maxDeliver: 3 });
bus.handle<{ id: string }, never>('work', ({ id }) => {
  process.stdout.write(`took ${id}\n`);
  return new Promise<never>(() => {});
});
process.stdout.write('ready\n');
