/**
 * The knowledge base: analysis facts and layer records in PostgreSQL, through one drizzle schema
 * (`schema.ts`) and two drivers: embedded PGlite (a data directory under the user's cache dir) and
 * a PostgreSQL server through `pg` (cluster mode). Both apply the migrations of `store/migrations/`
 * at open time and behave identically; `test/knowledge-base.test.ts` runs every case on both.
 *
 * Invariants:
 * - Writes are idempotent (`ON CONFLICT DO NOTHING`): concurrent workers that analysed the same
 *   object, or extracted the same layer, both succeed and the first write stays.
 * - A key is "known" once an `analyses` row exists, `ok` or `failed`; failures are final for that
 *   analyser version (retryable errors must not be recorded). Facts written after a recorded failure
 *   replace the failure; a failure recorded after facts is ignored.
 * - Batch look-ups send one query whatever the number of keys: keys travel as three arrays
 *   (`unnest`), so no statement ever exceeds PostgreSQL's 65535-parameter limit.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { and, DrizzleQueryError, eq, sql, type SQL } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import type { Digest, FileKind, FileType, LayerFile, LayerRecord } from '../../extractor/types.js';
import { DockergateError, NotFoundError, UnavailableError } from '../../infra/errors.js';
import type { ObjectFacts } from '../facts.js';
import { assertSha256Hex } from '../cas.js';
import type { LayerRecordStore } from '../layer-records.js';
import * as schema from './schema.js';
import { analyses, layers, objects, scanResults } from './schema.js';
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
  /** Finished scans, shared by every coordinator of a cluster (the embedded mode keeps them in files). */
  readonly scans: ScanCache;
  close(): Promise<void>;
}

/** Files per INSERT into layer_files (one json parameter of about 1 MB). */
const LAYER_FILES_BATCH = 10_000;

/** `pg_advisory_lock` key that serialises migrations of one database ("dockgate" in ASCII). */
const MIGRATION_LOCK_KEY = '7237112439154766949'; // 0x646f636b67617465

type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/**
 * The migrations folder: `store/migrations` beside this module when run from source (tsx), or the
 * repository's `store/migrations` when run from `dist/store/kb/` (tsc does not copy SQL files).
 */
function migrationsFolder(): string {
  const candidates = ['../migrations', '../../../store/migrations'].map((relative) =>
    fileURLToPath(new URL(relative, import.meta.url)),
  );
  const found = candidates.find((dir) => existsSync(path.join(dir, 'meta', '_journal.json')));
  if (!found) throw new NotFoundError(`knowledge base migrations not found in ${candidates.join(' or ')}`);
  return found;
}

/** SQLSTATE classes and socket errors after which the same operation may succeed later. */
const TRANSIENT_SQLSTATE = /^(08|53|57P0|40001$|40P01$)/;
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

async function guarded<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw dbError(err, operation);
  }
}

function keyString(key: FactsKey): string {
  return `${key.sha256}\0${key.analyser}\0${key.analyserVersion}`;
}

function uniqueKeys(keys: readonly FactsKey[]): FactsKey[] {
  const seen = new Map<string, FactsKey>();
  for (const key of keys) {
    const id = keyString(key);
    if (!seen.has(id)) seen.set(id, { sha256: key.sha256, analyser: key.analyser, analyserVersion: key.analyserVersion });
  }
  return [...seen.values()];
}

/** `(sha256, analyser, analyser_version)` rows of `keys`, as one `unnest` of three array parameters. */
function keysTable(keys: readonly FactsKey[]): SQL {
  return sql`unnest(${sql.param(keys.map((k) => k.sha256))}::text[], ${sql.param(keys.map((k) => k.analyser))}::text[], ${sql.param(keys.map((k) => k.analyserVersion))}::int[]) as k(sha256, analyser, analyser_version)`;
}

async function rowsOf<T>(db: Db, query: SQL): Promise<T[]> {
  // Both drivers answer `execute` with an object holding `rows` (pg QueryResult, PGlite Results).
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

/** The symbol without its ELF version suffix (`name@V`, `name@@V`). */
function symbolName(symbol: string): string {
  const at = symbol.indexOf('@');
  return at < 0 ? symbol : symbol.slice(0, at);
}

type MutableLayerFile = { -readonly [K in keyof LayerFile]: LayerFile[K] };

/** A `layer_files` row as `json_agg` writes it. */
interface FileRow {
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

class DrizzleKnowledgeBase implements KnowledgeBase {
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly release: () => Promise<void>,
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
    const known = new Set(
      rows.map((row) => keyString({ sha256: row.sha256, analyser: row.analyser, analyserVersion: Number(row.analyser_version) })),
    );
    return unique.filter((key) => !known.has(keyString(key)));
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
    return rows.map((row) => ({
      sha256: row.sha256,
      ...(row.soname === null ? {} : { soname: row.soname }),
      symbol: row.symbol,
      syscalls: row.syscalls,
      indirect: row.indirect,
      analyser: row.analyser,
      analyserVersion: Number(row.analyser_version),
    }));
  }

  async get(digest: Digest, extractorVersion: number): Promise<LayerRecord | undefined> {
    return guarded('get layer record', async () => {
      const where = and(eq(layers.digest, digest), eq(layers.extractorVersion, extractorVersion));
      const [layer] = await this.db.select().from(layers).where(where);
      if (!layer) return undefined;
      // The layer row and its files commit together (put), so once the row is visible all are.
      // The files travel as one json array built by the server: parsing one value is much faster
      // than 100k rows of 11 columns, above all through PGlite (measured: ~0.5 s against ~1.5 s).
      const [row] = await rowsOf<{ files: FileRow[] | string }>(
        this.db,
        sql`select coalesce(json_agg(f order by f.ordinal), '[]') as files
            from (select ordinal, path, type, mode, uid, gid, size, link_target, sha256, kind, elf_machine, interpreter
                  from layer_files
                  where digest = ${digest} and extractor_version = ${extractorVersion}) f`,
      );
      const fileRows = typeof row?.files === 'string' ? (JSON.parse(row.files) as FileRow[]) : (row?.files ?? []);
      const files = fileRows.map((f): LayerFile => {
        // NULL stands for an absent optional field: leave the key out, as the record was put.
        const file: MutableLayerFile = { path: f.path, type: f.type, mode: f.mode, uid: f.uid, gid: f.gid, size: f.size };
        if (f.link_target !== null) file.linkTarget = f.link_target;
        if (f.sha256 !== null) file.sha256 = f.sha256;
        if (f.kind !== null) file.kind = f.kind;
        if (f.elf_machine !== null) file.elfMachine = f.elf_machine;
        if (f.interpreter !== null) file.interpreter = f.interpreter;
        return file;
      });
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

  readonly scans: ScanCache = {
    get: async (key) => {
      const rows = await guarded('getScan', () => this.db.select({ result: scanResults.result }).from(scanResults).where(eq(scanResults.key, key)));
      return rows[0] ? (JSON.parse(rows[0].result) as unknown) : undefined;
    },
    put: async (key, value) => {
      await guarded('putScan', () => this.db.insert(scanResults).values({ key, result: JSON.stringify(value) }).onConflictDoNothing());
    },
  };

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.release();
  }
}

function durationOf(durationMs: number): number {
  return Number.isFinite(durationMs) ? Math.max(0, Math.round(durationMs)) : 0;
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
 * PGlite has no lock of its own and two processes on one data directory corrupt it: a lock file
 * beside the directory, holding the owner's pid, keeps a second `dockergate` out. A lock whose
 * process is gone (crash, kill -9) is taken over.
 */
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const lockPath = `${dir}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(lockPath, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      return () => fs.rm(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt(await fs.readFile(lockPath, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new UnavailableError(`knowledge base ${dir} is in use by process ${owner} (lock ${lockPath})`);
      }
      await fs.rm(lockPath, { force: true });
    }
  }
  throw new UnavailableError(`knowledge base ${dir}: cannot take lock ${lockPath}`);
}

/**
 * The embedded knowledge base: PGlite with its data in `dir` (e.g. `<cacheDir>/kb`), created on
 * first use (PGlite's initdb takes a few seconds). One process at a time (`<dir>.lock`).
 */
export async function openEmbeddedKnowledgeBase(dir: string): Promise<KnowledgeBase> {
  const folder = migrationsFolder();
  await fs.mkdir(dir, { recursive: true });
  const unlock = await lockDataDir(dir);
  let client: PGlite | undefined;
  try {
    client = await PGlite.create(dir);
    const db = drizzlePglite({ client, schema });
    await guarded('migrate', () => migratePglite(db, { migrationsFolder: folder }));
    const opened = client;
    return new DrizzleKnowledgeBase(db, async () => {
      try {
        await opened.close();
      } finally {
        await unlock();
      }
    });
  } catch (err) {
    await client?.close().catch(() => undefined);
    await unlock();
    throw err;
  }
}

/**
 * The cluster knowledge base: a PostgreSQL database at `url` (`postgres://user@host:5432/db`).
 * Migrations run on one dedicated connection under a `pg_advisory_lock`, so workers that start
 * together wait for the first to migrate and then find nothing to do.
 */
export async function openPostgresKnowledgeBase(url: string): Promise<KnowledgeBase> {
  const folder = migrationsFolder();
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
  return new DrizzleKnowledgeBase(db, () => pool.end());
}
