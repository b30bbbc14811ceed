/**
 * The knowledge base schema in SQLite's dialect, for the embedded store (`sqlite.ts`). It mirrors
 * `schema.ts` table for table and column for column (same SQL names, same keys, same nullability),
 * which `test/knowledge-base.test.ts` checks, so the queries of both stores read the same rows.
 * Migrations in `store/migrations-sqlite/` are generated from this file with drizzle-kit
 * (`npm run db:generate`); never edit them by hand.
 *
 * Representation of PostgreSQL types here (SQLite has no arrays, jsonb, boolean or timestamp):
 * - `text[]` and `jsonb` are JSON text (`mode: 'json'`), read back with `json_each`;
 * - `boolean` is an integer 0/1 (`mode: 'boolean'`);
 * - `timestamp with time zone` is ISO-8601 text in UTC, defaulting to the time of the insert;
 * - `bigint` is SQLite's 64-bit integer, read as a JS number (all values < 2^53).
 */
import { sql } from 'drizzle-orm';
import { check, foreignKey, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

const now = sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;

export const analyses = sqliteTable(
  'analyses',
  {
    sha256: text('sha256').notNull(),
    analyser: text('analyser').notNull(),
    analyserVersion: integer('analyser_version').notNull(),
    status: text('status', { enum: ['ok', 'failed'] }).notNull(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    durationMs: integer('duration_ms').notNull(),
    createdAt: text('created_at').notNull().default(now),
  },
  (t) => [
    primaryKey({ columns: [t.sha256, t.analyser, t.analyserVersion] }),
    check('analyses_status_check', sql`${t.status} in ('ok', 'failed')`),
    check('analyses_failed_has_code', sql`${t.status} = 'ok' or ${t.errorCode} is not null`),
  ],
);

export const objects = sqliteTable(
  'objects',
  {
    sha256: text('sha256').notNull(),
    analyser: text('analyser').notNull(),
    analyserVersion: integer('analyser_version').notNull(),
    arch: text('arch').notNull(),
    elfType: text('elf_type').notNull(),
    interpreter: text('interpreter'),
    soname: text('soname'),
    needed: text('needed', { mode: 'json' }).$type<string[]>().notNull(),
    rpath: text('rpath', { mode: 'json' }).$type<string[]>().notNull(),
    runpath: text('runpath', { mode: 'json' }).$type<string[]>().notNull(),
    isStatic: integer('is_static', { mode: 'boolean' }).notNull(),
    isPie: integer('is_pie', { mode: 'boolean' }).notNull(),
    isGo: integer('is_go', { mode: 'boolean' }).notNull(),
    isStripped: integer('is_stripped', { mode: 'boolean' }).notNull(),
    facts: text('facts', { mode: 'json' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.sha256, t.analyser, t.analyserVersion] }),
    foreignKey({
      name: 'objects_analyses_fk',
      columns: [t.sha256, t.analyser, t.analyserVersion],
      foreignColumns: [analyses.sha256, analyses.analyser, analyses.analyserVersion],
    }).onDelete('cascade'),
    index('objects_soname_idx').on(t.soname),
  ],
);

export const objectReaches = sqliteTable(
  'object_reaches',
  {
    sha256: text('sha256').notNull(),
    analyser: text('analyser').notNull(),
    analyserVersion: integer('analyser_version').notNull(),
    reach: integer('reach').notNull(),
    syscalls: text('syscalls', { mode: 'json' }).$type<string[]>().notNull(),
    imports: text('imports', { mode: 'json' }).$type<string[]>().notNull(),
    unresolvedCount: integer('unresolved_count').notNull(),
    indirect: integer('indirect', { mode: 'boolean' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.sha256, t.analyser, t.analyserVersion, t.reach] }),
    foreignKey({
      name: 'object_reaches_objects_fk',
      columns: [t.sha256, t.analyser, t.analyserVersion],
      foreignColumns: [objects.sha256, objects.analyser, objects.analyserVersion],
    }).onDelete('cascade'),
  ],
);

export const objectExports = sqliteTable(
  'object_exports',
  {
    sha256: text('sha256').notNull(),
    analyser: text('analyser').notNull(),
    analyserVersion: integer('analyser_version').notNull(),
    symbol: text('symbol').notNull(),
    name: text('name').notNull(),
    address: integer('address').notNull(),
    reach: integer('reach').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.sha256, t.analyser, t.analyserVersion, t.symbol] }),
    foreignKey({
      name: 'object_exports_objects_fk',
      columns: [t.sha256, t.analyser, t.analyserVersion],
      foreignColumns: [objects.sha256, objects.analyser, objects.analyserVersion],
    }).onDelete('cascade'),
    index('object_exports_symbol_idx').on(t.symbol),
    index('object_exports_name_idx').on(t.name),
  ],
);

export const layers = sqliteTable(
  'layers',
  {
    digest: text('digest').notNull(),
    extractorVersion: integer('extractor_version').notNull(),
    diffId: text('diff_id').notNull(),
    mediaType: text('media_type').notNull(),
    compressedBytes: integer('compressed_bytes').notNull(),
    uncompressedBytes: integer('uncompressed_bytes').notNull(),
    whiteouts: text('whiteouts', { mode: 'json' }).$type<string[]>().notNull(),
    opaqueDirs: text('opaque_dirs', { mode: 'json' }).$type<string[]>().notNull(),
    createdAt: text('created_at').notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.digest, t.extractorVersion] })],
);

export const layerFiles = sqliteTable(
  'layer_files',
  {
    digest: text('digest').notNull(),
    extractorVersion: integer('extractor_version').notNull(),
    ordinal: integer('ordinal').notNull(),
    path: text('path').notNull(),
    type: text('type').notNull(),
    mode: integer('mode').notNull(),
    uid: integer('uid').notNull(),
    gid: integer('gid').notNull(),
    size: integer('size').notNull(),
    linkTarget: text('link_target'),
    sha256: text('sha256'),
    kind: text('kind'),
    elfMachine: text('elf_machine'),
    interpreter: text('interpreter'),
  },
  (t) => [
    primaryKey({ columns: [t.digest, t.extractorVersion, t.ordinal] }),
    foreignKey({
      name: 'layer_files_layers_fk',
      columns: [t.digest, t.extractorVersion],
      foreignColumns: [layers.digest, layers.extractorVersion],
    }).onDelete('cascade'),
  ],
);

export const images = sqliteTable(
  'images',
  {
    reference: text('reference').notNull(),
    manifestDigest: text('manifest_digest').notNull(),
    configDigest: text('config_digest').notNull(),
    platform: text('platform').notNull(),
    config: text('config', { mode: 'json' }).notNull(),
    scannedAt: text('scanned_at').notNull().default(now),
  },
  (t) => [
    primaryKey({ columns: [t.reference, t.manifestDigest] }),
    index('images_manifest_digest_idx').on(t.manifestDigest),
  ],
);

export const imageLayers = sqliteTable(
  'image_layers',
  {
    manifestDigest: text('manifest_digest').notNull(),
    position: integer('position').notNull(),
    layerDigest: text('layer_digest').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.manifestDigest, t.position] }),
    index('image_layers_layer_digest_idx').on(t.layerDigest),
  ],
);

export const policies = sqliteTable(
  'policies',
  {
    manifestDigest: text('manifest_digest').notNull(),
    generatorVersion: integer('generator_version').notNull(),
    syscalls: text('syscalls', { mode: 'json' }).$type<string[]>().notNull(),
    profile: text('profile', { mode: 'json' }).notNull(),
    report: text('report', { mode: 'json' }).notNull(),
    createdAt: text('created_at').notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.manifestDigest, t.generatorVersion] })],
);

export const scanResults = sqliteTable('scan_results', {
  key: text('key').primaryKey(),
  result: text('result').notNull(),
  createdAt: text('created_at').notNull().default(now),
});

export const registryTags = sqliteTable(
  'registry_tags',
  {
    registry: text('registry').notNull(),
    repository: text('repository').notNull(),
    tag: text('tag').notNull(),
    digest: text('digest').notNull(),
    state: text('state').notNull(),
    scans: text('scans', { mode: 'json' }).notNull(),
    error: text('error'),
    checkedAt: text('checked_at').notNull().default(now),
    changedAt: text('changed_at').notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.registry, t.repository, t.tag] })],
);

export const tagHistory = sqliteTable(
  'tag_history',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    registry: text('registry').notNull(),
    repository: text('repository').notNull(),
    tag: text('tag').notNull(),
    fromDigest: text('from_digest'),
    toDigest: text('to_digest').notNull(),
    added: text('added', { mode: 'json' }).$type<string[]>().notNull(),
    removed: text('removed', { mode: 'json' }).$type<string[]>().notNull(),
    at: text('at').notNull().default(now),
  },
  (t) => [index('tag_history_tag_idx').on(t.registry, t.repository, t.tag)],
);

export const imageProfiles = sqliteTable(
  'image_profiles',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    manifestDigest: text('manifest_digest').notNull(),
    state: text('state').notNull(),
    platform: text('platform').notNull(),
    syscallCount: integer('syscall_count').notNull(),
    fallback: integer('fallback', { mode: 'boolean' }).notNull(),
    reasons: text('reasons', { mode: 'json' }).notNull(),
    createdAt: text('created_at').notNull().default(now),
  },
  (t) => [uniqueIndex('image_profiles_manifest_state_idx').on(t.manifestDigest, t.state), index('image_profiles_syscall_count_idx').on(t.syscallCount)],
);

export const syscallNames = sqliteTable('syscall_names', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull().unique(),
});

export const profileSyscalls = sqliteTable(
  'profile_syscalls',
  {
    syscallId: integer('syscall_id').notNull(),
    profileId: integer('profile_id').notNull(),
    witness: text('witness').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.syscallId, t.profileId] }),
    index('profile_syscalls_profile_idx').on(t.profileId),
    foreignKey({ name: 'profile_syscalls_profile_fk', columns: [t.profileId], foreignColumns: [imageProfiles.id] }).onDelete('cascade'),
    foreignKey({ name: 'profile_syscalls_syscall_fk', columns: [t.syscallId], foreignColumns: [syscallNames.id] }),
  ],
);

export const tagProfiles = sqliteTable(
  'tag_profiles',
  {
    registry: text('registry').notNull(),
    repository: text('repository').notNull(),
    tag: text('tag').notNull(),
    profileId: integer('profile_id').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.registry, t.repository, t.tag, t.profileId] }),
    index('tag_profiles_profile_idx').on(t.profileId),
    // (The PostgreSQL twin has tag_profiles_order_idx in code-point order; SQLite compares text by
    // code point, BINARY, so the primary key is that order already.)
    foreignKey({ name: 'tag_profiles_profile_fk', columns: [t.profileId], foreignColumns: [imageProfiles.id] }).onDelete('cascade'),
  ],
);
