/**
 * `analyze`: facts for ELF files given by path. Each file goes to the CAS, then through the bus as
 * an `analyse-object` unit; facts come back from the knowledge base, so a file is analysed once
 * per (sha256, analyser, version) however often it is asked for.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import { AbortedError, DockergateError, InvalidInputError, LimitExceededError, NotFoundError, PoisonedUnitError } from '../../infra/errors.js';
import type { AnalysisFailure, FactsKey } from '../../store/kb/index.js';
import type { ObjectFacts } from '../../store/facts.js';
import { type AnalyseObjectDone, type AnalyseObjectUnit, analyseObjectUnitId, UNIT_ANALYSE_OBJECT } from '../../worker/contracts.js';
import type { Runtime } from '../runtime/runtime.js';
import { type Progress, silentProgress } from '../../infra/progress.js';

export interface AnalyzedFile {
  readonly path: string;
  readonly sha256: string;
  readonly cached: boolean;
  readonly facts?: ObjectFacts;
  readonly failure?: AnalysisFailure;
}

/**
 * A file named on the command line, read only when it is a regular file no larger than `maxBytes`
 * (checked before reading: `/dev/zero`, a FIFO or a sparse 2 GiB file are refused, not read), and
 * never more than that many bytes even if it grows meanwhile.
 */
async function readInput(file: string, maxBytes: number): Promise<Buffer> {
  let handle: fs.FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
    handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`${file}: no such file`, { cause: err });
    throw new InvalidInputError(`${file}: cannot open (${code ?? (err as Error).message})`, { cause: err });
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new InvalidInputError(`${file} is a directory, not an ELF file`);
    if (!stat.isFile()) throw new InvalidInputError(`${file} is not a regular file (a device, FIFO or socket); only files are analysed`);
    if (stat.size > maxBytes) throw new LimitExceededError('maxElfBytes', maxBytes, file);
    const bytes = Buffer.alloc(stat.size);
    let read = 0;
    while (read < bytes.length) {
      const { bytesRead } = await handle.read(bytes, read, bytes.length - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return bytes.subarray(0, read);
  } finally {
    await handle.close();
  }
}

export async function analyzeFiles(runtime: Runtime, paths: readonly string[], progress: Progress = silentProgress): Promise<AnalyzedFile[]> {
  runtime.warmAnalysis(paths.length);
  const inputs = await Promise.all(
    paths.map(async (file) => {
      const bytes = await readInput(file, runtime.limits.maxElfBytes);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      await runtime.cas.put(sha256, bytes);
      return { path: file, sha256 };
    }),
  );
  const phase = progress.phase('analysis', 'files');
  const distinct = new Set(inputs.map(({ sha256 }) => sha256)).size;
  phase.add(distinct);
  const pathOf = new Map(inputs.map(({ sha256, path }) => [sha256, path]));
  const { facts, failures, cached } = await analyseObjects(runtime, inputs.map(({ sha256 }) => sha256), undefined, (sha256) => phase.done(pathOf.get(sha256) ?? sha256));
  phase.end(`${cached.size} known, ${facts.size - cached.size} analysed, ${distinct - facts.size} failed`);
  return inputs.map((input) => {
    const found = facts.get(input.sha256);
    const failure = failures.get(input.sha256);
    return { ...input, cached: cached.has(input.sha256), ...(found ? { facts: found } : {}), ...(failure ? { failure } : {}) };
  });
}

/**
 * Analyses objects already in the CAS (one `analyse-object` unit each, deduplicated by the bus and
 * answered from the knowledge base when known) and reads back their facts and failures.
 *
 * A unit that fails for good on the bus is that object's failure, not the scan's: the others go
 * on. A poisoned unit (delivered its maximum number of times, its worker died or hung each time)
 * is recorded in the knowledge base like any failed analysis, so the object is not tried again by
 * this analyser version; any other final error of the unit is reported for this request only.
 * Retryable errors (a service still away after the bus's retries) and cancellation fail the call.
 */
export async function analyseObjects(
  runtime: Runtime,
  sha256s: readonly string[],
  signal?: AbortSignal,
  /** Called as each object's unit finishes (progress displays). */
  onDone: (sha256: string) => void = () => {},
): Promise<{ facts: Map<string, ObjectFacts>; failures: Map<string, AnalysisFailure>; cached: Set<string>; fresh: number }> {
  const unique = [...new Set(sha256s)];
  const keyOf = (sha256: string): FactsKey => ({ sha256, analyser: runtime.analyser.name, analyserVersion: runtime.analyser.version });
  const unitFailures = new Map<string, AnalysisFailure>();
  const kb = await runtime.kb();
  const done = await Promise.all(
    unique.map(async (sha256): Promise<AnalyseObjectDone> => {
      const unit: AnalyseObjectUnit = { sha256, analyser: runtime.analyser.name, analyserVersion: runtime.analyser.version };
      try {
        const done = await runtime.bus.request<AnalyseObjectUnit, AnalyseObjectDone>(UNIT_ANALYSE_OBJECT, analyseObjectUnitId(unit), unit, signal);
        onDone(sha256);
        return done;
      } catch (err) {
        if (!(err instanceof DockergateError) || err.retryable || err instanceof AbortedError) throw err;
        const failure = { code: err.code, message: err.message };
        if (err instanceof PoisonedUnitError) await kb.recordFailure(keyOf(sha256), failure, 0);
        unitFailures.set(sha256, failure);
        onDone(sha256);
        return { sha256, status: 'failed', cached: false };
      }
    }),
  );
  const keys = unique.map(keyOf);
  const [facts, failures] = await Promise.all([kb.getFacts(keys), kb.getFailures(keys)]);
  for (const [sha256, failure] of unitFailures) if (!facts.has(sha256) && !failures.has(sha256)) failures.set(sha256, failure);
  return {
    facts,
    failures,
    cached: new Set(done.filter((unit) => unit.cached).map((unit) => unit.sha256)),
    fresh: done.filter((unit) => !unit.cached && unit.status === 'ok').length,
  };
}
