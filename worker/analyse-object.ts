import { AbortedError, DockergateError } from '../infra/errors.js';
import type { Bus } from '../infra/bus.js';
import type { Cas } from '../store/cas.js';
import type { KnowledgeBase } from '../store/kb/index.js';
import type { Analyser } from './analyser.js';
import { type AnalyseObjectDone, type AnalyseObjectUnit, UNIT_ANALYSE_OBJECT } from './contracts.js';

export interface ObjectAnalyserDeps {
  readonly cas: Cas;
  readonly kb: () => Promise<KnowledgeBase>;
  /** The analyser a unit names (worker/analysers.ts). */
  readonly analyser: (name: string) => Promise<Analyser>;
  /** Analyses actually run (not answered from the knowledge base), for tests and progress. */
  readonly counters: { analysed: number; failed: number };
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
    const bytes = await deps.cas.get(unit.sha256);
    const started = performance.now();
    context.working();
    try {
      const facts = await analyser.analyze(bytes, unit.sha256, context);
      deps.counters.analysed++;
      await kb.putFacts(facts, Math.round(performance.now() - started));
      return { sha256: unit.sha256, status: 'ok', cached: false };
    } catch (err) {
      // Infrastructure trouble (retryable errors, a thread that cannot start: not ours) and
      // cancellation say nothing about the object: not recorded.
      if (!(err instanceof DockergateError) || err instanceof AbortedError || err.retryable) throw err;
      deps.counters.failed++;
      const failure = { code: err.code, message: err.message };
      await kb.recordFailure(key, failure, Math.round(performance.now() - started));
      return { sha256: unit.sha256, status: 'failed', cached: false };
    }
  });
}
