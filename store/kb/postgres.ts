/**
 * The cluster knowledge base: PostgreSQL through `pg` and drizzle (`schema.ts`, migrations in
 * `store/migrations/`). The shared contract and its invariants are in `index.ts`.
 */
import { and, eq, sql, type SQL } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import pg from 'pg';
import type { Digest, LayerRecord } from '../../extractor/types.js';
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
  lockKeyOf,
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
import * as schema from './schema.js';
import { analyses, imageProfiles, layers, objects, registryTags, scanResults, tagHistory } from './schema.js';

/** `pg_advisory_lock` key that serialises migrations of one database ("dockgate" in ASCII). */
const MIGRATION_LOCK_KEY = '7237112439154766949'; // 0x646f636b67617465

type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** `(sha256, analyser, analyser_version)` rows of `keys`, as one `unnest` of three array parameters. */
function keysTable(keys: readonly FactsKey[]): SQL {
  return sql`unnest(${sql.param(keys.map((k) => k.sha256))}::text[], ${sql.param(keys.map((k) => k.analyser))}::text[], ${sql.param(keys.map((k) => k.analyserVersion))}::int[]) as k(sha256, analyser, analyser_version)`;
}

async function rowsOf<T>(db: Db, query: SQL): Promise<T[]> {
  // node-postgres answers `execute` with a QueryResult holding `rows`.
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

class PostgresKnowledgeBase implements KnowledgeBase {
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly pool: pg.Pool,
  ) {}

  async getFacts(keys: readonly FactsKey[]): Promise<Map<string, ObjectFacts>> {
    const found = new Map<string, ObjectFacts>();
    const unique = uniqueKeys(keys);
    if (unique.length === 0) return found;
    // An objects row exists only beside an ok analyses row (same transaction, see putFacts).
    const rows = await guarded('getFacts', () =>
      rowsOf<{ sha256: string; facts: ObjectFacts }>(
        this.db,
        sql`select o.sha256, o.facts from objects o
            where (o.sha256, o.analyser, o.analyser_version) in (select * from ${keysTable(unique)})`,
      ),
    );
    for (const row of rows) found.set(row.sha256, row.facts);
    return found;
  }

  async missing(keys: readonly FactsKey[]): Promise<FactsKey[]> {
    const unique = uniqueKeys(keys);
    if (unique.length === 0) return [];
    const rows = await guarded('missing', () =>
      rowsOf<{ sha256: string; analyser: string; analyser_version: number }>(
        this.db,
        sql`select a.sha256, a.analyser, a.analyser_version from analyses a
            where (a.sha256, a.analyser, a.analyser_version) in (select * from ${keysTable(unique)})`,
      ),
    );
    return keysNotIn(unique, rows);
  }

  async getFailures(keys: readonly FactsKey[]): Promise<Map<string, AnalysisFailure>> {
    const failures = new Map<string, AnalysisFailure>();
    const unique = uniqueKeys(keys);
    if (unique.length === 0) return failures;
    const rows = await guarded('getFailures', () =>
      rowsOf<{ sha256: string; error_code: string; error_message: string | null }>(
        this.db,
        sql`select a.sha256, a.error_code, a.error_message from analyses a
            where a.status = 'failed'
              and (a.sha256, a.analyser, a.analyser_version) in (select * from ${keysTable(unique)})`,
      ),
    );
    for (const row of rows) failures.set(row.sha256, { code: row.error_code, message: row.error_message ?? '' });
    return failures;
  }

  async putFacts(facts: ObjectFacts, durationMs: number): Promise<void> {
    assertSha256Hex(facts.sha256);
    const key = { sha256: facts.sha256, analyser: facts.analyser, analyserVersion: facts.analyserVersion };
    await guarded('putFacts', () =>
      this.db.transaction(async (tx) => {
        // Facts win over a failure recorded earlier (e.g. limits were raised); an ok row stays as is.
        await tx
          .insert(analyses)
          .values({ ...key, status: 'ok', durationMs: durationOf(durationMs) })
          .onConflictDoUpdate({
            target: [analyses.sha256, analyses.analyser, analyses.analyserVersion],
            set: { status: 'ok', errorCode: null, errorMessage: null, durationMs: durationOf(durationMs), createdAt: sql`now()` },
            setWhere: sql`${analyses.status} = 'failed'`,
          });
        const inserted = await tx
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
          .returning({ sha256: objects.sha256 });
        // Already stored (by another worker, or an earlier call): its exports came with it.
        if (inserted.length === 0) return;
        // One row per export, derived from the facts just stored so the two never disagree.
        // `name` is the symbol without its version (`split_part` as `symbolName` does).
        await tx.execute(sql`
          insert into object_reaches (sha256, analyser, analyser_version, reach, syscalls, imports, unresolved_count, indirect)
          select o.sha256, o.analyser, o.analyser_version, (r.i - 1)::int,
                 array(select v from jsonb_array_elements_text(r.value->'syscalls') with ordinality as x(v, i) order by i),
                 array(select v from jsonb_array_elements_text(r.value->'imports') with ordinality as x(v, i) order by i),
                 (r.value->>'unresolvedCount')::int, (r.value->>'indirect')::boolean
          from objects o cross join lateral jsonb_array_elements(o.facts->'reaches') with ordinality as r(value, i)
          where o.sha256 = ${key.sha256} and o.analyser = ${key.analyser} and o.analyser_version = ${key.analyserVersion}
          on conflict do nothing`);
        await tx.execute(sql`
          insert into object_exports (sha256, analyser, analyser_version, symbol, name, address, reach)
          select o.sha256, o.analyser, o.analyser_version, e->>'symbol', split_part(e->>'symbol', '@', 1),
                 (e->>'address')::bigint, (e->>'reach')::int
          from objects o cross join lateral jsonb_array_elements(o.facts->'exports') as e
          where o.sha256 = ${key.sha256} and o.analyser = ${key.analyser} and o.analyser_version = ${key.analyserVersion}
          on conflict do nothing`);
      }),
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
        .onConflictDoNothing(),
    );
  }

  async exportsNamed(symbol: string): Promise<ExportSyscalls[]> {
    const exact = symbol.includes('@') ? sql`and e.symbol = ${symbol}` : sql``;
    const rows = await guarded('exportsNamed', () =>
      rowsOf<{ sha256: string; soname: string | null; symbol: string; syscalls: string[]; indirect: boolean; analyser: string; analyser_version: number }>(
        this.db,
        sql`select distinct on (e.sha256, e.symbol, e.analyser)
                   e.sha256, o.soname, e.symbol, r.syscalls, r.indirect, e.analyser, e.analyser_version
            from object_exports e
            join objects o on o.sha256 = e.sha256 and o.analyser = e.analyser and o.analyser_version = e.analyser_version
            join object_reaches r on r.sha256 = e.sha256 and r.analyser = e.analyser and r.analyser_version = e.analyser_version
                                  and r.reach = e.reach
            where e.name = ${symbolName(symbol)} ${exact}
            order by e.sha256, e.symbol, e.analyser, e.analyser_version desc`,
      ),
    );
    return rows
      .map((row) => ({
        sha256: row.sha256,
        ...(row.soname === null ? {} : { soname: row.soname }),
        symbol: row.symbol,
        syscalls: row.syscalls,
        indirect: row.indirect,
        analyser: row.analyser,
        analyserVersion: Number(row.analyser_version),
      }))
      .sort(byExportOrder);
  }

  async get(digest: Digest, extractorVersion: number): Promise<LayerRecord | undefined> {
    return guarded('get layer record', async () => {
      const where = and(eq(layers.digest, digest), eq(layers.extractorVersion, extractorVersion));
      const [layer] = await this.db.select().from(layers).where(where);
      if (!layer) return undefined;
      // The layer row and its files commit together (put), so once the row is visible all are.
      // The files travel as one json array built by the server: parsing one value is much faster
      // than 100k rows of 11 columns (measured through PGlite: ~0.5 s against ~1.5 s).
      const [row] = await rowsOf<{ files: FileRow[] | string }>(
        this.db,
        sql`select coalesce(json_agg(f order by f.ordinal), '[]') as files
            from (select ordinal, path, type, mode, uid, gid, size, link_target, sha256, kind, elf_machine, interpreter
                  from layer_files
                  where digest = ${digest} and extractor_version = ${extractorVersion}) f`,
      );
      const fileRows = typeof row?.files === 'string' ? (JSON.parse(row.files) as FileRow[]) : (row?.files ?? []);
      const files = fileRows.map(layerFileOf);
      return layerRecordOf(layer, files);
    });
  }

  async put(record: LayerRecord): Promise<void> {
    const key = { digest: record.digest, extractorVersion: record.extractorVersion };
    await guarded('put layer record', () =>
      this.db.transaction(async (tx) => {
        const inserted = await tx
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
          .returning({ digest: layers.digest });
        // A concurrent put of the same layer waits on the primary key, then finds it stored.
        if (inserted.length === 0) return;
        // Multi-row inserts of LAYER_FILES_BATCH files, each batch one json parameter expanded by
        // the server: drizzle's builder spends ~60 ms of CPU per 1000 rows of 14 columns, which
        // alone made a 100k-file layer take 6 s; this way a batch costs one JSON.stringify.
        // (json, not jsonb: it is read once, and json_to_recordset skips building a jsonb.)
        for (let start = 0; start < record.files.length; start += LAYER_FILES_BATCH) {
          const batch = JSON.stringify(record.files.slice(start, start + LAYER_FILES_BATCH));
          await tx.execute(sql`
            insert into layer_files (digest, extractor_version, ordinal, path, type, mode, uid, gid, size,
                                     link_target, sha256, kind, elf_machine, interpreter)
            select ${record.digest}, ${record.extractorVersion}::int, ${start}::int + (f.n - 1)::int, f.path, f.type, f.mode, f.uid, f.gid, f.size,
                   f."linkTarget", f.sha256, f.kind, f."elfMachine", f.interpreter
            from rows from (json_to_recordset(${batch}::json) as (
                   path text, type text, mode int, uid bigint, gid bigint, size bigint,
                   "linkTarget" text, sha256 text, kind text, "elfMachine" text, interpreter text)
                 ) with ordinality as f(path, type, mode, uid, gid, size, "linkTarget", sha256, kind, "elfMachine", interpreter, n)`);
        }
      }),
    );
  }

  async getTag(registry: string, repository: string, tag: string): Promise<TagRecord | undefined> {
    const rows = await guarded('getTag', () =>
      this.db.select().from(registryTags).where(and(eq(registryTags.registry, registry), eq(registryTags.repository, repository), eq(registryTags.tag, tag))),
    );
    return rows[0] ? tagRecordOf(rows[0]) : undefined;
  }

  async registries(): Promise<string[]> {
    const rows = await guarded('registries', () => this.db.selectDistinct({ registry: registryTags.registry }).from(registryTags));
    return rows.map((row) => row.registry).sort((a, b) => (a === b ? 0 : a < b ? -1 : 1));
  }

  async tagsOf(registry: string, repository?: string): Promise<TagRecord[]> {
    const where = repository === undefined ? eq(registryTags.registry, registry) : and(eq(registryTags.registry, registry), eq(registryTags.repository, repository));
    const rows = await guarded('tagsOf', () => this.db.select().from(registryTags).where(where));
    return rows.map(tagRecordOf).sort(byTagOrder);
  }

  async putTag(record: TagRecord, change?: TagChange): Promise<void> {
    const values = { registry: record.registry, repository: record.repository, tag: record.tag, digest: record.digest, state: record.state, scans: record.scans, error: record.error ?? null };
    await guarded('putTag', () =>
      this.db.transaction(async (tx) => {
        await tx
          .insert(registryTags)
          .values(values)
          .onConflictDoUpdate({
            target: [registryTags.registry, registryTags.repository, registryTags.tag],
            set: {
              digest: values.digest,
              state: values.state,
              scans: values.scans,
              error: values.error,
              checkedAt: sql`now()`,
              changedAt: sql`case when ${registryTags.digest} = ${values.digest} and ${registryTags.state} = ${values.state} then ${registryTags.changedAt} else now() end`,
            },
          });
        if (change) {
          await tx
            .insert(tagHistory)
            .values({ registry: record.registry, repository: record.repository, tag: record.tag, fromDigest: change.fromDigest ?? null, toDigest: change.toDigest, added: [...change.added], removed: [...change.removed] });
        }
        await tx.execute(sql`delete from tag_profiles where registry = ${record.registry} and repository = ${record.repository} and tag = ${record.tag}`);
        await tx.execute(sql`insert into tag_profiles (registry, repository, tag, profile_id)
                             select ${record.registry}, ${record.repository}, ${record.tag}, p.id from image_profiles p
                             where p.state = ${record.state} and p.manifest_digest = any(${sql.param(record.scans.map((scan) => scan.manifestDigest))}::text[])
                             on conflict do nothing`);
      }),
    );
  }

  async putProfile(profile: ImageProfile): Promise<void> {
    const names = [...profile.syscalls.keys()];
    const witnesses = names.map((name) => witnessText(profile.syscalls.get(name)!));
    await guarded('putProfile', () =>
      this.db.transaction(async (tx) => {
        const inserted = await tx
          .insert(imageProfiles)
          .values({ manifestDigest: profile.manifestDigest, state: profile.state, platform: profile.platform, syscallCount: names.length, fallback: profile.fallback, reasons: profile.reasons })
          .onConflictDoNothing()
          .returning({ id: imageProfiles.id });
        const id = inserted[0]?.id;
        // Stored before (profiles of one manifest and state are equal): nothing to add.
        if (id === undefined) return;
        await tx.execute(sql`insert into syscall_names (name) select unnest(${sql.param(names)}::text[]) on conflict do nothing`);
        await tx.execute(sql`insert into profile_syscalls (syscall_id, profile_id, witness)
                             select n.id, ${id}::int, w.witness
                             from unnest(${sql.param(names)}::text[], ${sql.param(witnesses)}::text[]) as w(name, witness)
                             join syscall_names n on n.name = w.name`);
      }),
    );
  }

  async profileSyscalls(manifestDigest: string, state?: string): Promise<Map<string, string> | undefined> {
    const inState = state === undefined ? sql`` : sql`and state = ${state}`;
    const rows = await guarded('profileSyscalls', () =>
      rowsOf<{ name: string; witness: string }>(
        this.db,
        sql`select n.name, s.witness from profile_syscalls s join syscall_names n on n.id = s.syscall_id
            where s.profile_id = (select id from image_profiles where manifest_digest = ${manifestDigest} ${inState} order by id desc limit 1)
            order by n.name collate "C"`,
      ),
    );
    return rows.length === 0 ? undefined : new Map(rows.map((row) => [row.name, row.witness]));
  }

  async tagsAllowing(syscall: string, page: PageRequest): Promise<Page<TagWithSyscall>> {
    const after = keyOfCursor(page.after, 4);
    // Row comparison and order in code-point order ("C"), as SQLite's BINARY: both stores page alike.
    const from = after
      ? sql`and (t.registry collate "C", t.repository collate "C", t.tag collate "C", p.manifest_digest collate "C") > (${after[0]}, ${after[1]}, ${after[2]}, ${after[3]})`
      : sql``;
    const rows = await guarded('tagsAllowing', () =>
      rowsOf<{ registry: string; repository: string; tag: string; manifest_digest: string; platform: string; witness: string }>(
        this.db,
        sql`select t.registry, t.repository, t.tag, p.manifest_digest, p.platform, s.witness
            from profile_syscalls s
            join tag_profiles t on t.profile_id = s.profile_id
            join image_profiles p on p.id = s.profile_id
            where s.syscall_id = (select id from syscall_names where name = ${syscall}) ${from}
            order by t.registry collate "C", t.repository collate "C", t.tag collate "C", p.manifest_digest collate "C"
            limit ${page.limit + 1}`,
      ),
    );
    return pageOf(rows.map(tagWithSyscallOf), page.limit, (item) => [item.registry, item.repository, item.tag, item.manifestDigest]);
  }

  async objectsNamed(name: string): Promise<KnownObject[]> {
    const rows = await guarded('objectsNamed', () =>
      rowsOf<ObjectRow>(
        this.db,
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
      rowsOf<{ sha256: string; soname: string | null; symbol: string; syscalls: string[]; indirect: boolean; analyser: string; analyser_version: number }>(
        this.db,
        sql`select e.sha256, o.soname, e.symbol, r.syscalls, r.indirect, e.analyser, e.analyser_version
            from object_exports e
            join objects o on o.sha256 = e.sha256 and o.analyser = e.analyser and o.analyser_version = e.analyser_version
            join object_reaches r on r.sha256 = e.sha256 and r.analyser = e.analyser and r.analyser_version = e.analyser_version and r.reach = e.reach
            where e.sha256 = ${key.sha256} and e.analyser = ${key.analyser} and e.analyser_version = ${key.analyserVersion}`,
      ),
    );
    return rows
      .map((row) => ({ sha256: row.sha256, ...(row.soname === null ? {} : { soname: row.soname }), symbol: row.symbol, syscalls: row.syscalls, indirect: row.indirect, analyser: row.analyser, analyserVersion: Number(row.analyser_version) }))
      .sort(byExportOrder);
  }

  async fleetStats(top: number): Promise<FleetStats> {
    return guarded('fleetStats', async () => {
      const [counts] = await rowsOf<{ tags: string; profiles: string; failed: string }>(
        this.db,
        sql`select (select count(*) from registry_tags) as tags, (select count(distinct profile_id) from tag_profiles) as profiles,
                   (select count(*) from analyses where status = 'failed') as failed`,
      );
      const syscalls = await rowsOf<{ name: string; profiles: string }>(
        this.db,
        sql`select n.name, count(*) as profiles from profile_syscalls s join syscall_names n on n.id = s.syscall_id
            where s.profile_id in (select profile_id from tag_profiles)
            group by n.name order by count(*) desc, n.name collate "C"`,
      );
      const summaries = (where: SQL) =>
        rowsOf<SummaryRow>(
          this.db,
          sql`select t.registry, t.repository, t.tag, p.manifest_digest, p.platform, p.syscall_count, p.fallback, p.reasons
              from tag_profiles t join image_profiles p on p.id = t.profile_id ${where}
              order by p.syscall_count desc, t.registry collate "C", t.repository collate "C", t.tag collate "C", p.manifest_digest collate "C"
              limit ${top}`,
        );
      const failed = await rowsOf<{ sha256: string; analyser: string; analyser_version: number; error_code: string; error_message: string | null }>(
        this.db,
        sql`select sha256, analyser, analyser_version, error_code, error_message from analyses where status = 'failed'
            order by sha256 collate "C", analyser collate "C", analyser_version limit ${top}`,
      );
      return {
        tags: Number(counts!.tags),
        profiles: Number(counts!.profiles),
        syscalls: syscalls.map((row) => ({ name: row.name, profiles: Number(row.profiles) })),
        largest: (await summaries(sql``)).map(summaryOf),
        fallbacks: (await summaries(sql`where p.fallback`)).map(summaryOf),
        failedAnalyses: failed.map(failedAnalysisOf),
        failedAnalysesTotal: Number(counts!.failed),
      };
    });
  }

  async tagHistory(registry: string, repository: string, tag: string): Promise<TagChange[]> {
    const rows = await guarded('tagHistory', () =>
      this.db
        .select()
        .from(tagHistory)
        .where(and(eq(tagHistory.registry, registry), eq(tagHistory.repository, repository), eq(tagHistory.tag, tag)))
        .orderBy(tagHistory.id),
    );
    return rows.map(tagChangeOf);
  }

  readonly scans: ScanCache = {
    get: async (key) => {
      const rows = await guarded('getScan', () => this.db.select({ result: scanResults.result }).from(scanResults).where(eq(scanResults.key, key)));
      return rows[0] ? (JSON.parse(rows[0].result) as unknown) : undefined;
    },
    put: async (key, value) => {
      await guarded('putScan', () => this.db.insert(scanResults).values({ key, result: JSON.stringify(value) }).onConflictDoNothing());
    },
  };

  async exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    const key = lockKeyOf(name);
    // A session lock lives on one connection: held for the whole of `work`, dropped with it.
    const client = await guarded('connect for lock', () => this.pool.connect());
    let healthy = true;
    // A checked-out client that loses its server emits 'error'; unheard, it would end the process.
    // The lock is gone with the session then: `work` goes on (its writes are idempotent, so at
    // worst a second coordinator plans the same image too) and the client is discarded.
    const lost = (): void => {
      healthy = false;
    };
    client.on('error', lost);
    try {
      await guarded('lock', () => client.query('select pg_advisory_lock($1::bigint)', [key])).catch((err: unknown) => {
        healthy = false;
        throw err;
      });
      try {
        return await work();
      } finally {
        if (healthy) {
          await client.query('select pg_advisory_unlock($1::bigint)', [key]).catch(() => {
            healthy = false;
          });
        }
      }
    } finally {
      client.off('error', lost);
      // A discarded connection ends its session, and any lock it held with it.
      client.release(!healthy);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/**
 * The cluster knowledge base: a PostgreSQL database at `url` (`postgres://user@host:5432/db`).
 * Migrations run on one dedicated connection under a `pg_advisory_lock`, so workers that start
 * together wait for the first to migrate and then find nothing to do.
 */
export async function openPostgresKnowledgeBase(url: string): Promise<KnowledgeBase> {
  const folder = migrationsFolder('migrations');
  const migrator = new pg.Client({ connectionString: url });
  await guarded('connect', () => migrator.connect());
  try {
    await guarded('migrate', async () => {
      await migrator.query('select pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      try {
        await migrateNodePg(drizzleNodePg({ client: migrator, schema }), { migrationsFolder: folder });
      } finally {
        // A failed unlock must not hide a migration error; ending the session unlocks anyway.
        await migrator.query('select pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      }
    });
  } finally {
    // Ending the session also drops the advisory lock if the unlock above did not run.
    await migrator.end().catch(() => undefined);
  }
  const pool = new pg.Pool({ connectionString: url });
  // An idle client that loses its server emits 'error' on the pool; without a listener that would
  // crash the process. The pool discards the client, and the next query reports the failure.
  pool.on('error', () => undefined);
  const db = drizzleNodePg({ client: pool, schema });
  return new PostgresKnowledgeBase(db, pool);
}
