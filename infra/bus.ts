/**
 * The work bus: the coordinator sends work units, workers handle them. The embedded mode uses the
 * in-process bus below; the cluster mode carries the same units over NATS JetStream. Semantics
 * both keep: units are deduplicated by id while in flight (JetStream's `Nats-Msg-Id`), a
 * `retryable` error is retried with backoff up to `maxAttempts`, any other error is final.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { AbortedError, DockergateError } from './errors.js';
import { withSpan } from './telemetry.js';

export interface UnitContext {
  readonly signal: AbortSignal;
  /** Tells the bus the unit is alive (JetStream `working()`); a no-op in process. */
  working(): void;
}

export type UnitHandler<P, R> = (payload: P, context: UnitContext) => Promise<R>;

export interface Bus {
  handle<P, R>(kind: string, handler: UnitHandler<P, R>): void;
  /** Runs one unit to completion; `id` identifies the unit for deduplication. */
  request<P, R>(kind: string, id: string, payload: P, signal?: AbortSignal): Promise<R>;
  close(): Promise<void>;
}

export interface InProcessBusOptions {
  /** Units of one kind handled at once (CPU-bound work: about the number of cores). */
  readonly concurrency: number;
  /** Kinds handled with another bound than `concurrency`. */
  readonly concurrencyOf?: Readonly<Record<string, number>>;
  readonly maxAttempts: number;
  readonly backoffMs: number;
}

export class InProcessBus implements Bus {
  private readonly handlers = new Map<string, UnitHandler<unknown, unknown>>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** One limiter per unit kind: each kind has its own bound. */
  private readonly limits = new Map<string, LimitFunction>();

  constructor(private readonly options: InProcessBusOptions = { concurrency: 2, maxAttempts: 3, backoffMs: 250 }) {}

  private limitOf(kind: string): LimitFunction {
    let limit = this.limits.get(kind);
    if (!limit) {
      limit = pLimit(this.options.concurrencyOf?.[kind] ?? this.options.concurrency);
      this.limits.set(kind, limit);
    }
    return limit;
  }

  handle<P, R>(kind: string, handler: UnitHandler<P, R>): void {
    if (this.handlers.has(kind)) throw new Error(`a handler for ${kind} is already registered`);
    this.handlers.set(kind, handler as UnitHandler<unknown, unknown>);
  }

  request<P, R>(kind: string, id: string, payload: P, signal?: AbortSignal): Promise<R> {
    const handler = this.handlers.get(kind);
    if (!handler) return Promise.reject(new Error(`no handler for work unit kind ${kind}`));
    const key = `${kind}:${id}`;
    const existing = this.inFlight.get(key);
    if (existing) return existing as Promise<R>;
    const run = this.limitOf(kind)(() =>
      withSpan(`unit ${kind}`, { 'dockergate.unit.kind': kind, 'dockergate.unit.id': id }, () => this.attempt(handler, payload, signal ?? new AbortController().signal)),
    ).finally(() =>
      this.inFlight.delete(key),
    );
    this.inFlight.set(key, run);
    return run as Promise<R>;
  }

  private async attempt(handler: UnitHandler<unknown, unknown>, payload: unknown, signal: AbortSignal): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new AbortedError('work unit cancelled');
      try {
        return await handler(payload, { signal, working: () => {} });
      } catch (err) {
        const retryable = err instanceof DockergateError && err.retryable;
        if (!retryable || attempt >= this.options.maxAttempts) throw err;
        await new Promise((resolve) => setTimeout(resolve, this.options.backoffMs * 4 ** (attempt - 1)));
      }
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
  }
}
