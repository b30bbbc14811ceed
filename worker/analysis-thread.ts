/**
 * Worker-thread body of the analysis pool: analyses one object per message. Runs in its own V8
 * isolate, so the pool can bound its heap (`resourceLimits`) and kill it on a timeout.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DockergateError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';
import { analyzeElf } from './native/analyser.js';

export interface AnalysisRequest {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

export type AnalysisReply =
  | { readonly id: number; readonly ok: true; readonly facts: unknown }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string; readonly retryable: boolean };

const limits = (workerData as { limits: Limits }).limits;

parentPort?.on('message', (request: AnalysisRequest) => {
  let reply: AnalysisReply;
  try {
    reply = { id: request.id, ok: true, facts: analyzeElf(request.bytes, request.sha256, limits) };
  } catch (err) {
    reply =
      err instanceof DockergateError
        ? { id: request.id, ok: false, code: err.code, message: err.message, retryable: err.retryable }
        : { id: request.id, ok: false, code: 'internal', message: err instanceof Error ? (err.stack ?? err.message) : String(err), retryable: false };
  }
  parentPort?.postMessage(reply);
});
