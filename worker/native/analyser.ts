/**
 * The native analyser: ELF (worker/elf) + x86 decoding (iced-x86) → call graph → per-object facts.
 */
import { DEFAULT_LIMITS, type Limits } from '../../infra/limits.js';
import type { AnalysisContext, Analyser } from '../analyser.js';
import type { ObjectFacts } from '../../store/facts.js';
import { parseElf } from '../elf/index.js';
import { analysedArch, assembleFacts } from '../graph/facts.js';
import { buildCallGraph } from './call-graph.js';
import { buildCodeModel } from './elf-model.js';
import { NATIVE_ANALYSER_NAME, NATIVE_ANALYSER_VERSION } from './identity.js';

export { NATIVE_ANALYSER_NAME, NATIVE_ANALYSER_VERSION };

export class NativeAnalyser implements Analyser {
  readonly name = NATIVE_ANALYSER_NAME;
  readonly version = NATIVE_ANALYSER_VERSION;

  constructor(private readonly limits: Limits = DEFAULT_LIMITS) {}

  async analyze(bytes: Uint8Array, sha256: string, context?: AnalysisContext): Promise<ObjectFacts> {
    return analyzeElf(bytes, sha256, this.limits, context);
  }
}

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
