/**
 * The analysers a worker can run, by name. Facts are stored per (sha256, analyser, version), so
 * both can be used side by side on the same knowledge base and compared.
 * - `native` (default): dockergate's own x86 analysis, in the pool of analysis threads.
 * - `radare2`: radare2 through r2pipe (needs a radare2 install; found on first use).
 */
import { InvalidInputError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';
import type { AnalysisContext, Analyser } from './analyser.js';
import type { ObjectFacts } from '../store/facts.js';
import type { AnalysisPool } from './analysis-pool.js';
import type { AnalyserIdentity } from './graph/facts.js';
import { NATIVE_ANALYSER_NAME, NATIVE_ANALYSER_VERSION } from './native/identity.js';
import { RADARE2_ANALYSER_NAME, RADARE2_ANALYSER_VERSION } from './radare2/identity.js';

export type { AnalyserIdentity };

export const ANALYSERS: ReadonlyMap<string, AnalyserIdentity> = new Map([
  [NATIVE_ANALYSER_NAME, { name: NATIVE_ANALYSER_NAME, version: NATIVE_ANALYSER_VERSION }],
  [RADARE2_ANALYSER_NAME, { name: RADARE2_ANALYSER_NAME, version: RADARE2_ANALYSER_VERSION }],
]);

export const DEFAULT_ANALYSER: AnalyserIdentity = ANALYSERS.get(NATIVE_ANALYSER_NAME)!;

/** The identity of the analyser called `name`, or a clear error naming the choices. */
export function analyserNamed(name: string): AnalyserIdentity {
  const identity = ANALYSERS.get(name);
  if (!identity) throw new InvalidInputError(`unknown analyser ${JSON.stringify(name)} (choose ${[...ANALYSERS.keys()].join(' or ')})`);
  return identity;
}

/** The native analyser, run in the pool's threads (time and heap bounded there). */
class PooledNativeAnalyser implements Analyser {
  readonly name = NATIVE_ANALYSER_NAME;
  readonly version = NATIVE_ANALYSER_VERSION;
  constructor(private readonly pool: AnalysisPool) {}
  analyze(bytes: Uint8Array, sha256: string, context: AnalysisContext): Promise<ObjectFacts> {
    return this.pool.analyse(bytes, sha256, context.signal);
  }
}

/** Resolves analysers by name; radare2 is located and loaded only when first asked for. */
export function analyserRegistry(limits: Limits, pool: AnalysisPool): (name: string) => Promise<Analyser> {
  const native = new PooledNativeAnalyser(pool);
  let radare2: Promise<Analyser> | undefined;
  return (name) => {
    if (name === NATIVE_ANALYSER_NAME) return Promise.resolve(native);
    if (name === RADARE2_ANALYSER_NAME) {
      radare2 ??= import('./radare2/analyser.js').then(async ({ Radare2Analyser }) => {
        const analyser = new Radare2Analyser(limits);
        // A missing or broken radare2 is a setup error, not a property of any object: found here,
        // before a unit starts, it fails the command instead of being recorded against objects.
        await analyser.check();
        return analyser;
      });
      return radare2;
    }
    return Promise.reject(new InvalidInputError(`unknown analyser ${JSON.stringify(name)}`));
  };
}
