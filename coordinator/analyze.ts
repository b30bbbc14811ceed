/**
 * `analyze`: facts for ELF files given by path. Each file goes to the CAS, then through the bus as
 * an `analyse-object` unit; facts come back from the knowledge base, so a file is analysed once
 * per (sha256, analyser, version) however often it is asked for.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { InvalidInputError, NotFoundError } from '../infra/errors.js';
import type { AnalysisFailure } from '../store/kb/index.js';
import type { ObjectFacts } from '../worker/analyser.js';
import { type AnalyseObjectDone, type AnalyseObjectUnit, analyseObjectUnitId, UNIT_ANALYSE_OBJECT } from '../worker/contracts.js';
import { NATIVE_ANALYSER_NAME, NATIVE_ANALYSER_VERSION } from '../worker/native/identity.js';
import type { Runtime } from './embedded.js';

export interface AnalyzedFile {
  readonly path: string;
  readonly sha256: string;
  readonly cached: boolean;
  readonly facts?: ObjectFacts;
  readonly failure?: AnalysisFailure;
}

export async function analyzeFiles(runtime: Runtime, paths: readonly string[]): Promise<AnalyzedFile[]> {
  const inputs = await Promise.all(
    paths.map(async (file) => {
      const bytes = await fs.readFile(file).catch((err: unknown) => {
        throw new NotFoundError(`${file}: cannot read (${(err as Error).message})`, { cause: err });
      });
      if (bytes.length > runtime.limits.maxElfBytes) throw new InvalidInputError(`${file}: larger than maxElfBytes`);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      await runtime.cas.put(sha256, bytes);
      return { path: file, sha256 };
    }),
  );
  const done = await Promise.all(
    inputs.map(({ sha256 }) => {
      const unit: AnalyseObjectUnit = { sha256, analyser: NATIVE_ANALYSER_NAME, analyserVersion: NATIVE_ANALYSER_VERSION };
      return runtime.bus.request<AnalyseObjectUnit, AnalyseObjectDone>(UNIT_ANALYSE_OBJECT, analyseObjectUnitId(unit), unit);
    }),
  );
  const kb = await runtime.kb();
  const keys = inputs.map(({ sha256 }) => ({ sha256, analyser: NATIVE_ANALYSER_NAME, analyserVersion: NATIVE_ANALYSER_VERSION }));
  const [facts, failures] = await Promise.all([kb.getFacts(keys), kb.getFailures(keys)]);
  return inputs.map((input, i) => {
    const found = facts.get(input.sha256);
    const failure = failures.get(input.sha256);
    return { ...input, cached: done[i]?.cached ?? false, ...(found ? { facts: found } : {}), ...(failure ? { failure } : {}) };
  });
}
