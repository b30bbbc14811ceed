import { AbortedError, DockergateError } from '../infra/errors.js';
import type { Bus, UnitContext } from '../infra/bus.js';
import { retryUnavailable } from '../infra/retry.js';
import { withSpan } from '../infra/telemetry.js';
import type { Cas } from '../store/cas.js';
import type { ObjectFacts } from '../store/facts.js';
import type { FactsKey, KnowledgeBase } from '../store/kb/index.js';
import type { Analyser } from './analyser.js';
import { type AnalyseObjectDone, type AnalyseObjectUnit, UNIT_ANALYSE_OBJECT } from './contracts.js';

export interface ObjectAnalyserDeps {
  readonly cas: Cas;
  readonly kb: () => Promise<KnowledgeBase>;
  /** The analyser a unit names (worker/analysers.ts). */
  readonly analyser: (name: string) => Promise<Analyser>;
  /** Analyses actually run (not answered from the knowledge base), for tests and progress. */
  readonly counters: { analysed: number; failed: number };
  /** Analyses running now (a gauge of cluster workers), when counted. */
  readonly running?: { analysing: number };
  /** TEST-ONLY (worker/serve.ts): awaited once an analysis starts, before the object is read. */
  readonly beforeAnalysis?: (sha256: string, signal: AbortSignal) => Promise<void>;
  /** Called when a write to the knowledge base is tried again (a cluster worker logs it). */
  readonly onRetry?: (err: unknown) => void;
}

/**
 * Handles `analyse-object` units: answer from the knowledge base when the outcome is known;
 * otherwise analyse in the pool and store facts, or the failure and its reason. Only retryable
 * errors (infrastructure) propagate, so the bus retries them; bad input is final.
 */
export function registerObjectAnalyser(bus: Bus, deps: ObjectAnalyserDeps): void {
  bus.handle<AnalyseObjectUnit, AnalyseObjectDone>(UNIT_ANALYSE_OBJECT, async (unit, context) => {
    const kb = await deps.kb();
    const key = { sha256: unit.sha256, analyser: unit.analyser, analyserVersion: unit.analyserVersion };
    if ((await kb.missing([key])).length === 0) {
      const failed = (await kb.getFailures([key])).has(unit.sha256);
      return { sha256: unit.sha256, status: failed ? 'failed' : 'ok', cached: true };
    }
    const analyser = await deps.analyser(unit.analyser);
    if (analyser.version !== unit.analyserVersion) {
      // A coordinator and a worker of different builds: not the object's fault, not recorded.
      throw new Error(`unit asks for ${unit.analyser} v${unit.analyserVersion}, this worker runs v${analyser.version}`);
    }
    if (deps.running) deps.running.analysing++;
    try {
      await deps.beforeAnalysis?.(unit.sha256, context.signal);
      return await analyse(unit, key, kb, analyser, deps, context);
    } finally {
      if (deps.running) deps.running.analysing--;
    }
  });
}

async function analyse(unit: AnalyseObjectUnit, key: FactsKey, kb: KnowledgeBase, analyser: Analyser, deps: ObjectAnalyserDeps, context: UnitContext): Promise<AnalyseObjectDone> {
  const bytes = await deps.cas.get(unit.sha256);
  const started = performance.now();
  context.working();
  // The outcome is known once the analysis ends: a knowledge base away for a moment must not make
  // a redelivery of the unit redo it, so its write is tried again here first.
  const durably = (write: () => Promise<void>): Promise<void> => retryUnavailable(write, { signal: context.signal, working: context.working, ...(deps.onRetry ? { onRetry: deps.onRetry } : {}) });
  let facts: ObjectFacts;
  try {
    facts = await withSpan('object analysis', { 'dockergate.sha256': unit.sha256, 'dockergate.analyser': unit.analyser, 'dockergate.bytes': bytes.length }, () =>
      analyser.analyze(bytes, unit.sha256, context),
    );
  } catch (err) {
    // Infrastructure trouble (retryable errors, a thread that cannot start: not ours) and
    // cancellation say nothing about the object: not recorded.
    if (!(err instanceof DockergateError) || err instanceof AbortedError || err.retryable) throw err;
    deps.counters.failed++;
    const failure = { code: err.code, message: err.message };
    await durably(() => kb.recordFailure(key, failure, Math.round(performance.now() - started)));
    return { sha256: unit.sha256, status: 'failed', cached: false };
  }
  deps.counters.analysed++;
  await durably(() => kb.putFacts(facts, Math.round(performance.now() - started)));
  return { sha256: unit.sha256, status: 'ok', cached: false };
}
