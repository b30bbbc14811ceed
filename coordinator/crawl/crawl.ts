/**
 * `crawl`: profile every tag of a registry, touching only what changed since the last crawl; and
 * `rescan` (the nightly job): the same check of every tag already known, without listing.
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
import { writeTagProfiles } from './out-dir.js';
import type { Platform } from '../../extractor/types.js';
import type { KnowledgeBase, TagChange, TagRecord, TagScan } from '../../store/kb/index.js';
import type { ScanResult } from '../plan/scan.js';

/** Scans one image reference for one platform (embedded, or through the cluster's coordinators). */
export type Scanner = (reference: string, platform: Platform) => Promise<ScanResult>;

/** How tags are checked and scanned, whether found by a crawl or known from earlier ones. */
export interface TagCheckOptions {
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
  /** Also write every profiled tag's profiles under this directory (`out-dir.ts`). */
  readonly outDir?: string;
}

export interface CrawlOptions extends TagCheckOptions {
  /** `host[:port]` of the registry. */
  readonly registry: string;
  /** Globs (picomatch) of repositories and tags to crawl; all when absent. */
  readonly repositories?: string;
  readonly tags?: string;
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

/** What a crawl or rescan did. */
export interface TagCheckSummary extends CrawlCounts {
  readonly state: string;
  /** HTTP requests made to registries (listings, manifest HEADs, and the scans' own). */
  readonly requests: number;
  readonly seconds: number;
  /** Tags whose digest or syscalls changed (first sightings included). */
  readonly changed: readonly TagMove[];
  readonly failures: readonly TagFailure[];
  /** Names a registry listed that are not valid repository or tag names (skipped). */
  readonly invalidNames: readonly string[];
}

export interface CrawlSummary extends TagCheckSummary {
  readonly registry: string;
}

export interface RescanSummary extends TagCheckSummary {
  readonly registries: readonly string[];
}

interface TagTarget {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
}

export async function crawlRegistry(options: CrawlOptions): Promise<CrawlSummary> {
  const started = performance.now();
  const requestsBefore = callsTo('registry');
  const catalog = catalogOf(options, options.registry);
  const repoMatch = options.repositories ? picomatch(options.repositories) : () => true;
  const tagMatch = options.tags ? picomatch(options.tags) : () => true;
  const invalidNames: string[] = [];
  const failures: TagFailure[] = [];
  const listing = await catalog.repositories();
  invalidNames.push(...listing.invalid);
  const repositories = listing.names.filter((name) => repoMatch(name));
  const limit = pLimit(options.concurrency);
  const targets: TagTarget[] = [];
  await Promise.all(
    repositories.map((repository) =>
      limit(async () => {
        try {
          const tags = await catalog.tags(repository);
          invalidNames.push(...tags.invalid.map((tag) => `${repository}:${tag}`));
          for (const tag of tags.names) if (tagMatch(tag)) targets.push({ registry: options.registry, repository, tag });
        } catch (err) {
          failures.push({ reference: `${options.registry}/${repository}`, error: reasonOf(err) });
        }
      }),
    ),
  );
  const checked = await checkTags(options, targets, new Map([[options.registry, catalog]]), failures);
  return {
    registry: options.registry,
    ...checked,
    repositories: repositories.length,
    requests: callsTo('registry') - requestsBefore,
    seconds: elapsed(started),
    invalidNames,
  };
}

/** Checks every tag known of `registries` (all known registries when empty) again. */
export async function rescanRegistries(options: TagCheckOptions, registries: readonly string[]): Promise<RescanSummary> {
  const started = performance.now();
  const requestsBefore = callsTo('registry');
  const chosen = registries.length > 0 ? [...registries] : await options.kb.registries();
  const targets: TagTarget[] = [];
  const catalogs = new Map<string, RegistryCatalog>();
  for (const registry of chosen) {
    catalogs.set(registry, catalogOf(options, registry));
    for (const known of await options.kb.tagsOf(registry)) targets.push({ registry, repository: known.repository, tag: known.tag });
  }
  const checked = await checkTags(options, targets, catalogs, []);
  return {
    registries: chosen,
    ...checked,
    repositories: new Set(targets.map((target) => `${target.registry}/${target.repository}`)).size,
    requests: callsTo('registry') - requestsBefore,
    seconds: elapsed(started),
    invalidNames: [],
  };
}

function catalogOf(options: TagCheckOptions, registry: string): RegistryCatalog {
  return new RegistryCatalog(registry, {
    limits: options.limits,
    insecure: options.insecure,
    ...(options.dockerConfigPath ? { dockerConfigPath: options.dockerConfigPath } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** The per-tag loop of crawl and rescan; `failures` holds the failures found before it (listings), and gets the tags'. */
async function checkTags(
  options: TagCheckOptions,
  unsorted: readonly TagTarget[],
  catalogs: ReadonlyMap<string, RegistryCatalog>,
  failures: TagFailure[],
): Promise<Omit<TagCheckSummary, 'requests' | 'seconds' | 'invalidNames'>> {
  const targets = [...unsorted].sort((a, b) => compare(referenceOf(a), referenceOf(b)));
  const changed: TagMove[] = [];
  const counts = { repositories: 0, tags: targets.length, scanned: 0, skipped: 0, failed: failures.length };
  const limit = pLimit(options.concurrency);
  options.progress?.start(targets.length);
  try {
    await Promise.all(
      targets.map((target) =>
        limit(async () => {
          const reference = referenceOf(target);
          const outcome = await checkTag(options, catalogs.get(target.registry)!, target).catch((err: unknown) => ({ failed: reasonOf(err) }) as const);
          if (!('failed' in outcome) && options.outDir) await writeTagProfiles(options.outDir, outcome.record);
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
  return { ...counts, state: options.state, changed, failures };
}

const referenceOf = (target: TagTarget): string => `${target.registry}/${target.repository}:${target.tag}`;

const elapsed = (started: number): number => Number(((performance.now() - started) / 1000).toFixed(3));

/** Decisions that make a scan unsure (`ScanPlanner.fallBack`): the reasons of a fallback. */
const FALLBACK_KINDS: ReadonlySet<string> = new Set(['unresolved', 'analysis-failed', 'limit']);

type TagOutcome = { readonly skipped: true; readonly record: TagRecord } | { readonly skipped: false; readonly record: TagRecord; readonly change?: TagChange } | { readonly failed: string };

/** Resolves one tag and, unless it is current, scans and stores it (a failure is stored too). */
async function checkTag(options: TagCheckOptions, catalog: RegistryCatalog, { registry, repository, tag }: TagTarget): Promise<TagOutcome> {
  const { kb, state } = options;
  const digest = await catalog.digestOf(repository, tag);
  const known = await kb.getTag(registry, repository, tag);
  if (known && known.digest === digest && known.state === state && known.error === undefined) {
    await kb.putTag(known);
    return { skipped: true, record: known };
  }
  const record = { registry, repository, tag, digest, state };
  let scans: TagScan[];
  try {
    scans = [];
    for (const target of await scanTargets(options, registry, repository, digest)) {
      const result = await options.scan(target.reference, target.platform);
      const platform = formatPlatform(result.platform);
      await kb.putProfile({
        manifestDigest: result.manifestDigest,
        state,
        platform,
        fallback: result.unsure,
        reasons: result.unsure ? result.decisions.filter((decision) => FALLBACK_KINDS.has(decision.kind)) : [],
        syscalls: result.syscalls,
      });
      scans.push({ platform, manifestDigest: result.manifestDigest, syscalls: [...result.syscalls.keys()].sort() });
    }
  } catch (err) {
    const reason = reasonOf(err);
    await kb.putTag({ ...record, scans: [], error: reason });
    return { failed: reason };
  }
  const change = changeOf(known, digest, scans);
  await kb.putTag({ ...record, scans }, change);
  return { skipped: false, record: { ...record, scans }, ...(change ? { change } : {}) };
}

/** What to scan for a digest: itself for one platform, or each platform manifest of its index. */
async function scanTargets(options: TagCheckOptions, registry: string, repository: string, digest: string): Promise<{ reference: string; platform: Platform }[]> {
  const at = (manifest: string) => `docker://${registry}/${repository}@${manifest}`;
  if (!options.allPlatforms) return [{ reference: at(digest), platform: options.platform }];
  const client = new RegistryClient({ transport: 'docker', registry, repository }, { limits: options.limits, insecure: options.insecure });
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
