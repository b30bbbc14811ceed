/**
 * The static closure of a program built on this host, for ground-truth tests: the program and what
 * the host's loader loads for it (`lddClosure`), analysed by one analyser and linked like ld.so
 * (coordinator/plan/link.ts), with the scan's documented fallback for unresolved syscall sites applied.
 */
import fs from 'node:fs/promises';
import { type LinkedReach, type LoadedObject, linkFacts } from '../../coordinator/plan/link.js';
import { DOCKER_DEFAULT_FALLBACK_SYSCALLS } from '../../coordinator/plan/platforms.js';
import type { ObjectFacts } from '../../store/facts.js';
import { HOST_ROOT, type LibcRoot, lddClosure } from './ground-truth.js';
import { sha256 } from './layers.js';

export type AnalyseFile = (bytes: Buffer, sha256: string) => ObjectFacts | Promise<ObjectFacts>;

/** Memoises facts per real path: libc is analysed once per analyser, not once per fixture. */
export function factsReader(analyse: AnalyseFile): (file: string) => Promise<ObjectFacts> {
  const cache = new Map<string, Promise<ObjectFacts>>();
  return async (file) => {
    const real = await fs.realpath(file);
    let facts = cache.get(real);
    if (!facts) {
      facts = fs.readFile(real).then((bytes) => analyse(bytes, sha256(bytes)));
      cache.set(real, facts);
    }
    return facts;
  };
}

export interface ProgramClosure {
  readonly linked: LinkedReach;
  /**
   * What the scan allows (coordinator/plan/scan.ts, "When the analysis is unsure"): the linked syscalls,
   * plus Docker's default profile when any reachable syscall site has a number the analysis could
   * not bound.
   */
  readonly withFallback: ReadonlySet<string>;
}

export async function programClosure(
  executable: string,
  factsOf: (file: string) => Promise<ObjectFacts>,
  root: LibcRoot = HOST_ROOT,
): Promise<ProgramClosure> {
  const { interpreter, libraries } = await lddClosure(executable, root);
  const load = async (file: string): Promise<LoadedObject> => ({ path: file, facts: await factsOf(file) });
  const scope = [await load(executable), ...(await Promise.all(libraries.map(load)))];
  const loader = interpreter ? await load(interpreter) : undefined;
  const linked = linkFacts({ scope, ...(loader ? { interpreter: loader } : {}) });
  const withFallback = new Set(linked.syscalls);
  if (linked.unresolvedBy.size > 0) for (const name of DOCKER_DEFAULT_FALLBACK_SYSCALLS({ os: 'linux', architecture: 'amd64' })) withFallback.add(name);
  return { linked, withFallback };
}
