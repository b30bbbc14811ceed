/**
 * The knowledge base on both stores: every case runs against the embedded SQLite store (a file in
 * a temp dir) and against the real PostgreSQL of the test environment, in a database created for
 * this run and dropped at the end, so runs never see each other's rows. The two schemas are
 * checked to be one: same tables, columns, keys and nullability.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, test, type TestContext } from 'node:test';
import pg from 'pg';
import type { Digest, LayerFile, LayerRecord } from '../extractor/types.js';
import { UnavailableError } from '../infra/errors.js';
import Database from 'better-sqlite3';
import { is } from 'drizzle-orm';
import { getTableConfig as pgTableConfig, PgTable } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { FactsKey, KnowledgeBase } from '../store/kb/index.js';
import { openPostgresKnowledgeBase } from '../store/kb/postgres.js';
import * as pgSchema from '../store/kb/schema.js';
import * as sqliteSchema from '../store/kb/schema-sqlite.js';
import { openEmbeddedKnowledgeBase } from '../store/kb/sqlite.js';
import type { ExportSummary, ObjectFacts, Reach } from '../store/facts.js';

/** Any database of the test cluster; per-run databases are created and dropped through it. */
const PG_URL = process.env.DOCKERGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const ANALYSER = 'native';

function randomSha256(): string {
  return randomBytes(32).toString('hex');
}

function digestOf(text: string): Digest {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

function keyOf(facts: ObjectFacts): FactsKey {
  return { sha256: facts.sha256, analyser: facts.analyser, analyserVersion: facts.analyserVersion };
}

/** A root with its reach written inline; `compact` turns facts of these into `ObjectFacts`. */
type InlineSummary = Omit<ExportSummary, 'reach'> & Reach;

type InlineRegion = InlineSummary & { holds: number[]; always: boolean };

type InlineFacts = Omit<ObjectFacts, 'entry' | 'initialisers' | 'callbacks' | 'dataRegions' | 'exports' | 'reaches'> & {
  entry?: InlineSummary;
  initialisers: InlineSummary[];
  callbacks: InlineSummary[];
  dataRegions: InlineRegion[];
  exports: InlineSummary[];
};

function summary(symbol: string, syscalls: string[], extra: Partial<InlineSummary> = {}): InlineSummary {
  return { symbol, address: 0x1000 + symbol.length * 16, syscalls, imports: [], unresolvedCount: 0, indirect: false, callbacks: [], ...extra };
}

/** Moves inline reaches into `reaches` (deduplicated, in first-use order) as the analyser does. */
function compact(inline: InlineFacts): ObjectFacts {
  const reaches: Reach[] = [];
  const ids = new Map<string, number>();
  const idOf = ({ syscalls, imports, unresolvedCount, indirect, callbacks, dataRegions }: InlineSummary): number => {
    const reach = { syscalls, imports, unresolvedCount, indirect, callbacks, ...(dataRegions ? { dataRegions } : {}) };
    const key = JSON.stringify(reach);
    if (!ids.has(key)) {
      ids.set(key, reaches.length);
      reaches.push(reach);
    }
    return ids.get(key)!;
  };
  const root = (item: InlineSummary): ExportSummary => ({ symbol: item.symbol, address: item.address, reach: idOf(item) });
  const { entry, initialisers, callbacks, dataRegions, exports, ...rest } = inline;
  return {
    ...rest,
    ...(entry ? { entry: root(entry) } : {}),
    initialisers: initialisers.map(root),
    callbacks: callbacks.map((item) => ({ address: item.address, reach: idOf(item) })),
    dataRegions: dataRegions.map((item) => ({ address: item.address, reach: idOf(item), holds: item.holds, always: item.always })),
    exports: exports.map(root),
    reaches,
  };
}

/** Facts of a dynamic library with every optional field present. */
function libraryFacts(overrides: Partial<InlineFacts> = {}): ObjectFacts {
  return compact(libraryInline(overrides));
}

function libraryInline(overrides: Partial<InlineFacts> = {}): InlineFacts {
  return {
    sha256: randomSha256(),
    analyser: ANALYSER,
    analyserVersion: 1,
    arch: 'x86_64',
    elfType: 'dyn',
    interpreter: '/lib64/ld-linux-x86-64.so.2',
    soname: 'libexample.so.1',
    needed: ['libc.so.6', 'libm.so.6'],
    rpath: [],
    runpath: ['$ORIGIN/../lib'],
    flags: { static: false, pie: true, go: false, stripped: true },
    entry: summary('_start', ['exit', 'exit_group', 'read', 'write'], { imports: ['__libc_start_main@GLIBC_2.34'], indirect: true }),
    initialisers: [summary('frame_dummy', [])],
    callbacks: [summary('callback', ['close', 'openat'], { indirect: true, callbacks: [0] })],
    dataRegions: [
      { ...summary('<data>', [], { imports: ['free'], callbacks: [0] }), holds: [1], always: false },
      { ...summary('<more data>', [], { callbacks: [0] }), holds: [], always: true },
    ],
    exports: [
      summary('example_open', ['close', 'open', 'openat'], { imports: ['malloc@GLIBC_2.2.5'], unresolvedCount: 1, indirect: true, dataRegions: [0] }),
      summary('example_read@@EXAMPLE_1.0', ['pread64', 'read']),
      summary('example_read@EXAMPLE_0.9', ['read']),
      // Addresses above 2^32: the column is a bigint.
      summary('example_far', [], { address: 0x7f12_3456_7890 }),
    ],
    unresolved: [
      { address: 0x1234, kind: 'syscall-number', detail: 'rax from memory' },
      { address: 0x2000, kind: 'indirect-jump-table' },
    ],
    symbolNames: ['example_hook', 'malloc'],
    pathStrings: ['/etc/example.conf', '/usr/lib/example'],
    stats: { functions: 42, syscallSites: 7, resolvedSites: 6, codeBytes: 12_345 },
    ...overrides,
  };
}

/** Facts of a static executable with no optional field at all. */
function staticFacts(): ObjectFacts {
  return compact({
    sha256: randomSha256(),
    analyser: ANALYSER,
    analyserVersion: 1,
    arch: 'aarch64',
    elfType: 'exec',
    needed: [],
    rpath: [],
    runpath: [],
    flags: { static: true, pie: false, go: true, stripped: false },
    initialisers: [],
    callbacks: [],
    dataRegions: [],
    exports: [],
    unresolved: [],
    symbolNames: [],
    pathStrings: [],
    stats: { functions: 0, syscallSites: 0, resolvedSites: 0, codeBytes: 0 },
  });
}

function smallLayer(): LayerRecord {
  const elf = randomSha256();
  return {
    digest: digestOf(`small-${randomSha256()}`),
    diffId: digestOf(`diff-${randomSha256()}`),
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    compressedBytes: 1234,
    // Above 2^32: bigint column.
    uncompressedBytes: 5_000_000_000,
    extractorVersion: 3,
    files: [
      { path: '/usr', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
      { path: '/usr/bin/true', type: 'file', mode: 0o4755, uid: 0, gid: 0, size: 39_000, sha256: elf, kind: 'elf', elfMachine: 'x86_64' },
      { path: '/usr/bin/true-again', type: 'hardlink', mode: 0o755, uid: 0, gid: 0, size: 39_000, linkTarget: '/usr/bin/true', sha256: elf, kind: 'elf', elfMachine: 'x86_64' },
      { path: '/entry.sh', type: 'file', mode: 0o755, uid: 1000, gid: 1000, size: 20, sha256: randomSha256(), kind: 'script', interpreter: '/bin/sh -e' },
      { path: '/etc/motd', type: 'file', mode: 0o644, uid: 4_294_967_294, gid: 65_534, size: 6, sha256: randomSha256(), kind: 'other' },
      { path: '/bin', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkTarget: 'usr/bin' },
      // An empty link target is present, not absent.
      { path: '/odd-link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkTarget: '' },
      { path: '/dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, size: 0 },
      { path: '/big.bin', type: 'file', mode: 0o600, uid: 0, gid: 0, size: 10_000_000_000, sha256: randomSha256(), kind: 'other' },
      { path: "/with 'quotes\" and \\ and ünïcødé\n", type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, sha256: randomSha256(), kind: 'other' },
    ],
    whiteouts: ['/data/gone', '/etc/old.conf'],
    opaqueDirs: ['/data/replace-dir'],
  };
}

/** A layer of `count` files shaped like a distribution's /usr (dirs, files, ELF, links). */
function bigLayer(count: number): LayerRecord {
  const files: LayerFile[] = [];
  for (let i = 0; i < count; i++) {
    const dir = `/usr/share/pkg${Math.floor(i / 50)}`;
    switch (i % 10) {
      case 0:
        files.push({ path: `${dir}`, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 });
        break;
      case 1:
        files.push({ path: `${dir}/lib${i}.so.1`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 100_000 + i, sha256: createHash('sha256').update(String(i)).digest('hex'), kind: 'elf', elfMachine: 'x86_64' });
        break;
      case 2:
        files.push({ path: `${dir}/lib${i}.so`, type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkTarget: `lib${i - 1}.so.1` });
        break;
      case 3:
        files.push({ path: `${dir}/run${i}.sh`, type: 'file', mode: 0o755, uid: 0, gid: 0, size: 200, sha256: createHash('sha256').update(`s${i}`).digest('hex'), kind: 'script', interpreter: '/bin/sh' });
        break;
      default:
        files.push({ path: `${dir}/doc/file-${i}.txt`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: i, sha256: createHash('sha256').update(`f${i}`).digest('hex'), kind: 'other' });
    }
  }
  return {
    digest: digestOf(`big-${randomSha256()}`),
    diffId: digestOf(`big-diff-${randomSha256()}`),
    mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
    compressedBytes: 300_000_000,
    uncompressedBytes: 900_000_000,
    extractorVersion: 1,
    files,
    whiteouts: [],
    opaqueDirs: [],
  };
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await run();
  return { value, ms: Math.round(performance.now() - start) };
}

/** What differs between the drivers; the cases below are the same for both. */
interface Driver {
  readonly name: string;
  /** Upper bounds for a 100k-file layer record. */
  readonly budget?: { readonly putMs: number; readonly getMs: number };
  setup(): Promise<void>;
  /** The knowledge base shared by the cases (opened in setup). */
  kb(): KnowledgeBase;
  /** Closes the shared knowledge base and opens the same store again (migrations run again). */
  reopen(): Promise<void>;
  /** Another instance on the same store, as a second process would open (the caller closes it). */
  another(): Promise<KnowledgeBase>;
  /** Two opens at the same time of a store never opened before. */
  concurrentOpens(t: TestContext): Promise<void>;
  teardown(): Promise<void>;
}

function embeddedDriver(): Driver {
  let root = '';
  let file = '';
  let shared: KnowledgeBase | undefined;
  return {
    name: 'SQLite (embedded)',
    budget: { putMs: 5000, getMs: 2000 },
    async setup() {
      root = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-kb-'));
      file = path.join(root, 'kb.sqlite');
      shared = await openEmbeddedKnowledgeBase(file);
    },
    kb() {
      assert.ok(shared, 'knowledge base not open');
      return shared;
    },
    another: () => openEmbeddedKnowledgeBase(file),
    async reopen() {
      // A second open while the first is still open, as a second dockergate process would.
      const second = await openEmbeddedKnowledgeBase(file);
      await shared?.close();
      shared = second;
    },
    async concurrentOpens(t) {
      // A migration lock left by a dead process is taken over, and concurrent opens of a new
      // file apply each migration once and see each other's writes.
      const fresh = path.join(root, 'kb-concurrent.sqlite');
      const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
      await fs.writeFile(`${fresh}.migrate.lock`, `${deadPid}\n`);
      const { value: all, ms } = await timed(() => Promise.all([openEmbeddedKnowledgeBase(fresh), openEmbeddedKnowledgeBase(fresh), openEmbeddedKnowledgeBase(fresh)]));
      t.diagnostic(`three concurrent opens of a new file: ${ms} ms`);
      const facts = staticFacts();
      await all[0].putFacts(facts, 1);
      for (const kb of all) assert.deepEqual(await kb.getFacts([keyOf(facts)]), new Map([[facts.sha256, facts]]));
      await Promise.all(all.map((kb) => kb.close()));
      const probe = new Database(fresh, { readonly: true });
      try {
        const applied = probe.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number };
        const journal = JSON.parse(await fs.readFile(new URL('../store/migrations-sqlite/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] };
        assert.equal(applied.n, journal.entries.length, 'each migration applied once');
      } finally {
        probe.close();
      }
      await assert.rejects(fs.stat(`${fresh}.migrate.lock`), { code: 'ENOENT' });
    },
    async teardown() {
      await shared?.close();
      if (root) await fs.rm(root, { recursive: true, force: true });
    },
  };
}

function postgresDriver(): Driver {
  const admin = new pg.Client({ connectionString: PG_URL });
  const databases: string[] = [];
  let url = '';
  let shared: KnowledgeBase | undefined;
  async function createDatabase(): Promise<string> {
    const name = `dockergate_kb_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    await admin.query(`create database "${name}"`);
    databases.push(name);
    const dbUrl = new URL(PG_URL);
    dbUrl.pathname = `/${name}`;
    return dbUrl.toString();
  }
  return {
    name: 'PostgreSQL (pg)',
    budget: { putMs: 5000, getMs: 2000 },
    async setup() {
      await admin.connect();
      url = await createDatabase();
      shared = await openPostgresKnowledgeBase(url);
    },
    kb() {
      assert.ok(shared, 'knowledge base not open');
      return shared;
    },
    another: () => openPostgresKnowledgeBase(url),
    async reopen() {
      // A second open while the first is still open, as a second worker would.
      const second = await openPostgresKnowledgeBase(url);
      await shared?.close();
      shared = second;
    },
    async concurrentOpens(t) {
      const fresh = await createDatabase();
      const { value: both, ms } = await timed(() => Promise.all([openPostgresKnowledgeBase(fresh), openPostgresKnowledgeBase(fresh), openPostgresKnowledgeBase(fresh)]));
      t.diagnostic(`three concurrent opens of a new database: ${ms} ms`);
      const facts = staticFacts();
      await both[0].putFacts(facts, 1);
      for (const kb of both) assert.deepEqual(await kb.getFacts([keyOf(facts)]), new Map([[facts.sha256, facts]]));
      await Promise.all(both.map((kb) => kb.close()));
      const probe = new pg.Client({ connectionString: fresh });
      await probe.connect();
      try {
        const applied = await probe.query('select count(*)::int as n from drizzle.__drizzle_migrations');
        const journal = JSON.parse(await fs.readFile(new URL('../store/migrations/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] };
        assert.equal(applied.rows[0]?.n, journal.entries.length, 'each migration applied once');
      } finally {
        await probe.end();
      }
    },
    async teardown() {
      await shared?.close();
      for (const name of databases) await admin.query(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
}

/** A table as both dialects describe it: columns with SQL name and nullability, and key columns. */
function shapeOf(name: string, columns: readonly { name: string; notNull: boolean; primary: boolean }[], primaryKeys: readonly { columns: readonly { name: string }[] }[]) {
  return {
    name,
    columns: columns.map((c) => `${c.name}${c.notNull ? ' not null' : ''}`).sort(),
    key: [...columns.filter((c) => c.primary).map((c) => c.name), ...primaryKeys.flatMap((k) => k.columns.map((c) => c.name))],
  };
}

test('the SQLite schema is the PostgreSQL schema table for table and column for column', () => {
  const pgTables = Object.values(pgSchema).filter((value) => is(value, PgTable)).map((table) => {
    const config = pgTableConfig(table);
    return shapeOf(config.name, config.columns, config.primaryKeys);
  });
  const sqliteTables = Object.values(sqliteSchema).filter((value) => is(value, SQLiteTable)).map((table) => {
    const config = sqliteTableConfig(table);
    return shapeOf(config.name, config.columns, config.primaryKeys);
  });
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  assert.ok(pgTables.length >= 10, `tables found: ${pgTables.map((t) => t.name).join(', ')}`);
  assert.deepEqual(sqliteTables.sort(byName), pgTables.sort(byName));
  assert.deepEqual(Object.keys(sqliteSchema).sort(), Object.keys(pgSchema).sort(), 'the same export names');
});

for (const driver of [embeddedDriver(), postgresDriver()]) {
  describe(`knowledge base on ${driver.name}`, () => {
    before(() => driver.setup());
    after(() => driver.teardown());

    it('returns stored facts exactly as they were put', async () => {
      const kb = driver.kb();
      const library = libraryFacts();
      const executable = staticFacts();
      await kb.putFacts(library, 12.6);
      await kb.putFacts(executable, 3);
      const found = await kb.getFacts([keyOf(library), keyOf(executable), { ...keyOf(library), analyserVersion: 2 }, { sha256: randomSha256(), analyser: ANALYSER, analyserVersion: 1 }]);
      assert.deepEqual(found, new Map([[library.sha256, library], [executable.sha256, executable]]));
      assert.deepEqual(await kb.getFacts([]), new Map());
    });

    it('reports as missing exactly the keys with no analysis, in one statement for any number of keys', async (t) => {
      const kb = driver.kb();
      const ok = staticFacts();
      await kb.putFacts(ok, 1);
      const failed: FactsKey = { sha256: randomSha256(), analyser: ANALYSER, analyserVersion: 1 };
      await kb.recordFailure(failed, { code: 'invalid-input', message: 'truncated ELF header' }, 2);
      const unseen: FactsKey = { sha256: randomSha256(), analyser: ANALYSER, analyserVersion: 1 };
      const otherVersion: FactsKey = { ...keyOf(ok), analyserVersion: 2 };
      const otherAnalyser: FactsKey = { ...keyOf(ok), analyser: 'radare2' };
      assert.deepEqual(await kb.missing([keyOf(ok), failed, unseen, otherVersion, unseen, otherAnalyser]), [unseen, otherVersion, otherAnalyser]);
      assert.deepEqual(await kb.missing([]), []);
      // 30 000 keys are 90 000 values: more than one statement may carry as parameters (65 535),
      // so this only passes if the keys travel as arrays in a single statement.
      const many: FactsKey[] = Array.from({ length: 30_000 }, () => ({ sha256: randomSha256(), analyser: ANALYSER, analyserVersion: 1 }));
      const { value, ms } = await timed(() => kb.missing([...many, keyOf(ok), failed]));
      t.diagnostic(`missing() of 30 002 keys: ${ms} ms`);
      assert.deepEqual(value, many);
      const facts = await kb.getFacts([...many, keyOf(ok)]);
      assert.deepEqual([...facts.keys()], [ok.sha256]);
      const failures = await kb.getFailures([...many, keyOf(ok), failed]);
      assert.deepEqual([...failures.keys()], [failed.sha256]);
    });

    it('keeps failures: reported, not missing, and overridden only by facts', async () => {
      const kb = driver.kb();
      const facts = libraryFacts();
      const key = keyOf(facts);
      const failure = { code: 'limit-exceeded', message: 'analysis time exceeds limit analysisMs (60000)' };
      await kb.recordFailure(key, failure, 60_000);
      await kb.recordFailure(key, { code: 'invalid-input', message: 'a second, different failure' }, 1);
      assert.deepEqual(await kb.getFailures([key]), new Map([[key.sha256, failure]]));
      assert.deepEqual(await kb.missing([key]), []);
      assert.deepEqual(await kb.getFacts([key]), new Map());
      // Facts that arrive later (limits raised) replace the failure...
      await kb.putFacts(facts, 5);
      assert.deepEqual(await kb.getFailures([key]), new Map());
      assert.deepEqual(await kb.getFacts([key]), new Map([[key.sha256, facts]]));
      // ...and a failure after facts changes nothing.
      await kb.recordFailure(key, failure, 1);
      assert.deepEqual(await kb.getFailures([key]), new Map());
      assert.deepEqual(await kb.getFacts([key]), new Map([[key.sha256, facts]]));
      await assert.rejects(kb.recordFailure({ ...key, sha256: 'not-a-digest' }, failure, 1), /not a sha256/);
    });

    it('stores the same facts twice, also concurrently, without error or duplicates', async () => {
      const kb = driver.kb();
      const symbol = `idempotent_${randomBytes(4).toString('hex')}`;
      const facts = libraryFacts({ exports: [summary(symbol, ['open', 'read']), summary(`${symbol}_2`, ['close'])] });
      await kb.putFacts(facts, 1);
      await kb.putFacts(facts, 2);
      await Promise.all([kb.putFacts(facts, 3), kb.putFacts(facts, 4)]);
      const twin = libraryFacts({ exports: [summary(symbol, ['fstat'])] });
      await Promise.all([kb.putFacts(twin, 1), kb.putFacts(twin, 1), kb.putFacts(twin, 1)]);
      assert.deepEqual(await kb.getFacts([keyOf(facts)]), new Map([[facts.sha256, facts]]));
      const named = await kb.exportsNamed(symbol);
      assert.deepEqual(named.map((row) => row.sha256).sort(), [facts.sha256, twin.sha256].sort());
    });

    it('finds exports by name across objects, symbol versions and analyser versions', async () => {
      const kb = driver.kb();
      const name = `getaddrinfo_${randomBytes(4).toString('hex')}`;
      const libc = libraryFacts({
        soname: 'libc.so.6',
        exports: [
          summary(`${name}@@GLIBC_2.2.5`, ['close', 'connect', 'recvfrom', 'sendto', 'socket'], { indirect: true }),
          summary(`${name}@GLIBC_2.0`, ['connect', 'socket']),
          summary(`${name}x`, ['getpid']),
          summary('other', ['write']),
        ],
      });
      const muslInline = libraryInline({ soname: 'libc.musl-x86_64.so.1', exports: [summary(name, ['connect', 'recvfrom', 'socket'])] });
      const musl = compact(muslInline);
      const { soname: _absent, ...noSoname } = libraryFacts({ exports: [summary(name, [])] });
      // A newer analyser version of musl: only its row is reported for that object.
      const muslV2 = compact({ ...muslInline, analyserVersion: 2, exports: [summary(name, ['connect', 'recvfrom', 'sendto', 'socket'])] });
      for (const facts of [libc, musl, muslV2, noSoname]) await kb.putFacts(facts, 1);
      const expected = [
        { sha256: libc.sha256, soname: 'libc.so.6', symbol: `${name}@@GLIBC_2.2.5`, syscalls: ['close', 'connect', 'recvfrom', 'sendto', 'socket'], indirect: true, analyser: ANALYSER, analyserVersion: 1 },
        { sha256: libc.sha256, soname: 'libc.so.6', symbol: `${name}@GLIBC_2.0`, syscalls: ['connect', 'socket'], indirect: false, analyser: ANALYSER, analyserVersion: 1 },
        { sha256: musl.sha256, soname: 'libc.musl-x86_64.so.1', symbol: name, syscalls: ['connect', 'recvfrom', 'sendto', 'socket'], indirect: false, analyser: ANALYSER, analyserVersion: 2 },
        { sha256: noSoname.sha256, symbol: name, syscalls: [], indirect: false, analyser: ANALYSER, analyserVersion: 1 },
      ].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : a.symbol < b.symbol ? -1 : 1));
      assert.deepEqual(await kb.exportsNamed(name), expected);
      assert.deepEqual(await kb.exportsNamed(`${name}@GLIBC_2.0`), expected.filter((row) => row.symbol === `${name}@GLIBC_2.0`));
      assert.deepEqual(await kb.exportsNamed(`no_such_symbol_${name}`), []);
    });

    it('round-trips a small layer record with every optional field absent and present', async () => {
      const kb = driver.kb();
      const record = smallLayer();
      assert.equal(await kb.get(record.digest, record.extractorVersion), undefined);
      await kb.put(record);
      await kb.put(record);
      assert.deepEqual(await kb.get(record.digest, record.extractorVersion), record);
      assert.equal(await kb.get(record.digest, record.extractorVersion + 1), undefined);
      const empty: LayerRecord = { ...record, digest: digestOf(`empty-${randomSha256()}`), files: [], whiteouts: [], opaqueDirs: [] };
      await kb.put(empty);
      assert.deepEqual(await kb.get(empty.digest, empty.extractorVersion), empty);
    });

    it('round-trips a layer record of 100 000 files in tar order', async (t) => {
      const kb = driver.kb();
      const record = bigLayer(100_000);
      const put = await timed(() => kb.put(record));
      const got = await timed(() => kb.get(record.digest, record.extractorVersion));
      t.diagnostic(`${driver.name}: put 100k files ${put.ms} ms, get ${got.ms} ms`);
      assert.deepEqual(got.value, record);
      if (driver.budget) {
        assert.ok(put.ms < driver.budget.putMs, `put took ${put.ms} ms`);
        assert.ok(got.ms < driver.budget.getMs, `get took ${got.ms} ms`);
      }
      const again = await timed(() => kb.put(record));
      t.diagnostic(`${driver.name}: second put (already stored) ${again.ms} ms`);
    });

    it('fails a statement with the operation and the driver error, not the parameters, and rolls back', async () => {
      const kb = driver.kb();
      const record = smallLayer();
      // A file without a path breaks the NOT NULL constraint of both stores; the long link target
      // makes the batch parameter large, and it must not show in the message.
      const { path: _path, ...pathless } = { ...record.files[0]!, linkTarget: `/${'x'.repeat(100_000)}` };
      const bad = { ...record, files: [...record.files, pathless as LayerFile] };
      await assert.rejects(kb.put(bad), (err: unknown) => {
        assert.ok(err instanceof Error && !(err instanceof UnavailableError), String(err));
        assert.match(err.message, /^knowledge base put layer record: /);
        assert.ok(err.message.length < 1000, `message of ${err.message.length} chars`);
        return true;
      });
      assert.equal(await kb.get(record.digest, record.extractorVersion), undefined);
      await kb.put(record);
      assert.deepEqual(await kb.get(record.digest, record.extractorVersion), record);
    });

    it('applies migrations again on reopen, keeping the data', async () => {
      const facts = libraryFacts();
      const record = smallLayer();
      await driver.kb().putFacts(facts, 1);
      await driver.kb().put(record);
      await driver.reopen();
      assert.deepEqual(await driver.kb().getFacts([keyOf(facts)]), new Map([[facts.sha256, facts]]));
      assert.deepEqual(await driver.kb().get(record.digest, record.extractorVersion), record);
    });

    it('runs exclusive work for one name one holder at a time, across store instances', async () => {
      const other = await driver.another();
      try {
        const events: string[] = [];
        const hold = (who: string, kb: KnowledgeBase, name: string) =>
          kb.exclusive(name, async () => {
            events.push(`${who} in`);
            await new Promise((resolve) => setTimeout(resolve, 150));
            events.push(`${who} out`);
            return who;
          });
        const held = await Promise.all([hold('a', driver.kb(), 'image X'), hold('b', other, 'image X'), hold('c', other, 'image Y')]);
        assert.deepEqual(held, ['a', 'b', 'c']);
        const at = (event: string) => events.indexOf(event);
        assert.ok(at('a out') < at('b in') || at('b out') < at('a in'), `holders of one name overlap: ${events.join(', ')}`);
        assert.ok(at('c in') < Math.min(at('a out'), at('b out')), `another name waits: ${events.join(', ')}`);
        // A failed holder releases the name.
        await assert.rejects(driver.kb().exclusive('image X', async () => Promise.reject(new Error('boom'))), /boom/);
        assert.equal(await other.exclusive('image X', async () => 'free'), 'free');
      } finally {
        await other.close();
      }
    });

    it('handles two opens of a new store at the same time', async (t) => {
      await driver.concurrentOpens(t);
    });

    it('keeps registry tags as last checked, and their history of changes in order', async () => {
      const kb = driver.kb();
      const registry = `127.0.0.1:${5000 + Math.floor(Math.random() * 1000)}`;
      const scans = [{ platform: 'linux/amd64', manifestDigest: `sha256:${randomSha256()}`, syscalls: ['read', 'write'] }];
      assert.equal(await kb.getTag(registry, 'app', 'v1'), undefined);
      await kb.putTag({ registry, repository: 'app', tag: 'v1', digest: 'sha256:a', state: 's1', scans }, { toDigest: 'sha256:a', added: ['read', 'write'], removed: [] });
      await kb.putTag({ registry, repository: 'app', tag: 'latest', digest: 'sha256:a', state: 's1', scans: [], error: 'limit-exceeded: too big' });
      await kb.putTag({ registry, repository: 'base', tag: 'v1', digest: 'sha256:b', state: 's1', scans });
      const first = (await kb.getTag(registry, 'app', 'v1'))!;
      assert.deepEqual({ ...first, checkedAt: undefined, changedAt: undefined }, { registry, repository: 'app', tag: 'v1', digest: 'sha256:a', state: 's1', scans, checkedAt: undefined, changedAt: undefined });
      assert.equal((await kb.getTag(registry, 'app', 'latest'))!.error, 'limit-exceeded: too big');
      // Checked again unchanged: checkedAt moves, changedAt stays.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await kb.putTag({ registry, repository: 'app', tag: 'v1', digest: 'sha256:a', state: 's1', scans });
      const again = (await kb.getTag(registry, 'app', 'v1'))!;
      assert.ok(again.checkedAt! > first.checkedAt!, `${again.checkedAt} after ${first.checkedAt}`);
      assert.equal(again.changedAt, first.changedAt);
      // Moved to another digest: changedAt moves, and the change is in the history after the first.
      const moved = [{ ...scans[0]!, syscalls: ['read', 'ptrace'] }];
      await kb.putTag({ registry, repository: 'app', tag: 'v1', digest: 'sha256:c', state: 's1', scans: moved }, { fromDigest: 'sha256:a', toDigest: 'sha256:c', added: ['ptrace'], removed: ['write'] });
      const now = (await kb.getTag(registry, 'app', 'v1'))!;
      assert.ok(now.changedAt! > first.changedAt!);
      assert.deepEqual(now.scans, moved);
      const history = (await kb.tagHistory(registry, 'app', 'v1')).map(({ at, ...change }) => (assert.ok(at), change));
      assert.deepEqual(history, [
        { toDigest: 'sha256:a', added: ['read', 'write'], removed: [] },
        { fromDigest: 'sha256:a', toDigest: 'sha256:c', added: ['ptrace'], removed: ['write'] },
      ]);
      assert.deepEqual((await kb.tagsOf(registry)).map((t) => `${t.repository}:${t.tag}`), ['app:latest', 'app:v1', 'base:v1']);
      assert.deepEqual((await kb.tagsOf(registry, 'base')).map((t) => `${t.repository}:${t.tag}`), ['base:v1']);
      assert.deepEqual(await kb.tagsOf('elsewhere'), []);
    });

    it('answers fleet queries from the reverse index: tags allowing a syscall (paged), profiles, objects, statistics', async () => {
      const kb = driver.kb();
      const registry = `10.0.0.${Math.floor(Math.random() * 250)}:5000`;
      const digest = () => `sha256:${randomSha256()}`;
      const [plain, tracer, unsure] = [digest(), digest(), digest()];
      const witness = (name: string) => ['entrypoint', '/bin/app', `${name}@libc.so.6`];
      const profile = (manifestDigest: string, names: string[], reasons: { kind: string; detail: string }[] = []) => ({
        manifestDigest,
        state: 's1',
        platform: 'linux/amd64',
        fallback: reasons.length > 0,
        reasons,
        syscalls: new Map(names.map((name) => [name, witness(name)])),
      });
      await kb.putProfile(profile(plain, ['read', 'write']));
      await kb.putProfile(profile(tracer, ['ptrace', 'read', 'wait4', 'write']));
      await kb.putProfile(profile(unsure, ['ptrace', 'read'], [{ kind: 'unresolved', detail: '3 syscall sites of /bin/x' }]));
      // Idempotent: the same manifest and state again adds nothing.
      await kb.putProfile(profile(plain, ['read', 'write', 'mount']));
      const scan = (manifestDigest: string) => [{ platform: 'linux/amd64', manifestDigest, syscalls: [] }];
      await kb.putTag({ registry, repository: 'a', tag: '1', digest: plain, state: 's1', scans: scan(plain) });
      await kb.putTag({ registry, repository: 'b', tag: '1', digest: tracer, state: 's1', scans: scan(tracer) });
      await kb.putTag({ registry, repository: 'b', tag: '2', digest: tracer, state: 's1', scans: scan(tracer) });
      await kb.putTag({ registry, repository: 'c', tag: 'x', digest: unsure, state: 's1', scans: scan(unsure) });
      // A tag that moved on no longer counts for what it pointed at.
      await kb.putTag({ registry, repository: 'd', tag: 'old', digest: tracer, state: 's1', scans: scan(tracer) });
      await kb.putTag({ registry, repository: 'd', tag: 'old', digest: plain, state: 's1', scans: scan(plain) });

      assert.deepEqual(await kb.profileSyscalls(plain), new Map([['read', 'entrypoint → /bin/app → read@libc.so.6'], ['write', 'entrypoint → /bin/app → write@libc.so.6']]));
      assert.equal(await kb.profileSyscalls(digest()), undefined);

      const first = await kb.tagsAllowing('ptrace', { limit: 2 });
      assert.deepEqual(first.items.map((item) => `${item.repository}:${item.tag}`), ['b:1', 'b:2']);
      assert.ok(first.next);
      assert.equal(first.items[0]!.witness, 'entrypoint → /bin/app → ptrace@libc.so.6');
      const second = await kb.tagsAllowing('ptrace', { limit: 2, after: first.next });
      assert.deepEqual(second.items.map((item) => `${item.repository}:${item.tag}:${item.manifestDigest === unsure}`), ['c:x:true']);
      assert.equal(second.next, undefined);
      assert.deepEqual((await kb.tagsAllowing('mount', { limit: 10 })).items, []);
      assert.deepEqual((await kb.tagsAllowing('no_such_call', { limit: 10 })).items, []);
      await assert.rejects(kb.tagsAllowing('ptrace', { limit: 2, after: 'not-a-cursor' }), /invalid page cursor/);

      const library = libraryFacts({ soname: `libfleet-${randomSha256().slice(0, 6)}.so.1` });
      await kb.putFacts(library, 1);
      const [found] = await kb.objectsNamed(library.soname!);
      assert.deepEqual(found, { sha256: library.sha256, analyser: ANALYSER, analyserVersion: 1, soname: library.soname, arch: 'x86_64', needed: ['libc.so.6', 'libm.so.6'], exports: 4 });
      assert.deepEqual((await kb.objectsNamed(library.sha256)).map((o) => o.sha256), [library.sha256]);
      const exports = await kb.exportsOf(keyOf(library));
      assert.deepEqual(
        exports.map((e) => `${e.symbol} ${e.syscalls.join(',')}`),
        ['example_far ', 'example_open close,open,openat', 'example_read@@EXAMPLE_1.0 pread64,read', 'example_read@EXAMPLE_0.9 read'],
      );

      const stats = await kb.fleetStats(100);
      const mine = (summaries: readonly { registry: string; repository: string; tag: string }[]) => summaries.filter((t) => t.registry === registry).map((t) => `${t.repository}:${t.tag}`);
      assert.deepEqual(mine(stats.largest), ['b:1', 'b:2', 'a:1', 'c:x', 'd:old']);
      assert.deepEqual(mine(stats.fallbacks), ['c:x']);
      assert.deepEqual(stats.fallbacks.find((t) => t.registry === registry)!.reasons, [{ kind: 'unresolved', detail: '3 syscall sites of /bin/x' }]);
      const ptrace = stats.syscalls.find((entry) => entry.name === 'ptrace');
      assert.ok(ptrace && ptrace.profiles >= 2);
      assert.ok(stats.tags >= 5 && stats.profiles >= 3);
    });
  });
}

describe('knowledge base errors', () => {
  it('reports an unreachable PostgreSQL as unavailable (retryable)', async () => {
    await assert.rejects(openPostgresKnowledgeBase('postgres://postgres@127.0.0.1:1/none'), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.equal(err.retryable, true);
      return true;
    });
  });
});
