/**
 * The analysis state: one short key naming everything besides the image that shapes a scan's
 * result — the extractor, analyser and generator versions, the scan options, and the data the
 * generator applies (the container runtime's syscalls, Docker's default profile used as the
 * fallback). A stored scan or a crawled tag made in another state is stale; after an upgrade,
 * "what is stale" is a comparison of this key, not a rescan of everything.
 */
import { createHash } from 'node:crypto';
import { EXTRACTOR_VERSION } from '../../extractor/version.js';
import type { AnalyserIdentity } from '../../worker/analysers.js';
import dockerDefault from './data/docker-default-seccomp.json' with { type: 'json' };
import { RUNTIME_SYSCALLS } from './runtime-syscalls.js';

/** Bumped whenever a scan of the same image with the same facts would differ. */
export const SCAN_GENERATOR_VERSION = 4;

/** The options of a scan that change its result. */
export interface StateOptions {
  /** Fail instead of falling back when unsure. */
  readonly strict: boolean;
}

const DATA_DIGEST = createHash('sha256').update(JSON.stringify({ runtime: RUNTIME_SYSCALLS, dockerDefault })).digest('hex');

/** `s` and 16 hex digits of the SHA-256 of the state's parts. */
export function analysisState(analyser: AnalyserIdentity, options: StateOptions): string {
  const parts = { extractor: EXTRACTOR_VERSION, analyser: analyser.name, analyserVersion: analyser.version, generator: SCAN_GENERATOR_VERSION, strict: options.strict, data: DATA_DIGEST };
  return `s${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16)}`;
}

/** The key of a finished scan: the image manifest's digest in an analysis state. */
export function scanCacheKey(manifestDigest: string, analyser: AnalyserIdentity, strict: boolean): string {
  return `${manifestDigest}@${analysisState(analyser, { strict })}`;
}
