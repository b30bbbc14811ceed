/**
 * Retrying in place: a durable write that follows expensive work (an analysis, a layer
 * extraction) is tried again while its service is briefly away (`UnavailableError`), instead of
 * failing the unit and having its redelivery redo the work. Bounded: after `budgetMs` the error
 * goes to the bus, which retries the unit with backoff.
 */
import { DockergateError } from './errors.js';

export interface RetryOptions {
  readonly signal?: AbortSignal;
  /** Called before each wait (a cluster unit's heartbeat). */
  readonly working?: () => void;
  /** Called with each error that is tried again. */
  readonly onRetry?: (err: unknown) => void;
  /** Total time spent waiting between tries (default 60 s). */
  readonly budgetMs?: number;
}

export async function retryUnavailable<T>(operation: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.budgetMs ?? 60_000);
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (err) {
      const retryable = err instanceof DockergateError && err.retryable;
      if (!retryable || options.signal?.aborted || Date.now() >= deadline) throw err;
      options.onRetry?.(err);
      options.working?.();
      await new Promise((resolve) => setTimeout(resolve, Math.min(4_000, 250 * 2 ** attempt)));
    }
  }
}
