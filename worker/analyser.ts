/**
 * The analyser contract: bytes in, `ObjectFacts` (store/facts.ts) out.
 */
import type { ObjectFacts } from '../store/facts.js';

export interface AnalysisContext {
  readonly signal: AbortSignal;
  /** Called now and then during long analyses (cluster heartbeats). */
  readonly working: () => void;
}

export interface Analyser {
  readonly name: string;
  readonly version: number;
  analyze(bytes: Uint8Array, sha256: string, context: AnalysisContext): Promise<ObjectFacts>;
}
