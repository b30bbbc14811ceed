/**
 * The knowledge base: analysis facts and layer records behind one interface, in two stores with
 * one schema (`schema.ts` for PostgreSQL, its twin `schema-sqlite.ts`): the embedded store is a
 * SQLite file under the user's cache dir (`sqlite.ts`), the cluster store a PostgreSQL server
 * through `pg` (`postgres.ts`). Both apply their migrations at open time and behave identically;
 * `test/knowledge-base.test.ts` runs every case on both. This module holds what they share.
 *
 * Invariants (both stores):
 * - Writes are idempotent (`ON CONFLICT DO NOTHING`): concurrent workers that analysed the same
 *   object, or extracted the same layer, both succeed and the first write stays.
 * - A key is "known" once an `analyses` row exists, `ok` or `failed`; failures are final for that
 *   analyser version (retryable errors must not be recorded). Facts written after a recorded failure
 *   replace the failure; a failure recorded after facts is ignored.
 * - Batch look-ups send one query whatever the number of keys: keys travel as one array parameter
 *   (PostgreSQL `unnest`, SQLite `json_each`), so no statement ever exceeds a parameter limit.
 * - `object_reaches` and `object_exports` rows are derived from the stored facts by the database,
 *   in the transaction that stores them, so the rows and the facts never disagree.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DrizzleQueryError } from 'drizzle-orm';
import type { Digest, FileKind, FileType, LayerFile, LayerRecord } from '../../extractor/types.js';
import { DockergateError, InvalidInputError, NotFoundError, UnavailableError } from '../../infra/errors.js';
import { roundTrip } from '../../infra/round-trips.js';
import type { ObjectFacts } from '../facts.js';
import type { LayerRecordStore } from '../layer-records.js';
import type { ScanCache } from '../scan-cache.js';

export interface FactsKey {
  sha256: string;
  analyser: string;
  analyserVersion: number;
}

export interface AnalysisFailure {
  /** An `ErrorCode` of `infra/errors.ts`. */
  code: string;
  message: string;
}

/** One export of one object and the syscalls it reaches (`KnowledgeBase.exportsNamed`). */
export interface ExportSyscalls {
  sha256: string;
  soname?: string;
  /** As stored: `name`, `name@VERSION` or `name@@VERSION`. */
  symbol: string;
  /** Syscall names reachable inside the object, sorted. */
  syscalls: string[];
  /** An indirect call is reachable: the full answer depends on what else is loaded. */
  indirect: boolean;
  analyser: string;
  analyserVersion: number;
}

/** One platform's scan of a registry tag. */
export interface TagScan {
  /** `os/architecture[/variant]`. */
  readonly platform: string;
  readonly manifestDigest: string;
  /** Syscalls the profile allows, sorted. */
  readonly syscalls: readonly string[];
}

/** A registry tag as last checked by a crawl or rescan (`registry_tags`). */
export interface TagRecord {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  /** What the tag resolved to: an image manifest or an index. */
  readonly digest: string;
  /** The analysis state its scans were made in (`coordinator/crawl/state.ts`). */
  readonly state: string;
  readonly scans: readonly TagScan[];
  /** Why the last attempt failed (then `scans` is empty). */
  readonly error?: string;
  /** ISO-8601 times, set by the store. */
  readonly checkedAt?: string;
  readonly changedAt?: string;
}

/** One change of a tag (`tag_history`). */
export interface TagChange {
  /** Absent when the tag was first seen. */
  readonly fromDigest?: string;
  readonly toDigest: string;
  /** Syscalls allowed now and not before, and the reverse (all platforms together), sorted. */
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** ISO-8601, set by the store. */
  readonly at?: string;
}

/** One image manifest's profile in one analysis state, for the reverse index. */
export interface ImageProfile {
  readonly manifestDigest: string;
  readonly state: string;
  readonly platform: string;
  /** Docker's default profile was added because the analysis was unsure, for `reasons`. */
  readonly fallback: boolean;
  readonly reasons: readonly { readonly kind: string; readonly detail: string; readonly path?: string }[];
  /** Each allowed syscall and one witness path (entrypoint first). */
  readonly syscalls: ReadonlyMap<string, readonly string[]>;
}

/** A page of a query's answer; `next` (absent on the last page) is the cursor of the page after. */
export interface Page<T> {
  readonly items: T[];
  readonly next?: string;
}

export interface PageRequest {
  readonly limit: number;
  /** A `next` cursor of an earlier page. */
  readonly after?: string;
}

/** A tag whose current profile allows a syscall, and the witness of why. */
export interface TagWithSyscall {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  readonly manifestDigest: string;
  readonly platform: string;
  readonly witness: string;
}

/** A tag's current profile, summarised. */
export interface TagProfileSummary {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  readonly manifestDigest: string;
  readonly platform: string;
  readonly syscalls: number;
  readonly fallback: boolean;
  readonly reasons: ImageProfile['reasons'];
}

/** An analysed object (a library by soname or sha256), newest analyser version first. */
export interface KnownObject {
  readonly sha256: string;
  readonly analyser: string;
  readonly analyserVersion: number;
  readonly soname?: string;
  readonly arch: string;
  readonly needed: readonly string[];
  readonly exports: number;
}

/** A failed analysis (`analyses` with status failed). */
export interface FailedAnalysis {
  readonly sha256: string;
  readonly analyser: string;
  readonly analyserVersion: number;
  readonly code: string;
  readonly message: string;
}

export interface FleetStats {
  readonly tags: number;
  readonly profiles: number;
  /** Syscalls by the number of current profiles allowing them, most common first (all of them). */
  readonly syscalls: readonly { readonly name: string; readonly profiles: number }[];
  readonly largest: readonly TagProfileSummary[];
  readonly fallbacks: readonly TagProfileSummary[];
  readonly failedAnalyses: readonly FailedAnalysis[];
  readonly failedAnalysesTotal: number;
}

export interface KnowledgeBase extends LayerRecordStore {
  /** One query for all keys; returns facts for those stored with status ok, by sha256. */
  getFacts(keys: readonly FactsKey[]): Promise<Map<string, ObjectFacts>>;
  /** Keys with no row at all (neither ok nor failed): what still needs analysis. One query. */
  missing(keys: readonly FactsKey[]): Promise<FactsKey[]>;
  /** One query; recorded failures by sha256. */
  getFailures(keys: readonly FactsKey[]): Promise<Map<string, AnalysisFailure>>;
  /** Stores facts + exports + an ok analyses row in one transaction; idempotent. */
  putFacts(facts: ObjectFacts, durationMs: number): Promise<void>;
  /** Records a final failure; idempotent, and never overrides stored facts. */
  recordFailure(key: FactsKey, failure: AnalysisFailure, durationMs: number): Promise<void>;
  /**
   * Exports named `symbol` in every object, whatever their symbol version (`getaddrinfo` finds
   * `getaddrinfo@@GLIBC_2.2.5`; a versioned argument matches only that version). For each object
   * and analyser, only the newest analyser version's row. Sorted by sha256, symbol, analyser.
   */
  exportsNamed(symbol: string): Promise<ExportSyscalls[]>;
  /** The tag as last checked, if ever. */
  getTag(registry: string, repository: string, tag: string): Promise<TagRecord | undefined>;
  /** Registries with known tags, sorted. */
  registries(): Promise<string[]>;
  /** Every tag known of `registry` (of one repository if given), sorted by repository and tag. */
  tagsOf(registry: string, repository?: string): Promise<TagRecord[]>;
  /**
   * Stores the tag as checked now (`changedAt` moves only when its digest or state does) and, with
   * `change`, appends it to the tag's history, in one transaction. The tag then points at the
   * stored profiles of its scans in its state (`putProfile` first).
   */
  putTag(record: TagRecord, change?: TagChange): Promise<void>;
  /** The tag's changes, oldest first. */
  tagHistory(registry: string, repository: string, tag: string): Promise<TagChange[]>;
  /** Adds a profile to the reverse index; idempotent per (manifest digest, state). */
  putProfile(profile: ImageProfile): Promise<void>;
  /** The syscalls of a stored profile with their witnesses (the newest state when `state` is absent). */
  profileSyscalls(manifestDigest: string, state?: string): Promise<Map<string, string> | undefined>;
  /** Tags whose current profile allows `syscall`, ordered by registry, repository, tag, digest. */
  tagsAllowing(syscall: string, page: PageRequest): Promise<Page<TagWithSyscall>>;
  /** Objects whose soname or sha256 is `name` (newest analyser version of each first). */
  objectsNamed(name: string): Promise<KnownObject[]>;
  /** Exports of one object's facts and the syscalls each reaches, by symbol. */
  exportsOf(key: FactsKey): Promise<ExportSyscalls[]>;
  /** The fleet at a glance: `top` entries of each list. */
  fleetStats(top: number): Promise<FleetStats>;
  /** Finished scans, shared by every coordinator of a cluster (the embedded mode keeps them in files). */
  readonly scans: ScanCache;
  /**
   * Runs `work` while no other holder of `name` runs: single-flight per image, so two coordinators
   * never plan the same image at once (the second waits, then finds the first one's stored scan).
   * PostgreSQL: a session advisory lock, released when `work` ends or its process dies. SQLite:
   * within this process only (embedded processes are independent; their writes are idempotent).
   */
  exclusive<T>(name: string, work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Files per INSERT into layer_files (one JSON parameter of about 1 MB). */
export const LAYER_FILES_BATCH = 10_000;

/**
 * A migrations folder (`migrations` for PostgreSQL, `migrations-sqlite`): beside this module's
 * parent when run from source (tsx), or the repository's `store/` when run from `dist/store/kb/`
 * (tsc does not copy SQL files).
 */
export function migrationsFolder(name: 'migrations' | 'migrations-sqlite'): string {
  const candidates = [`../${name}`, `../../../store/${name}`].map((relative) => fileURLToPath(new URL(relative, import.meta.url)));
  const found = candidates.find((dir) => existsSync(path.join(dir, 'meta', '_journal.json')));
  if (!found) throw new NotFoundError(`knowledge base migrations not found in ${candidates.join(' or ')}`);
  return found;
}

/** PostgreSQL SQLSTATE classes, SQLite result codes and socket errors after which the same operation may succeed later. */
const TRANSIENT_SQLSTATE = /^(08|53|57P0|40001$|40P01$|SQLITE_BUSY|SQLITE_LOCKED)/;
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Errors out of the database: transient ones become `UnavailableError` (retried), others a plain
 * `Error` that names the operation. Either way the message and cause are the driver's, never
 * drizzle's `DrizzleQueryError`, whose message carries every parameter (a megabyte for a batch).
 */
function dbError(err: unknown, operation: string): Error {
  if (err instanceof DockergateError) return err;
  const root = err instanceof DrizzleQueryError && err.cause ? err.cause : err;
  const message = root instanceof Error ? root.message : String(root);
  const code = (root as { code?: unknown } | null)?.code;
  const text = `knowledge base ${operation}: ${message}`;
  if (typeof code === 'string' && (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_NODE_CODES.has(code))) {
    return new UnavailableError(text, { cause: root });
  }
  return new Error(text, { cause: root });
}

/** Runs one store operation (synchronous or not), timed as a `db` round trip, and converts its errors with `dbError`. */
export async function guarded<T>(operation: string, run: () => T | Promise<T>): Promise<T> {
  try {
    return await roundTrip('db', run);
  } catch (err) {
    throw dbError(err, operation);
  }
}

function keyString(key: FactsKey): string {
  return `${key.sha256}\0${key.analyser}\0${key.analyserVersion}`;
}

export function uniqueKeys(keys: readonly FactsKey[]): FactsKey[] {
  const seen = new Map<string, FactsKey>();
  for (const key of keys) {
    const id = keyString(key);
    if (!seen.has(id)) seen.set(id, { sha256: key.sha256, analyser: key.analyser, analyserVersion: key.analyserVersion });
  }
  return [...seen.values()];
}

/** `keys` without those of `known` rows (as the databases return them: snake case, maybe string versions). */
export function keysNotIn(keys: readonly FactsKey[], known: readonly { sha256: string; analyser: string; analyser_version: number | string }[]): FactsKey[] {
  const found = new Set(known.map((row) => keyString({ sha256: row.sha256, analyser: row.analyser, analyserVersion: Number(row.analyser_version) })));
  return keys.filter((key) => !found.has(keyString(key)));
}

export { symbolName } from '../facts.js';

export function durationOf(durationMs: number): number {
  return Number.isFinite(durationMs) ? Math.max(0, Math.round(durationMs)) : 0;
}

/** A `layer_files` row as both stores return it (snake-case columns). */
export interface FileRow {
  ordinal: number;
  path: string;
  type: FileType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  link_target: string | null;
  sha256: string | null;
  kind: FileKind | null;
  elf_machine: string | null;
  interpreter: string | null;
}

type MutableLayerFile = { -readonly [K in keyof LayerFile]: LayerFile[K] };

/** The `LayerFile` of a row: NULL stands for an absent optional field, whose key is left out as it was put. */
export function layerFileOf(row: FileRow): LayerFile {
  const file: MutableLayerFile = { path: row.path, type: row.type, mode: row.mode, uid: row.uid, gid: row.gid, size: row.size };
  if (row.link_target !== null) file.linkTarget = row.link_target;
  if (row.sha256 !== null) file.sha256 = row.sha256;
  if (row.kind !== null) file.kind = row.kind;
  if (row.elf_machine !== null) file.elfMachine = row.elf_machine;
  if (row.interpreter !== null) file.interpreter = row.interpreter;
  return file;
}

/** The signed 64-bit advisory-lock key of a name: the first 8 bytes of its SHA-256. */
export function lockKeyOf(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}

/**
 * Single-flight within one process: `work` for a name starts once the previous holder's has
 * settled. (The SQLite store's `exclusive`; the PostgreSQL store's runs across processes.)
 */
export class LocalLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(work);
    const tail = mine.catch(() => undefined);
    this.tails.set(name, tail);
    try {
      return await mine;
    } finally {
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}

/** A `layers` row as both schemas type it (arrays: `text[]` in PostgreSQL, JSON text in SQLite). */
interface LayerRow {
  digest: string;
  diffId: string;
  mediaType: string;
  compressedBytes: number;
  uncompressedBytes: number;
  extractorVersion: number;
  whiteouts: string[];
  opaqueDirs: string[];
}

/** The `LayerRecord` of a `layers` row and its files. */
export function layerRecordOf(layer: LayerRow, files: LayerFile[]): LayerRecord {
  return {
    digest: layer.digest as Digest,
    diffId: layer.diffId as Digest,
    mediaType: layer.mediaType,
    compressedBytes: layer.compressedBytes,
    uncompressedBytes: layer.uncompressedBytes,
    extractorVersion: layer.extractorVersion,
    files,
    whiteouts: layer.whiteouts,
    opaqueDirs: layer.opaqueDirs,
  };
}

/** Orders `exportsNamed` results the same way in both stores (code points, not a collation). */
export function byExportOrder(a: ExportSyscalls, b: ExportSyscalls): number {
  const keyA = [a.sha256, a.symbol, a.analyser];
  const keyB = [b.sha256, b.symbol, b.analyser];
  for (let i = 0; i < keyA.length; i++) {
    if (keyA[i]! !== keyB[i]!) return keyA[i]! < keyB[i]! ? -1 : 1;
  }
  return 0;
}

/** A `registry_tags` row as both stores return it through drizzle (scans: jsonb / JSON text, parsed). */
export interface TagRow {
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  state: string;
  scans: unknown;
  error: string | null;
  checkedAt: string | Date;
  changedAt: string | Date;
}

const isoOf = (time: string | Date): string => (time instanceof Date ? time.toISOString() : new Date(time).toISOString());

export function tagRecordOf(row: TagRow): TagRecord {
  return {
    registry: row.registry,
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    state: row.state,
    scans: row.scans as TagScan[],
    ...(row.error !== null ? { error: row.error } : {}),
    checkedAt: isoOf(row.checkedAt),
    changedAt: isoOf(row.changedAt),
  };
}

/** A `tag_history` row as both stores return it. */
export interface TagChangeRow {
  fromDigest: string | null;
  toDigest: string;
  added: string[];
  removed: string[];
  at: string | Date;
}

export function tagChangeOf(row: TagChangeRow): TagChange {
  return { ...(row.fromDigest !== null ? { fromDigest: row.fromDigest } : {}), toDigest: row.toDigest, added: row.added, removed: row.removed, at: isoOf(row.at) };
}

/** Orders tags the same way in both stores (code points, not a collation). */
export function byTagOrder(a: TagRecord, b: TagRecord): number {
  if (a.repository !== b.repository) return a.repository < b.repository ? -1 : 1;
  return a.tag === b.tag ? 0 : a.tag < b.tag ? -1 : 1;
}

/** Cursors are opaque to callers: the last item's sort key, base64url JSON. */
export function cursorOf(key: readonly string[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function keyOfCursor(cursor: string | undefined, parts: number): string[] | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  if (!Array.isArray(key) || key.length !== parts || !key.every((part) => typeof part === 'string')) throw new InvalidInputError('invalid page cursor');
  return key as string[];
}

/** The witness of a profile row: the path from the entrypoint, ` → ` joined. */
export const witnessText = (witness: readonly string[]): string => witness.join(' → ');

/** A page of at most `limit` items out of `limit + 1` fetched (one more says whether a next page exists). */
export function pageOf<T>(rows: T[], limit: number, keyOf: (item: T) => string[]): Page<T> {
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  return { items, next: cursorOf(keyOf(items[items.length - 1]!)) };
}

export function tagWithSyscallOf(row: { registry: string; repository: string; tag: string; manifest_digest: string; platform: string; witness: string }): TagWithSyscall {
  return { registry: row.registry, repository: row.repository, tag: row.tag, manifestDigest: row.manifest_digest, platform: row.platform, witness: row.witness };
}

/** An `objects` row with its export count, as both stores return it (`needed`: an array or JSON text). */
export interface ObjectRow {
  sha256: string;
  analyser: string;
  analyser_version: number | string;
  soname: string | null;
  arch: string;
  needed: string[] | string;
  exports: number | string;
}

export function knownObjectOf(row: ObjectRow): KnownObject {
  return {
    sha256: row.sha256,
    analyser: row.analyser,
    analyserVersion: Number(row.analyser_version),
    ...(row.soname === null ? {} : { soname: row.soname }),
    arch: row.arch,
    needed: typeof row.needed === 'string' ? (JSON.parse(row.needed) as string[]) : row.needed,
    exports: Number(row.exports),
  };
}

/** By sha256, analyser, then newest analyser version first. */
export function byObjectOrder(a: KnownObject, b: KnownObject): number {
  if (a.sha256 !== b.sha256) return a.sha256 < b.sha256 ? -1 : 1;
  if (a.analyser !== b.analyser) return a.analyser < b.analyser ? -1 : 1;
  return b.analyserVersion - a.analyserVersion;
}

/** A tag-profile row of the fleet queries (`fallback`: boolean or 0/1; `reasons`: parsed or JSON text). */
export interface SummaryRow {
  registry: string;
  repository: string;
  tag: string;
  manifest_digest: string;
  platform: string;
  syscall_count: number | string;
  fallback: boolean | number;
  reasons: unknown;
}

export function summaryOf(row: SummaryRow): TagProfileSummary {
  return {
    registry: row.registry,
    repository: row.repository,
    tag: row.tag,
    manifestDigest: row.manifest_digest,
    platform: row.platform,
    syscalls: Number(row.syscall_count),
    fallback: row.fallback === true || row.fallback === 1,
    reasons: (typeof row.reasons === 'string' ? JSON.parse(row.reasons) : row.reasons) as ImageProfile['reasons'],
  };
}

export function failedAnalysisOf(row: { sha256: string; analyser: string; analyser_version: number | string; error_code: string; error_message: string | null }): FailedAnalysis {
  return { sha256: row.sha256, analyser: row.analyser, analyserVersion: Number(row.analyser_version), code: row.error_code, message: row.error_message ?? '' };
}
