/**
 * The embedded knowledge base: one SQLite file (e.g. `<cacheDir>/kb.sqlite`) through
 * `better-sqlite3` and drizzle (`schema-sqlite.ts`, migrations in `store/migrations-sqlite/`).
 * Opening costs a few milliseconds and a few MiB, so every command can afford it. The shared
 * contract and its invariants are in `index.ts`; the queries are those of `postgres.ts` in
 * SQLite's dialect (`json_each` for arrays, JSON text for `text[]` and `jsonb`).
 *
 * Several processes may use one file: WAL journal (readers never block the writer), a busy
 * timeout for writers, and write transactions that take the write lock when they begin
 * (`immediate`), so a transaction never fails half-way on a lock upgrade. better-sqlite3 is
 * synchronous: each call holds the thread for the length of one statement or transaction.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { and, eq, sql, type SQL } from 'drizzle-orm';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import type { Digest, LayerRecord } from '../../extractor/types.js';
import { UnavailableError } from '../../infra/errors.js';
import type { ObjectFacts } from '../facts.js';
import { assertSha256Hex } from '../cas.js';
import type { ScanCache } from '../scan-cache.js';
import {
  byExportOrder,
  durationOf,
  guarded,
  keysNotIn,
  LAYER_FILES_BATCH,
  layerFileOf,
  layerRecordOf,
  LocalLocks,
  migrationsFolder,
  symbolName,
  uniqueKeys,
  type AnalysisFailure,
  type ExportSyscalls,
  type FactsKey,
  type FileRow,
  type KnowledgeBase,
  byObjectOrder,
  type FleetStats,
  failedAnalysisOf,
  type ImageProfile,
  keyOfCursor,
  type KnownObject,
  knownObjectOf,
  type ObjectRow,
  type Page,
  pageOf,
  type PageRequest,
  summaryOf,
  type SummaryRow,
  tagWithSyscallOf,
  type TagWithSyscall,
  witnessText,
  byTagOrder,
  type TagChange,
  tagChangeOf,
  type TagRecord,
  tagRecordOf,
} from './index.js';
import * as schema from './schema-sqlite.js';
import { analyses, imageProfiles, layers, objects, registryTags, scanResults, tagHistory } from './schema-sqlite.js';

type Db = BetterSQLite3Database<typeof schema>;

/** `exclusive` holders of this process, shared by every open store (one per process is usual). */
const PROCESS_LOCKS = new LocalLocks();

/** How long a statement waits for another process's write transaction before it fails (SQLITE_BUSY). */
const BUSY_TIMEOUT_MS = 15_000;

/** The rows of `keys` as a table `k(sha256, analyser, analyser_version)`: one JSON parameter. */
function keysTable(keys: readonly FactsKey[]): SQL {
  const json = JSON.stringify(keys.map((k) => [k.sha256, k.analyser, k.analyserVersion]));
  return sql`(select json_extract(value, '$[0]') as sha256, json_extract(value, '$[1]') as analyser,
                     json_extract(value, '$[2]') as analyser_version
              from json_each(${json})) as k`;
}

/** A JSON array column (`text[]` in PostgreSQL) as read by a raw query. */
function stringArray(value: string): string[] {
  return JSON.parse(value) as string[];
}

class SqliteKnowledgeBase implements KnowledgeBase {
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly release: () => void,
  ) {}

  async getFacts(keys: readonly FactsKey[]): Promise<Map<string, ObjectFacts>> {
    const found = new Map<string, ObjectFacts>();
    const unique = uniqueKeys(keys);
    if (unique.length === 0) return found;
    const rows = await guarded('getFacts', () =>
      this.db.all<{ sha256: string; facts: string }>(
        sql`select o.sha256, o.facts from objects o
            join ${keysTable(unique)} on k.sha256 = o.sha256 and k.analyser = o.analyser and k.analyser_version = o.analyser_version`,
      ),
    );
    for (const row of rows) found.set(row.sha256, JSON.parse(row.facts) as ObjectFacts);
    return found;
  }

  async missing(keys: readonly FactsKey[]): Promise<FactsKey[]> {
    const unique = uniqueKeys(keys);
    if (unique.length === 0) return [];
    const rows = await guarded('missing', () =>
      this.db.all<{ sha256: string; analyser: string; analyser_version: number }>(
        sql`select a.sha256, a.analyser, a.analyser_version from analyses a
            join ${keysTable(unique)} on k.sha256 = a.sha256 and k.analyser = a.analyser and k.analyser_version = a.analyser_version`,
      ),
    );
    return keysNotIn(unique, rows);
  }

  async getFailures(keys: readonly FactsKey[]): Promise<Map<string, AnalysisFailure>> {
    const failures = new Map<string, AnalysisFailure>();
    const unique = uniqueKeys(keys);
    if (unique.length === 0) return failures;
    const rows = await guarded('getFailures', () =>
      this.db.all<{ sha256: string; error_code: string; error_message: string | null }>(
        sql`select a.sha256, a.error_code, a.error_message from analyses a
            join ${keysTable(unique)} on k.sha256 = a.sha256 and k.analyser = a.analyser and k.analyser_version = a.analyser_version
            where a.status = 'failed'`,
      ),
    );
    for (const row of rows) failures.set(row.sha256, { code: row.error_code, message: row.error_message ?? '' });
    return failures;
  }

  async putFacts(facts: ObjectFacts, durationMs: number): Promise<void> {
    assertSha256Hex(facts.sha256);
    const key = { sha256: facts.sha256, analyser: facts.analyser, analyserVersion: facts.analyserVersion };
    const ofKey = sql`o.sha256 = ${key.sha256} and o.analyser = ${key.analyser} and o.analyser_version = ${key.analyserVersion}`;
    await guarded('putFacts', () =>
      this.db.transaction(
        (tx) => {
          // Facts win over a failure recorded earlier (e.g. limits were raised); an ok row stays as is.
          tx.insert(analyses)
            .values({ ...key, status: 'ok', durationMs: durationOf(durationMs) })
            .onConflictDoUpdate({
              target: [analyses.sha256, analyses.analyser, analyses.analyserVersion],
              set: { status: 'ok', errorCode: null, errorMessage: null, durationMs: durationOf(durationMs), createdAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))` },
              setWhere: sql`${analyses.status} = 'failed'`,
            })
            .run();
          const inserted = tx
            .insert(objects)
            .values({
              ...key,
              arch: facts.arch,
              elfType: facts.elfType,
              interpreter: facts.interpreter ?? null,
              soname: facts.soname ?? null,
              needed: [...facts.needed],
              rpath: [...facts.rpath],
              runpath: [...facts.runpath],
              isStatic: facts.flags.static,
              isPie: facts.flags.pie,
              isGo: facts.flags.go,
              isStripped: facts.flags.stripped,
              facts,
            })
            .onConflictDoNothing()
            .returning({ sha256: objects.sha256 })
            .all();
          // Already stored (by another process, or an earlier call): its exports came with it.
          if (inserted.length === 0) return;
          // As in postgres.ts: rows derived from the stored facts. `json_each` keys are array
          // indexes from 0; `where true` keeps SQLite from reading `on conflict` as a join's `on`.
          tx.run(sql`
            insert into object_reaches (sha256, analyser, analyser_version, reach, syscalls, imports, unresolved_count, indirect)
            select o.sha256, o.analyser, o.analyser_version, r.key,
                   r.value -> 'syscalls', r.value -> 'imports', r.value ->> 'unresolvedCount', r.value ->> 'indirect'
            from objects o, json_each(o.facts, '$.reaches') r
            where ${ofKey}
            on conflict do nothing`);
          tx.run(sql`
            insert into object_exports (sha256, analyser, analyser_version, symbol, name, address, reach)
            select o.sha256, o.analyser, o.analyser_version, e.value ->> 'symbol',
                   substr(e.value ->> 'symbol', 1, instr((e.value ->> 'symbol') || '@', '@') - 1),
                   e.value ->> 'address', e.value ->> 'reach'
            from objects o, json_each(o.facts, '$.exports') e
            where ${ofKey}
            on conflict do nothing`);
        },
        { behavior: 'immediate' },
      ),
    );
  }

  async recordFailure(key: FactsKey, failure: AnalysisFailure, durationMs: number): Promise<void> {
    assertSha256Hex(key.sha256);
    await guarded('recordFailure', () =>
      this.db
        .insert(analyses)
        .values({
          sha256: key.sha256,
          analyser: key.analyser,
          analyserVersion: key.analyserVersion,
          status: 'failed',
          errorCode: failure.code,
          errorMessage: failure.message,
          durationMs: durationOf(durationMs),
        })
        .onConflictDoNothing()
        .run(),
    );
  }

  async exportsNamed(symbol: string): Promise<ExportSyscalls[]> {
    const exact = symbol.includes('@') ? sql`and symbol = ${symbol}` : sql``;
    const rows = await guarded('exportsNamed', () =>
      this.db.all<{ sha256: string; soname: string | null; symbol: string; syscalls: string; indirect: number; analyser: string; analyser_version: number }>(
        // PostgreSQL's `distinct on` is a window here: the newest analyser version per key.
        sql`select e.sha256, o.soname, e.symbol, r.syscalls, r.indirect, e.analyser, e.analyser_version
            from (select *, row_number() over (partition by sha256, symbol, analyser order by analyser_version desc) as newest
                  from object_exports where name = ${symbolName(symbol)} ${exact}) e
            join objects o on o.sha256 = e.sha256 and o.analyser = e.analyser and o.analyser_version = e.analyser_version
            join object_reaches r on r.sha256 = e.sha256 and r.analyser = e.analyser and r.analyser_version = e.analyser_version
                                  and r.reach = e.reach
            where e.newest = 1`,
      ),
    );
    return rows
      .map((row) => ({
        sha256: row.sha256,
        ...(row.soname === null ? {} : { soname: row.soname }),
        symbol: row.symbol,
        syscalls: stringArray(row.syscalls),
        indirect: row.indirect !== 0,
        analyser: row.analyser,
        analyserVersion: row.analyser_version,
      }))
      .sort(byExportOrder);
  }

  async get(digest: Digest, extractorVersion: number): Promise<LayerRecord | undefined> {
    return guarded('get layer record', () =>
      // One read transaction: the layer row and its files come from the same snapshot.
      this.db.transaction((tx) => {
        const [layer] = tx.select().from(layers).where(and(eq(layers.digest, digest), eq(layers.extractorVersion, extractorVersion))).all();
        if (!layer) return undefined;
        const files = tx
          .all<FileRow>(
            sql`select ordinal, path, type, mode, uid, gid, size, link_target, sha256, kind, elf_machine, interpreter
                from layer_files where digest = ${digest} and extractor_version = ${extractorVersion}
                order by ordinal`,
          )
          .map(layerFileOf);
        return layerRecordOf(layer, files);
      }),
    );
  }

  async put(record: LayerRecord): Promise<void> {
    const key = { digest: record.digest, extractorVersion: record.extractorVersion };
    await guarded('put layer record', () =>
      this.db.transaction(
        (tx) => {
          const inserted = tx
            .insert(layers)
            .values({
              ...key,
              diffId: record.diffId,
              mediaType: record.mediaType,
              compressedBytes: record.compressedBytes,
              uncompressedBytes: record.uncompressedBytes,
              whiteouts: [...record.whiteouts],
              opaqueDirs: [...record.opaqueDirs],
            })
            .onConflictDoNothing()
            .returning({ digest: layers.digest })
            .all();
          if (inserted.length === 0) return;
          // As in postgres.ts: batches of files as one JSON parameter each, expanded by the database.
          for (let start = 0; start < record.files.length; start += LAYER_FILES_BATCH) {
            const batch = JSON.stringify(record.files.slice(start, start + LAYER_FILES_BATCH));
            tx.run(sql`
              insert into layer_files (digest, extractor_version, ordinal, path, type, mode, uid, gid, size,
                                       link_target, sha256, kind, elf_machine, interpreter)
              select ${record.digest}, ${record.extractorVersion}, ${start} + f.key,
                     json_extract(f.value, '$.path'), json_extract(f.value, '$.type'), json_extract(f.value, '$.mode'),
                     json_extract(f.value, '$.uid'), json_extract(f.value, '$.gid'), json_extract(f.value, '$.size'),
                     json_extract(f.value, '$.linkTarget'), json_extract(f.value, '$.sha256'), json_extract(f.value, '$.kind'),
                     json_extract(f.value, '$.elfMachine'), json_extract(f.value, '$.interpreter')
              from json_each(${batch}) f
              where true`);
          }
        },
        { behavior: 'immediate' },
      ),
    );
  }

  async getTag(registry: string, repository: string, tag: string): Promise<TagRecord | undefined> {
    const rows = await guarded('getTag', () =>
      this.db.select().from(registryTags).where(and(eq(registryTags.registry, registry), eq(registryTags.repository, repository), eq(registryTags.tag, tag))).all(),
    );
    return rows[0] ? tagRecordOf(rows[0]) : undefined;
  }

  async registries(): Promise<string[]> {
    const rows = await guarded('registries', () => this.db.selectDistinct({ registry: registryTags.registry }).from(registryTags).all());
    return rows.map((row) => row.registry).sort((a, b) => (a === b ? 0 : a < b ? -1 : 1));
  }

  async tagsOf(registry: string, repository?: string): Promise<TagRecord[]> {
    const where = repository === undefined ? eq(registryTags.registry, registry) : and(eq(registryTags.registry, registry), eq(registryTags.repository, repository));
    const rows = await guarded('tagsOf', () => this.db.select().from(registryTags).where(where).all());
    return rows.map(tagRecordOf).sort(byTagOrder);
  }

  async putTag(record: TagRecord, change?: TagChange): Promise<void> {
    const values = { registry: record.registry, repository: record.repository, tag: record.tag, digest: record.digest, state: record.state, scans: record.scans, error: record.error ?? null };
    await guarded('putTag', () =>
      this.db.transaction(
        (tx) => {
        tx
          .insert(registryTags)
          .values(values)
          .onConflictDoUpdate({
            target: [registryTags.registry, registryTags.repository, registryTags.tag],
            set: {
              digest: values.digest,
              state: values.state,
              scans: values.scans,
              error: values.error,
              checkedAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`,
              changedAt: sql`case when ${registryTags.digest} = ${values.digest} and ${registryTags.state} = ${values.state} then ${registryTags.changedAt} else (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) end`,
            },
          }).run();
        if (change) {
          tx
            .insert(tagHistory)
            .values({ registry: record.registry, repository: record.repository, tag: record.tag, fromDigest: change.fromDigest ?? null, toDigest: change.toDigest, added: [...change.added], removed: [...change.removed] }).run();
        }
        tx.run(sql`delete from tag_profiles where registry = ${record.registry} and repository = ${record.repository} and tag = ${record.tag}`);
        tx.run(sql`insert into tag_profiles (registry, repository, tag, profile_id)
                   select ${record.registry}, ${record.repository}, ${record.tag}, p.id from image_profiles p
                   where p.state = ${record.state} and p.manifest_digest in (select value from json_each(${JSON.stringify(record.scans.map((scan) => scan.manifestDigest))}))
                   on conflict do nothing`);
        },
        { behavior: 'immediate' },
      ),
    );
  }

  async putProfile(profile: ImageProfile): Promise<void> {
    const names = [...profile.syscalls.keys()];
    const pairs = JSON.stringify(names.map((name) => [name, witnessText(profile.syscalls.get(name)!)]));
    await guarded('putProfile', () =>
      this.db.transaction(
        (tx) => {
          const inserted = tx
            .insert(imageProfiles)
            .values({ manifestDigest: profile.manifestDigest, state: profile.state, platform: profile.platform, syscallCount: names.length, fallback: profile.fallback, reasons: profile.reasons })
            .onConflictDoNothing()
            .returning({ id: imageProfiles.id })
            .all();
          const id = inserted[0]?.id;
          // Stored before (profiles of one manifest and state are equal): nothing to add.
          if (id === undefined) return;
          // `where true`: SQLite's parser needs it between INSERT ... SELECT and ON CONFLICT.
          tx.run(sql`insert into syscall_names (name) select json_extract(value, '$[0]') from json_each(${pairs}) where true on conflict do nothing`);
          tx.run(sql`insert into profile_syscalls (syscall_id, profile_id, witness)
                     select n.id, ${id}, json_extract(w.value, '$[1]') from json_each(${pairs}) w
                     join syscall_names n on n.name = json_extract(w.value, '$[0]')`);
        },
        { behavior: 'immediate' },
      ),
    );
  }

  async profileSyscalls(manifestDigest: string, state?: string): Promise<Map<string, string> | undefined> {
    const inState = state === undefined ? sql`` : sql`and state = ${state}`;
    const rows = await guarded('profileSyscalls', () =>
      this.db.all<{ name: string; witness: string }>(
        sql`select n.name, s.witness from profile_syscalls s join syscall_names n on n.id = s.syscall_id
            where s.profile_id = (select id from image_profiles where manifest_digest = ${manifestDigest} ${inState} order by id desc limit 1)
            order by n.name`,
      ),
    );
    return rows.length === 0 ? undefined : new Map(rows.map((row) => [row.name, row.witness]));
  }

  async tagsAllowing(syscall: string, page: PageRequest): Promise<Page<TagWithSyscall>> {
    const after = keyOfCursor(page.after, 4);
    const from = after ? sql`and (t.registry, t.repository, t.tag, p.manifest_digest) > (${after[0]}, ${after[1]}, ${after[2]}, ${after[3]})` : sql``;
    const rows = await guarded('tagsAllowing', () =>
      this.db.all<{ registry: string; repository: string; tag: string; manifest_digest: string; platform: string; witness: string }>(
        sql`select t.registry, t.repository, t.tag, p.manifest_digest, p.platform, s.witness
            from profile_syscalls s
            join tag_profiles t on t.profile_id = s.profile_id
            join image_profiles p on p.id = s.profile_id
            where s.syscall_id = (select id from syscall_names where name = ${syscall}) ${from}
            order by t.registry, t.repository, t.tag, p.manifest_digest
            limit ${page.limit + 1}`,
      ),
    );
    return pageOf(rows.map(tagWithSyscallOf), page.limit, (item) => [item.registry, item.repository, item.tag, item.manifestDigest]);
  }

  async objectsNamed(name: string): Promise<KnownObject[]> {
    const rows = await guarded('objectsNamed', () =>
      this.db.all<ObjectRow>(
        sql`select o.sha256, o.analyser, o.analyser_version, o.soname, o.arch, o.needed,
                   (select count(*) from object_exports e
                    where e.sha256 = o.sha256 and e.analyser = o.analyser and e.analyser_version = o.analyser_version) as exports
            from objects o where o.soname = ${name} or o.sha256 = ${name}`,
      ),
    );
    return rows.map(knownObjectOf).sort(byObjectOrder);
  }

  async exportsOf(key: FactsKey): Promise<ExportSyscalls[]> {
    const rows = await guarded('exportsOf', () =>
      this.db.all<{ sha256: string; soname: string | null; symbol: string; syscalls: string; indirect: number; analyser: string; analyser_version: number }>(
        sql`select e.sha256, o.soname, e.symbol, r.syscalls, r.indirect, e.analyser, e.analyser_version
            from object_exports e
            join objects o on o.sha256 = e.sha256 and o.analyser = e.analyser and o.analyser_version = e.analyser_version
            join object_reaches r on r.sha256 = e.sha256 and r.analyser = e.analyser and r.analyser_version = e.analyser_version and r.reach = e.reach
            where e.sha256 = ${key.sha256} and e.analyser = ${key.analyser} and e.analyser_version = ${key.analyserVersion}`,
      ),
    );
    return rows
      .map((row) => ({ sha256: row.sha256, ...(row.soname === null ? {} : { soname: row.soname }), symbol: row.symbol, syscalls: stringArray(row.syscalls), indirect: row.indirect !== 0, analyser: row.analyser, analyserVersion: row.analyser_version }))
      .sort(byExportOrder);
  }

  async fleetStats(top: number): Promise<FleetStats> {
    return guarded('fleetStats', () =>
      // One read transaction: every list from the same snapshot.
      this.db.transaction((tx) => {
        const [counts] = tx.all<{ tags: number; profiles: number; failed: number }>(
          sql`select (select count(*) from registry_tags) as tags, (select count(distinct profile_id) from tag_profiles) as profiles,
                     (select count(*) from analyses where status = 'failed') as failed`,
        );
        const syscalls = tx.all<{ name: string; profiles: number }>(
          sql`select n.name, count(*) as profiles from profile_syscalls s join syscall_names n on n.id = s.syscall_id
              where s.profile_id in (select profile_id from tag_profiles)
              group by n.name order by count(*) desc, n.name`,
        );
        const summaries = (where: SQL) =>
          tx.all<SummaryRow>(
            sql`select t.registry, t.repository, t.tag, p.manifest_digest, p.platform, p.syscall_count, p.fallback, p.reasons
                from tag_profiles t join image_profiles p on p.id = t.profile_id ${where}
                order by p.syscall_count desc, t.registry, t.repository, t.tag, p.manifest_digest
                limit ${top}`,
          );
        const failed = tx.all<{ sha256: string; analyser: string; analyser_version: number; error_code: string; error_message: string | null }>(
          sql`select sha256, analyser, analyser_version, error_code, error_message from analyses where status = 'failed'
              order by sha256, analyser, analyser_version limit ${top}`,
        );
        return {
          tags: counts!.tags,
          profiles: counts!.profiles,
          syscalls,
          largest: summaries(sql``).map(summaryOf),
          fallbacks: summaries(sql`where p.fallback = 1`).map(summaryOf),
          failedAnalyses: failed.map(failedAnalysisOf),
          failedAnalysesTotal: counts!.failed,
        };
      }),
    );
  }

  async tagHistory(registry: string, repository: string, tag: string): Promise<TagChange[]> {
    const rows = await guarded('tagHistory', () =>
      this.db
        .select()
        .from(tagHistory)
        .where(and(eq(tagHistory.registry, registry), eq(tagHistory.repository, repository), eq(tagHistory.tag, tag)))
        .orderBy(tagHistory.id).all(),
    );
    return rows.map(tagChangeOf);
  }

  readonly scans: ScanCache = {
    get: async (key) => {
      const rows = await guarded('getScan', () => this.db.select({ result: scanResults.result }).from(scanResults).where(eq(scanResults.key, key)).all());
      return rows[0] ? (JSON.parse(rows[0].result) as unknown) : undefined;
    },
    put: async (key, value) => {
      await guarded('putScan', () => this.db.insert(scanResults).values({ key, result: JSON.stringify(value) }).onConflictDoNothing().run());
    },
  };

  exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    return PROCESS_LOCKS.run(name, work);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.release();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `work` while holding `<file>.migrate.lock`, which holds the owner's pid: drizzle's SQLite
 * migrator reads the applied migrations before it begins its transaction, so two processes that
 * open a new file together would both try to create the tables. A lock whose process is gone
 * (crash, kill -9) is taken over; a live owner is waited for (migrations take milliseconds).
 */
async function withMigrationLock<T>(file: string, work: () => T): Promise<T> {
  const lockPath = `${file}.migrate.lock`;
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      const handle = await fs.open(lockPath, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt(await fs.readFile(lockPath, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && owner > 0 && !processAlive(owner)) {
        await fs.rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new UnavailableError(`knowledge base ${file}: migrations held by process ${owner} (lock ${lockPath})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  try {
    return work();
  } finally {
    await fs.rm(lockPath, { force: true });
  }
}

/** Opens (and creates, on first use) the embedded knowledge base in `file`, migrated to the current schema. */
export async function openEmbeddedKnowledgeBase(file: string): Promise<KnowledgeBase> {
  const folder = migrationsFolder('migrations-sqlite');
  await fs.mkdir(path.dirname(file), { recursive: true });
  const client = await guarded('open', () => new Database(file, { timeout: BUSY_TIMEOUT_MS }));
  try {
    client.pragma('journal_mode = WAL');
    // WAL with synchronous=NORMAL: a commit is durable once the WAL is synced at checkpoint; a
    // power loss may lose the last transactions but never corrupts the file. Facts can be recomputed.
    client.pragma('synchronous = NORMAL');
    client.pragma('foreign_keys = ON');
    const db = drizzle({ client, schema });
    await withMigrationLock(file, () => guarded('migrate', () => migrate(db, { migrationsFolder: folder })));
    return new SqliteKnowledgeBase(db, () => client.close());
  } catch (err) {
    client.close();
    throw err;
  }
}
