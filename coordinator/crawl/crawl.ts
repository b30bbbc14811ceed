/**
 * `crawl`: profile every tag of a registry, touching only what changed since the last crawl.
 *
 * For each repository of the catalog and each tag (both filtered by globs), one `HEAD` resolves
 * the tag to a digest. A tag whose stored record (`registry_tags`) has that digest and the current
 * analysis state, and no failure, is current: nothing else is done for it. Any other tag is scanned
 * (each platform's manifest its own scan, with `allPlatforms`) and stored, with a history entry
 * (`tag_history`) when its digest or its syscalls changed. Shared layers and known objects cost
 * nothing, as in any scan: their records and facts are in the knowledge base already.
 *
 * A tag that fails (a hostile image, a registry error) is recorded with its reason and tried
 * again by the next crawl; the crawl goes on with the others.
 */
import pLimit from 'p-limit';
import picomatch from 'picomatch';
import { DockergateError } from '../../infra/errors.js';
import type { Limits } from '../../infra/limits.js';
import { callsTo } from '../../infra/round-trips.js';
import { formatPlatform, parseManifestOrIndex } from '../../extractor/manifest.js';
import { RegistryCatalog } from '../../extractor/registry-catalog.js';
import { RegistryClient } from '../../extractor/sources/registry.js';
import type { Platform } from '../../extractor/types.js';
import type { KnowledgeBase, TagChange, TagRecord, TagScan } from '../../store/kb/index.js';
import type { ScanResult } from '../plan/scan.js';

/** Scans one image reference for one platform (embedded, or through the cluster's coordinators). */
export type Scanner = (reference: string, platform: Platform) => Promise<ScanResult>;

export interface CrawlOptions {
  /** `host[:port]` of the registry. */
  readonly registry: string;
  /** Globs (picomatch) of repositories and tags to crawl; all when absent. */
  readonly repositories?: string;
  readonly tags?: string;
  /** The platform scanned, or every platform of an index (`allPlatforms`). */
  readonly platform: Platform;
  readonly allPlatforms: boolean;
  /** Tags resolved and scanned at once. */
  readonly concurrency: number;
  readonly insecure: boolean;
  readonly dockerConfigPath?: string;
  readonly limits: Limits;
  /** The analysis state scans are made in (`coordinator/plan/analysis-state.ts`). */
  readonly state: string;
  readonly kb: KnowledgeBase;
  readonly scan: Scanner;
  readonly progress?: CrawlProgress;
  readonly signal?: AbortSignal;
}

/** Told about each tag once it is done (for a progress display). */
export interface CrawlProgress {
  /** The number of tags to check is known. */
  start(tags: number): void;
  tagDone(reference: string, outcome: 'scanned' | 'skipped' | 'failed', counts: CrawlCounts): void;
  stop(): void;
}

export interface CrawlCounts {
  readonly repositories: number;
  readonly tags: number;
  readonly scanned: number;
  readonly skipped: number;
  readonly failed: number;
}

export interface TagFailure {
  readonly reference: string;
  readonly error: string;
}

export interface TagMove {
  readonly reference: string;
  readonly fromDigest?: string;
  readonly toDigest: string;
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

export interface CrawlSummary extends CrawlCounts {
  readonly registry: string;
  readonly state: string;
  /** HTTP requests made to the registry (listings, manifest HEADs, and the scans' own). */
  readonly requests: number;
  readonly seconds: number;
  /** Tags whose digest or syscalls changed (first sightings included). */
  readonly changed: readonly TagMove[];
  readonly failures: readonly TagFailure[];
  /** Names the registry listed that are not valid repository or tag names (skipped). */
  readonly invalidNames: readonly string[];
}

export async function crawlRegistry(options: CrawlOptions): Promise<CrawlSummary> {
  const started = performance.now();
  const requestsBefore = callsTo('registry');
  const source = { limits: options.limits, insecure: options.insecure, ...(options.dockerConfigPath ? { dockerConfigPath: options.dockerConfigPath } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  const catalog = new RegistryCatalog(options.registry, source);
  const repoMatch = options.repositories ? picomatch(options.repositories) : () => true;
  const tagMatch = options.tags ? picomatch(options.tags) : () => true;
  const invalidNames: string[] = [];
  const failures: TagFailure[] = [];
  const changed: TagMove[] = [];
  const counts = { repositories: 0, tags: 0, scanned: 0, skipped: 0, failed: 0 };

  const listing = await catalog.repositories();
  invalidNames.push(...listing.invalid);
  const repositories = listing.names.filter((name) => repoMatch(name));
  counts.repositories = repositories.length;
  const limit = pLimit(options.concurrency);
  const targets: { repository: string; tag: string }[] = [];
  await Promise.all(
    repositories.map((repository) =>
      limit(async () => {
        try {
          const tags = await catalog.tags(repository);
          invalidNames.push(...tags.invalid.map((tag) => `${repository}:${tag}`));
          for (const tag of tags.names) if (tagMatch(tag)) targets.push({ repository, tag });
        } catch (err) {
          counts.failed++;
          failures.push({ reference: `${options.registry}/${repository}`, error: reasonOf(err) });
        }
      }),
    ),
  );
  targets.sort((a, b) => (a.repository === b.repository ? compare(a.tag, b.tag) : compare(a.repository, b.repository)));
  counts.tags = targets.length;
  options.progress?.start(targets.length);
  try {
    await Promise.all(
      targets.map(({ repository, tag }) =>
        limit(async () => {
          const reference = `${options.registry}/${repository}:${tag}`;
          const outcome = await crawlTag(options, catalog, repository, tag).catch((err: unknown) => ({ failed: reasonOf(err) }) as const);
          if ('failed' in outcome) {
            counts.failed++;
            failures.push({ reference, error: outcome.failed });
          } else if (outcome.skipped) counts.skipped++;
          else {
            counts.scanned++;
            if (outcome.change) changed.push({ reference, ...outcome.change });
          }
          options.progress?.tagDone(reference, 'failed' in outcome ? 'failed' : outcome.skipped ? 'skipped' : 'scanned', { ...counts });
        }),
      ),
    );
  } finally {
    options.progress?.stop();
  }
  changed.sort((a, b) => compare(a.reference, b.reference));
  failures.sort((a, b) => compare(a.reference, b.reference));
  return {
    registry: options.registry,
    state: options.state,
    ...counts,
    requests: callsTo('registry') - requestsBefore,
    seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    changed,
    failures,
    invalidNames,
  };
}

type TagOutcome = { readonly skipped: true } | { readonly skipped: false; readonly change?: TagChange } | { readonly failed: string };

/** Resolves one tag and, unless it is current, scans and stores it (a failure is stored too). */
async function crawlTag(options: CrawlOptions, catalog: RegistryCatalog, repository: string, tag: string): Promise<TagOutcome> {
  const { kb, registry, state } = options;
  const digest = await catalog.digestOf(repository, tag);
  const known = await kb.getTag(registry, repository, tag);
  if (known && known.digest === digest && known.state === state && known.error === undefined) {
    await kb.putTag(known);
    return { skipped: true };
  }
  const record = { registry, repository, tag, digest, state };
  let scans: TagScan[];
  try {
    scans = [];
    for (const target of await scanTargets(options, repository, digest)) {
      const result = await options.scan(target.reference, target.platform);
      scans.push({ platform: formatPlatform(result.platform), manifestDigest: result.manifestDigest, syscalls: [...result.syscalls.keys()].sort() });
    }
  } catch (err) {
    const reason = reasonOf(err);
    await kb.putTag({ ...record, scans: [], error: reason });
    return { failed: reason };
  }
  const change = changeOf(known, digest, scans);
  await kb.putTag({ ...record, scans }, change);
  return { skipped: false, ...(change ? { change } : {}) };
}

/** What to scan for a digest: itself for one platform, or each platform manifest of its index. */
async function scanTargets(options: CrawlOptions, repository: string, digest: string): Promise<{ reference: string; platform: Platform }[]> {
  const at = (manifest: string) => `docker://${options.registry}/${repository}@${manifest}`;
  if (!options.allPlatforms) return [{ reference: at(digest), platform: options.platform }];
  const client = new RegistryClient({ transport: 'docker', registry: options.registry, repository }, { limits: options.limits, insecure: options.insecure });
  const top = await client.getManifest(digest, `manifest ${repository}@${digest}`, digest as `sha256:${string}`);
  const parsed = parseManifestOrIndex(top.bytes, options.limits, top.contentType);
  if (parsed.kind === 'manifest') return [{ reference: at(digest), platform: options.platform }];
  // Attestation manifests (BuildKit) carry the platform unknown/unknown: not images to run.
  return parsed.manifests
    .filter((entry) => entry.platform && entry.platform.os !== 'unknown')
    .map((entry) => ({ reference: at(entry.digest), platform: entry.platform! }));
}

/** The history entry of a tag scanned now: when first seen, moved, or its syscalls changed. */
function changeOf(known: TagRecord | undefined, digest: string, scans: readonly TagScan[]): TagChange | undefined {
  const now = new Set(scans.flatMap((scan) => scan.syscalls));
  const before = new Set(known?.scans.flatMap((scan) => scan.syscalls) ?? []);
  const added = [...now].filter((name) => !before.has(name)).sort();
  const removed = [...before].filter((name) => !now.has(name)).sort();
  if (known && known.digest === digest && added.length === 0 && removed.length === 0) return undefined;
  return { ...(known ? { fromDigest: known.digest } : {}), toDigest: digest, added, removed };
}

function reasonOf(err: unknown): string {
  if (err instanceof DockergateError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

const compare = (a: string, b: string): number => (a === b ? 0 : a < b ? -1 : 1);
