/**
 * Wall-clock deadlines of `infra/limits.ts` as abort signals. A deadline's signal aborts with a
 * `LimitExceededError` naming the limit, so that whatever stops on it (a stream pipeline, a bus
 * request, a planner loop) can report the real reason instead of a bare "aborted".
 */
import { AbortedError, DockergateError, LimitExceededError } from './errors.js';
import type { Limits } from './limits.js';

/** The `*TimeoutMs` limits. */
export type DeadlineLimit = { [K in keyof Limits]: K extends `${string}TimeoutMs` ? K : never }[keyof Limits];

export interface Deadline {
  /** Aborts when the deadline passes (reason: a `LimitExceededError`) or when the parent signal aborts (its reason). */
  readonly signal: AbortSignal;
  /** True once the deadline itself has passed (not merely the parent aborted). */
  expired(): boolean;
  /** The error to report for a failure seen while the signal was aborted: the deadline's, or `err`. */
  reasonFor(err: unknown): unknown;
  /** Stops the timer; call when the work is done. */
  dispose(): void;
}

/** A deadline `limits[limit]` ms from now for `what` (e.g. "scan of registry/app:1"), inside `parent`. */
export function startDeadline(limits: Limits, limit: DeadlineLimit, what: string, parent?: AbortSignal): Deadline {
  const ms = limits[limit];
  const controller = new AbortController();
  let passed = false;
  const timer = setTimeout(() => {
    passed = true;
    controller.abort(new LimitExceededError(limit, ms, `the wall-clock time (ms) of ${what}`));
  }, ms);
  timer.unref();
  const onParentAbort = (): void => controller.abort(parent?.reason ?? new AbortedError(`${what} cancelled`));
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  return {
    signal: controller.signal,
    expired: () => passed,
    reasonFor(err) {
      if (!controller.signal.aborted) return err;
      const reason: unknown = controller.signal.reason;
      return reason instanceof DockergateError ? reason : err;
    },
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}

/** Runs `work` under a deadline; a failure once the signal aborted is reported with the deadline's reason. */
export async function withDeadline<T>(limits: Limits, limit: DeadlineLimit, what: string, parent: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = startDeadline(limits, limit, what, parent);
  try {
    return await work(deadline.signal);
  } catch (err) {
    throw deadline.reasonFor(err);
  } finally {
    deadline.dispose();
  }
}
