/**
 * Runs analyses in worker threads, a few at a time, each bounded in wall time
 * (`limits.analysisTimeoutMs`: the thread is terminated) and heap (`ANALYSIS_HEAP_MB`). A thread
 * that dies or times out is replaced; its object is reported failed with the reason, never retried.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AbortedError, type DockergateError, type ErrorCode, InvalidInputError, LimitExceededError, RemoteUnitError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';
import type { ObjectFacts } from '../store/facts.js';
import type { AnalysisReply, AnalysisRequest } from './analysis-thread.js';

/** Heap of one analysis thread: a large Go binary needs a few hundred MB. */
export const ANALYSIS_HEAP_MB = 1536;

interface Slot {
  worker: Worker;
  busy: boolean;
}

const THREAD_FILE = new URL(`./analysis-thread${path.extname(new URL(import.meta.url).pathname)}`, import.meta.url);

export class AnalysisPool {
  private readonly slots: Slot[] = [];
  /** Analyses waiting for a thread, each with its object's size: the largest is served first. */
  private readonly waiting: { bytes: number; wake: () => void }[] = [];
  private nextId = 1;

  constructor(
    private readonly limits: Limits,
    private readonly size: number,
  ) {}

  private spawn(): Slot {
    // Run from TypeScript sources (tests under `tsx`), the thread registers tsx's loader first.
    const fromSources = THREAD_FILE.pathname.endsWith('.ts');
    const entry = fromSources
      ? `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(THREAD_FILE.href)}); });`
      : THREAD_FILE;
    const worker = new Worker(entry, {
      eval: fromSources,
      workerData: { limits: this.limits },
      resourceLimits: { maxOldGenerationSizeMb: ANALYSIS_HEAP_MB },
    });
    worker.unref();
    return { worker, busy: false };
  }

  /** Starts threads now, for `objects` analyses at most (idle until they come): their start-up overlaps other work. */
  warm(objects = this.size): void {
    while (this.slots.length < Math.min(this.size, objects)) this.slots.push(this.spawn());
  }

  /**
   * A thread for an object of `bytes` bytes. When all are busy, the largest waiting object gets the
   * next free one (longest job first: a batch's large objects do not end up last on one thread
   * while the others idle).
   */
  private async acquire(bytes: number): Promise<Slot> {
    for (;;) {
      const idle = this.slots.find((slot) => !slot.busy);
      if (idle) {
        idle.busy = true;
        return idle;
      }
      if (this.slots.length < this.size) {
        const slot = this.spawn();
        slot.busy = true;
        this.slots.push(slot);
        return slot;
      }
      await new Promise<void>((wake) => this.waiting.push({ bytes, wake }));
    }
  }

  private release(slot: Slot, healthy: boolean): void {
    if (healthy) slot.busy = false;
    else {
      this.slots.splice(this.slots.indexOf(slot), 1);
      void slot.worker.terminate();
    }
    if (this.waiting.length === 0) return;
    let largest = 0;
    for (let i = 1; i < this.waiting.length; i++) if (this.waiting[i]!.bytes > this.waiting[largest]!.bytes) largest = i;
    this.waiting.splice(largest, 1)[0]!.wake();
  }

  /** Analyses `bytes` in a thread; throws the thread's typed error, or a limit error. */
  async analyse(bytes: Uint8Array, sha256: string, signal?: AbortSignal): Promise<ObjectFacts> {
    const slot = await this.acquire(bytes.length);
    const id = this.nextId++;
    let healthy = false;
    try {
      const reply = await new Promise<AnalysisReply>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new LimitExceededError('analysisTimeoutMs', this.limits.analysisTimeoutMs, `analysis of sha256:${sha256}`)),
          this.limits.analysisTimeoutMs,
        );
        const cleanup = (): void => {
          clearTimeout(timer);
          slot.worker.off('message', onMessage);
          slot.worker.off('error', onError);
          slot.worker.off('exit', onExit);
          signal?.removeEventListener('abort', onAbort);
        };
        const onMessage = (message: AnalysisReply): void => {
          if (message.id !== id) return;
          cleanup();
          resolve(message);
        };
        const onError = (err: Error): void => {
          cleanup();
          const outOfMemory = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY';
          reject(outOfMemory ? new LimitExceededError('ANALYSIS_HEAP_MB', ANALYSIS_HEAP_MB, `analysis of sha256:${sha256}`) : err);
        };
        const onExit = (code: number): void => {
          cleanup();
          // The object killed its thread (a crash in the analyser): final for this object.
          reject(new InvalidInputError(`analysis thread of sha256:${sha256} exited with code ${code}`));
        };
        const onAbort = (): void => {
          cleanup();
          reject(new AbortedError(`analysis of sha256:${sha256} cancelled`));
        };
        slot.worker.on('message', onMessage);
        slot.worker.on('error', onError);
        slot.worker.on('exit', onExit);
        signal?.addEventListener('abort', onAbort, { once: true });
        const request: AnalysisRequest = { id, bytes, sha256 };
        slot.worker.postMessage(request);
      });
      healthy = true;
      if (reply.ok) return reply.facts as ObjectFacts;
      throw errorOf(reply.code, reply.message);
    } finally {
      this.release(slot, healthy);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
    this.slots.length = 0;
  }
}

/** Codes a thread may report (a DockergateError's code), kept as they were there. */
const THREAD_ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>(['invalid-input', 'unsafe-path', 'limit-exceeded', 'digest-mismatch', 'unsupported', 'not-found']);

/**
 * The thread's error on this side: its own code and message, unchanged (a limit error reads as the
 * thread wrote it). An `internal` error is a bug of the analyser on this object: final for the
 * object, recorded with its stack so the next analyser version (a new facts key) tries it again.
 */
function errorOf(code: string, message: string): DockergateError {
  if (THREAD_ERROR_CODES.has(code)) return new RemoteUnitError(code as ErrorCode, message);
  return new InvalidInputError(`analyser failed (${code}): ${message}`);
}
