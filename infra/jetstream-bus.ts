/**
 * The cluster bus: the same `Bus` contract as `InProcessBus`, carried over NATS JetStream.
 *
 * - Units go to a work-queue stream (`<PREFIX>_UNITS`, subject `<prefix>.unit.<kind>`), published
 *   with `Nats-Msg-Id` = `<kind>:<unit id>` so that the server drops a duplicate sent within its
 *   dedup window. Longer-term idempotency is the stores' job: handlers look the result up first and
 *   write with `ON CONFLICT DO NOTHING`, so a redelivered unit whose result exists is only acked.
 * - Each kind has one durable pull consumer shared by every worker (explicit ack, `ack_wait`,
 *   `max_deliver`, `max_ack_pending`). A worker pulls one message per free slot of its concurrency
 *   (per kind), so it never holds more units than it runs; a running unit sends `working()` every
 *   third of `ack_wait`. The ack (`ackAck()`, confirmed by the server) comes after the result is stored.
 * - A retryable error is `nak`ed with backoff until the last delivery; any other error, or the last
 *   delivery, is final: the failure is stored as the unit's result, recorded in the dead-letter
 *   stream (`<PREFIX>_DEAD`), and the message is terminated and removed from the work queue.
 * - A unit whose worker died or hung on every delivery produces the server's MAX_DELIVERIES
 *   advisory: every bus instance listens for it and records that unit as poisoned in the same way.
 * - Results travel back through a KV bucket (`<prefix>-results`, key `<kind>.<sha256 of id>`):
 *   the requester watches the bucket once and checks the key before publishing, so it never polls
 *   and a result stored while nobody waited (a coordinator restarted) is found on the next request.
 */
import { createHash } from 'node:crypto';
import {
  AckPolicy,
  type Consumer,
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  type JetStreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { type KV, KvWatchInclude, Kvm } from '@nats-io/kv';
import { connect, headers as natsHeaders, type NatsConnection, nanos, type Subscription } from '@nats-io/transport-node';
import type { Bus, UnitHandler } from './bus.js';
import { AbortedError, DockergateError, PoisonedUnitError, RemoteUnitError, toWireError, UnavailableError, type WireError } from './errors.js';
import { roundTrip } from './round-trips.js';
import { extractTraceContext, injectTraceContext, withSpan } from './telemetry.js';

export interface JetStreamBusOptions {
  /** Names every stream, consumer, subject and bucket of this deployment: `[A-Za-z0-9_-]+`. */
  readonly prefix: string;
  /** Units of each kind this process runs (and holds) at once. */
  readonly concurrency: number;
  /** Deliveries of one unit before it is recorded as failed. */
  readonly maxDeliver: number;
  /** How long a delivered unit may go without an ack or a `working()` before it is redelivered. */
  readonly ackWaitMs: number;
  /** Delay before the n-th retry of a retryable error (the last value repeats). */
  readonly backoffMs: readonly number[];
  /** Units delivered and not yet acked, across all workers, per kind. */
  readonly maxAckPending: number;
  /** How long results stay in the results bucket. */
  readonly resultTtlMs: number;
  /**
   * Longest a unit may run in this process: past it, heartbeats stop and the handler is aborted,
   * so a hung unit is redelivered and, on its last delivery, recorded as poisoned.
   */
  readonly maxRunMs: number;
  /**
   * How long a bus operation (publishing a unit, storing a result, an ack) is retried while NATS is
   * unreachable before it fails with `UnavailableError`.
   */
  readonly reconnectBudgetMs: number;
  /** One line per connection event (lost, back); nothing when absent. */
  readonly log?: (line: string) => void;
}

export const DEFAULT_JETSTREAM_OPTIONS: Omit<JetStreamBusOptions, 'prefix'> = {
  concurrency: 2,
  maxDeliver: 4,
  ackWaitMs: 30_000,
  backoffMs: [500, 2_000, 8_000],
  maxAckPending: 256,
  resultTtlMs: 24 * 3600_000,
  maxRunMs: 30 * 60_000,
  reconnectBudgetMs: 120_000,
};

type StoredResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: WireError; readonly attempts: number };

/** What the dead-letter stream keeps for each unit that failed for good. */
export interface DeadLetter {
  readonly kind: string;
  readonly id: string;
  readonly payload: unknown;
  readonly error: WireError;
  readonly attempts: number;
  readonly at: string;
}

const UNIT_ID_HEADER = 'Dockergate-Unit-Id';
/** A pull waits this long for a unit before asking again (and noticing a stop). */
const PULL_EXPIRES_MS = 2_000;
const UNIT_KIND_HEADER = 'Dockergate-Unit-Kind';
const NAME = /^[A-Za-z0-9_-]+$/;

/** What one process did with the units of one kind (the /metrics endpoint reports these). */
export interface UnitStats {
  /** Units answered with a result. */
  done: number;
  /** Units that failed for good here (recorded as dead letters). */
  failed: number;
  /** Deliveries that were not a unit's first (its previous worker died, hung or gave it back). */
  redelivered: number;
  /** Retryable errors handed back with backoff. */
  retried: number;
  /** Seconds units waited in the queue before this process took them, summed. */
  queueSeconds: number;
  /** Seconds units ran here, summed. */
  runSeconds: number;
  /** Units running here now (a gauge). */
  running: number;
}

interface Waiter {
  resolve(result: StoredResult): void;
}

export class JetStreamBus implements Bus {
  private readonly options: JetStreamBusOptions;
  private readonly stream: string;
  private readonly deadStream: string;
  /** Per kind handled here (a kind is registered once). */
  readonly stats = new Map<string, UnitStats>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly loops: Promise<void>[] = [];
  private stopping = false;
  private results!: KV;
  private stopWatch: (() => void) | undefined;
  private advisories: Subscription | undefined;
  private readonly ready: Promise<void>;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    options: JetStreamBusOptions,
  ) {
    if (!NAME.test(options.prefix)) throw new TypeError(`bus prefix must match ${NAME}: ${JSON.stringify(options.prefix)}`);
    this.options = options;
    this.stream = `${options.prefix.toUpperCase()}_UNITS`;
    this.deadStream = `${options.prefix.toUpperCase()}_DEAD`;
    this.ready = this.setUp();
  }

  /** Connects to `url` and creates (or reuses) the streams, consumers and bucket. */
  static async connect(url: string, options: Partial<JetStreamBusOptions> & Pick<JetStreamBusOptions, 'prefix'>): Promise<JetStreamBus> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: url, name: `dockergate-${process.pid}`, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
    } catch (err) {
      throw new UnavailableError(`NATS at ${url} is unreachable (NATS_URL): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    try {
      const jsm = await jetstreamManager(nc);
      const bus = new JetStreamBus(nc, jetstream(nc), jsm, { ...DEFAULT_JETSTREAM_OPTIONS, ...options });
      await bus.ready;
      return bus;
    } catch (err) {
      await nc.close().catch(() => {});
      if (err instanceof DockergateError) throw err;
      throw new UnavailableError(`NATS at ${url} has no usable JetStream (NATS_URL; start nats-server with -js): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  private subject(kind: string): string {
    return `${this.options.prefix}.unit.${kind}`;
  }

  private durable(kind: string): string {
    return `${this.options.prefix}-${kind}`;
  }

  private async setUp(): Promise<void> {
    await this.ensureStreams();
    this.results = await createTogether(() => new Kvm(this.nc).create(`${this.options.prefix}-results`, { history: 1, ttl: this.options.resultTtlMs }));
    await this.watchResults();
    this.advisories = this.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.stream}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const advisory = msg.json<{ stream_seq: number; deliveries: number }>();
        void this.recordExhausted(advisory.stream_seq, advisory.deliveries).catch(() => {});
      },
    });
    void this.watchConnection();
  }

  private async ensureStreams(): Promise<void> {
    // `streams.add` with an identical config is idempotent, so processes may start together.
    await createTogether(() =>
      this.jsm.streams.add({
        name: this.stream,
        subjects: [`${this.options.prefix}.unit.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: nanos(120_000),
      }),
    );
    await createTogether(() =>
      this.jsm.streams.add({ name: this.deadStream, subjects: [`${this.options.prefix}.dead.>`], storage: StorageType.File, duplicate_window: nanos(120_000) }),
    );
  }

  /**
   * Results reach waiters through one watch of the bucket. The watch is an ordered consumer that
   * nats.js re-creates after missed heartbeats; should it end anyway, it is started again, and
   * every pending request looks its key up once more (a result stored meanwhile is not missed).
   */
  private async watchResults(): Promise<void> {
    const watch = await this.results.watch({ include: KvWatchInclude.UpdatesOnly });
    this.stopWatch = () => watch.stop();
    void (async () => {
      try {
        for await (const entry of watch) {
          if (entry.operation !== 'PUT') continue;
          this.deliver(entry.key, JSON.parse(entry.string()) as StoredResult);
        }
      } catch {
        // Re-established below.
      }
      while (!this.stopping && !this.nc.isClosed()) {
        try {
          await this.watchResults();
          await this.recheckWaiters();
          return;
        } catch {
          await sleep(500);
        }
      }
    })();
  }

  /** Pending requests look their result up again (after a reconnection or a new watch). */
  private async recheckWaiters(): Promise<void> {
    for (const key of [...this.waiters.keys()]) {
      const stored = await this.results.get(key).catch(() => null);
      if (stored && stored.operation === 'PUT') this.deliver(key, JSON.parse(stored.string()) as StoredResult);
    }
  }

  /** Logs connection changes; after a reconnection, results stored while away reach their waiters. */
  private async watchConnection(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') this.options.log?.(`NATS connection lost (${status.server}); reconnecting`);
      else if (status.type === 'reconnect') {
        this.options.log?.(`NATS connection back (${status.server})`);
        void this.recheckWaiters();
      }
    }
  }

  /**
   * Runs one bus operation, trying again while NATS is unreachable (a reconnection, a restarting
   * server that does not answer JetStream requests yet), for at most `reconnectBudgetMs`. Every
   * operation retried here is idempotent: publishes carry a `Nats-Msg-Id`, puts replace, acks of an
   * acked message are ignored.
   */
  private async retrying<T>(what: string, operation: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.options.reconnectBudgetMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await roundTrip('nats', operation);
      } catch (err) {
        if (!isTransientNatsError(err) || this.nc.isClosed() || Date.now() >= deadline) {
          if (err instanceof DockergateError) throw err;
          throw new UnavailableError(`NATS: ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        await sleep(Math.min(2_000, 100 * 2 ** attempt));
      }
    }
  }

  private deliver(key: string, result: StoredResult): void {
    const waiting = this.waiters.get(key);
    if (!waiting) return;
    this.waiters.delete(key);
    for (const waiter of waiting) waiter.resolve(result);
  }

  private async ensureConsumer(kind: string): Promise<Consumer> {
    await this.jsm.consumers.add(this.stream, {
      durable_name: this.durable(kind),
      filter_subject: this.subject(kind),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.options.ackWaitMs),
      max_deliver: this.options.maxDeliver,
      max_ack_pending: this.options.maxAckPending,
    });
    return this.js.consumers.get(this.stream, this.durable(kind));
  }

  handle<P, R>(kind: string, handler: UnitHandler<P, R>): void {
    if (this.stats.has(kind)) throw new Error(`a handler for ${kind} is already registered`);
    if (!NAME.test(kind)) throw new TypeError(`unit kind must match ${NAME}: ${JSON.stringify(kind)}`);
    const untyped = handler as UnitHandler<unknown, unknown>;
    this.stats.set(kind, { done: 0, failed: 0, redelivered: 0, retried: 0, queueSeconds: 0, runSeconds: 0, running: 0 });
    const started = this.ready.then(async () => {
      const consumer = { current: await this.ensureConsumer(kind) };
      await Promise.all(Array.from({ length: this.options.concurrency }, () => this.pullLoop(consumer, untyped, kind)));
    });
    this.loops.push(started);
  }

  /**
   * One slot of one kind: pulls a unit, runs it, repeats, so each kind has at most `concurrency`
   * units delivered to this process, every one of them running. Kinds have their own slots: a
   * slot that waited on an empty queue of one kind must not delay the units of another. A pull
   * that fails (NATS away) is tried again; a consumer or stream the server no longer has (a server
   * that lost its state) is created again. Nothing a unit does ends the loop.
   */
  private async pullLoop(consumer: { current: Consumer }, handler: UnitHandler<unknown, unknown>, kind: string): Promise<void> {
    while (!this.stopping) {
      let msg: JsMsg | null;
      try {
        msg = await consumer.current.next({ expires: PULL_EXPIRES_MS });
      } catch (err) {
        if (this.stopping) break;
        if (isMissingResource(err)) {
          try {
            await this.ensureStreams();
            consumer.current = await this.ensureConsumer(kind);
            this.options.log?.(`re-created the ${kind} consumer (the server had lost it)`);
          } catch {
            // Tried again on the next failed pull.
          }
        }
        await sleep(500);
        continue;
      }
      if (msg) await this.run(msg, kind, handler).catch((err: unknown) => this.options.log?.(`${kind} unit: ${err instanceof Error ? err.message : String(err)}`));
    }
  }

  private async run(msg: JsMsg, kind: string, handler: UnitHandler<unknown, unknown>): Promise<void> {
    const id = msg.headers?.get(UNIT_ID_HEADER) ?? '';
    const attempts = msg.info.deliveryCount;
    const stats = this.stats.get(kind)!;
    const started = performance.now();
    if (attempts > 1) stats.redelivered++;
    else stats.queueSeconds += Math.max(0, Date.now() - Number(msg.info.timestampNanos) / 1e6) / 1000;
    stats.running++;
    let payload: unknown;
    const heartbeat = setInterval(() => working(msg), Math.max(100, Math.floor(this.options.ackWaitMs / 3)));
    const abort = new AbortController();
    const deadline = setTimeout(() => {
      clearInterval(heartbeat);
      abort.abort();
    }, this.options.maxRunMs);
    try {
      let outcome: { ok: true; value: unknown } | { ok: false; error: WireError };
      try {
        payload = JSON.parse(msg.string()) as unknown;
        const overdue = new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(new AbortedError('work unit ran past maxRunMs')), { once: true }));
        // The unit's span continues the requester's trace (its `traceparent` header).
        const parent = extractTraceContext((name) => msg.headers?.get(name) || undefined);
        const attributes = { 'dockergate.unit.kind': kind, 'dockergate.unit.id': id, 'dockergate.unit.delivery': attempts };
        const running = withSpan(`unit ${kind}`, attributes, () => handler(payload, { signal: abort.signal, working: () => working(msg) }), parent);
        const value = await Promise.race([running, overdue]);
        outcome = { ok: true, value: value ?? null };
      } catch (err) {
        if (abort.signal.aborted) return; // past maxRunMs: left to redelivery, counted by the server
        const retryable = err instanceof DockergateError && err.retryable;
        if (retryable && (attempts < this.options.maxDeliver || this.stopping)) {
          const backoff = this.options.backoffMs;
          // While stopping, handed back at once to a process that is not stopping.
          msg.nak(this.stopping ? undefined : (backoff[Math.min(attempts - 1, backoff.length - 1)] ?? 1_000));
          if (!this.stopping) stats.retried++;
          return;
        }
        outcome = { ok: false, error: toWireError(err) };
      }
      if (abort.signal.aborted) return;
      // The outcome is the unit's; storing it and the ack are the bus's and are retried while NATS
      // is away. Should they fail for good, the unit is left unacked: its redelivery finds the
      // handler's durable result (the knowledge base) and only answers.
      if (outcome.ok) {
        await this.retrying(`storing the result of ${kind} ${id}`, () => this.store(kind, id, { ok: true, value: outcome.value }));
        await this.retrying(`acking ${kind} ${id}`, () => msg.ackAck());
        stats.done++;
      } else {
        await this.fail(kind, id, payload, outcome.error, attempts);
        msg.term(outcome.error.message.slice(0, 200));
        stats.failed++;
        await this.jsm.streams.deleteMessage(this.stream, msg.seq).catch(() => {});
      }
    } finally {
      clearInterval(heartbeat);
      clearTimeout(deadline);
      stats.running--;
      stats.runSeconds += (performance.now() - started) / 1000;
    }
  }

  private resultKey(kind: string, id: string): string {
    return `${kind}.${createHash('sha256').update(id).digest('hex')}`;
  }

  private async store(kind: string, id: string, result: StoredResult): Promise<void> {
    await this.results.put(this.resultKey(kind, id), JSON.stringify(result));
  }

  /** A final failure: stored as the unit's result and kept in the dead-letter stream. */
  private async fail(kind: string, id: string, payload: unknown, error: WireError, attempts: number): Promise<void> {
    const letter: DeadLetter = { kind, id, payload: payload ?? null, error, attempts, at: new Date().toISOString() };
    await this.retrying(`recording the dead letter of ${kind} ${id}`, () => this.js.publish(`${this.options.prefix}.dead.${kind}`, JSON.stringify(letter), { msgID: `${kind}:${id}:${attempts}` }));
    await this.retrying(`storing the failure of ${kind} ${id}`, () => this.store(kind, id, { ok: false, error, attempts }));
  }

  /** The server gave up redelivering a unit: record it as poisoned and take it off the queue. */
  private async recordExhausted(seq: number, deliveries: number): Promise<void> {
    const message = await this.jsm.streams.getMessage(this.stream, { seq }).catch(() => null);
    if (!message) return;
    const kind = message.header.get(UNIT_KIND_HEADER);
    const id = message.header.get(UNIT_ID_HEADER);
    if (!kind || !id) return;
    let payload: unknown = null;
    try {
      payload = message.json();
    } catch {
      // The payload is recorded as null: the unit id still names it.
    }
    const error: WireError = { code: 'poisoned', message: `work unit ${kind} ${id} was delivered ${deliveries} times and never answered (its worker died or hung each time)` };
    await this.fail(kind, id, payload, error, deliveries);
    await this.jsm.streams.deleteMessage(this.stream, seq).catch(() => {});
  }

  async request<P, R>(kind: string, id: string, payload: P, signal?: AbortSignal): Promise<R> {
    await this.ready;
    if (signal?.aborted) throw new AbortedError('work unit cancelled');
    const key = this.resultKey(kind, id);
    let waiter!: Waiter;
    const answered = new Promise<StoredResult>((resolve) => {
      waiter = { resolve };
    });
    const waiting = this.waiters.get(key) ?? new Set<Waiter>();
    waiting.add(waiter);
    this.waiters.set(key, waiting);
    const onAbort = (): void => waiter.resolve({ ok: false, error: { code: 'aborted', message: 'work unit cancelled' }, attempts: 0 });
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // The watch started before this look-up: a result stored from here on reaches the waiter.
      const stored = await this.retrying(`looking up the result of ${kind} ${id}`, () => this.results.get(key));
      if (stored && stored.operation === 'PUT') this.deliver(key, JSON.parse(stored.string()) as StoredResult);
      else {
        const headers = natsHeaders();
        headers.set(UNIT_ID_HEADER, id);
        headers.set(UNIT_KIND_HEADER, kind);
        injectTraceContext((name, value) => headers.set(name, value));
        await this.retrying(`publishing ${kind} ${id}`, () => this.js.publish(this.subject(kind), JSON.stringify(payload), { msgID: `${kind}:${id}`, headers }));
      }
      const result = await answered;
      if (result.ok) return result.value as R;
      if (result.error.code === 'aborted') throw new AbortedError(result.error.message);
      if (result.error.code === 'poisoned') throw new PoisonedUnitError(result.error.message);
      throw new RemoteUnitError(result.error.code, result.error.message);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      waiting.delete(waiter);
      if (waiting.size === 0 && this.waiters.get(key) === waiting) this.waiters.delete(key);
    }
  }

  /** Dead letters of this deployment, oldest first (for `dockergate` reports and tests). */
  async deadLetters(): Promise<DeadLetter[]> {
    const info = await this.jsm.streams.info(this.deadStream);
    const letters: DeadLetter[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const message = await this.jsm.streams.getMessage(this.deadStream, { seq }).catch(() => null);
      if (message) letters.push(message.json<DeadLetter>());
    }
    return letters;
  }

  /** Stops pulling, lets running units finish (or `nak`s retryable ones), and closes the connection. */
  async close(): Promise<void> {
    this.stopping = true;
    // Each loop ends after the unit it runs, or within one pull's expiry when it has none.
    await Promise.allSettled(this.loops);
    this.stopWatch?.();
    this.advisories?.unsubscribe();
    await this.nc.drain().catch(() => {});
  }

  /** Deletes this deployment's streams and bucket (tests, `dockergate` reset). */
  async destroy(): Promise<void> {
    await this.ready.catch(() => {});
    for (const name of [this.stream, this.deadStream, `KV_${this.options.prefix}-results`]) await this.jsm.streams.delete(name).catch(() => false);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates a stream (or a KV bucket's stream) that other processes may be creating at the same
 * moment. nats-server (2.9, standalone) checks a new stream's name and then its subjects without
 * holding one lock throughout, so the loser of a race can be told "subjects overlap with an
 * existing stream" about the very stream the winner just made; once it exists, the same `add`
 * with the same config succeeds. So a failed creation is tried again a few times before it counts.
 */
async function createTogether<T>(create: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (err) {
      if (attempt >= 4) throw err;
      await sleep(100 * attempt);
    }
  }
}

/** A heartbeat is best effort: while NATS is away it is buffered, on a closed connection dropped. */
function working(msg: JsMsg): void {
  try {
    msg.working();
  } catch {
    // The ack wait decides.
  }
}

/** JetStream API error codes of a server that is up but not serving JetStream yet (restarting). */
const JS_NOT_READY = new Set([10008 /* JetStream temporarily unavailable */, 10023 /* insufficient resources */]);

/** An error after which the same NATS operation may succeed: a lost connection, a server not ready yet. */
function isTransientNatsError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'JetStreamApiError') return JS_NOT_READY.has((err as { code?: number }).code ?? 0) || (err as { status?: number }).status === 503;
  if (['ClosedConnectionError', 'DrainingConnectionError', 'InvalidArgumentError', 'InvalidSubjectError', 'AuthorizationError', 'PermissionViolationError'].includes(err.name)) return false;
  return ['TimeoutError', 'NoResponders', 'RequestError', 'ConnectionError', 'JetStreamError', 'JetStreamStatusError', 'JetStreamNotEnabled'].includes(err.name) || /timeout|no responders|disconnect|connection|not ready/i.test(err.message);
}

/** The server no longer has the stream or consumer (it lost its state): they are created again. */
function isMissingResource(err: unknown): boolean {
  return err instanceof Error && (err.name === 'ConsumerNotFoundError' || err.name === 'StreamNotFoundError' || /consumer not found|stream not found|no stream found/i.test(err.message));
}
