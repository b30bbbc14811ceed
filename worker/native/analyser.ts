/**
 * The native analyser: ELF (worker/elf) + x86 decoding (iced-x86) → call graph → per-object facts.
 * It runs in the pool's threads (worker/analysis-thread.ts; worker/analysers.ts names it).
 */
import type { Limits } from '../../infra/limits.js';
import type { AnalysisContext } from '../analyser.js';
import type { ObjectFacts } from '../../store/facts.js';
import { parseElf } from '../elf/index.js';
import { analysedArch, assembleFacts } from '../graph/facts.js';
import { buildCallGraph } from './call-graph.js';
import { buildCodeModel } from './elf-model.js';
import { NATIVE_ANALYSER_NAME, NATIVE_ANALYSER_VERSION } from './identity.js';

export { NATIVE_ANALYSER_NAME, NATIVE_ANALYSER_VERSION };

export function analyzeElf(bytes: Uint8Array, sha256: string, limits: Limits, context?: AnalysisContext): ObjectFacts {
  const elf = parseElf(bytes, limits);
  analysedArch(elf);
  context?.working();
  const model = buildCodeModel(elf);
  const graph = buildCallGraph(model, limits.maxInstructions);
  context?.working();
  const codeBytes = model.ranges.reduce((sum, range) => sum + range.bytes.length, 0);
  return assembleFacts(elf, sha256, { name: NATIVE_ANALYSER_NAME, version: NATIVE_ANALYSER_VERSION }, model, graph, codeBytes);
}
