/**
 * The knowledge base schema (PostgreSQL dialect), of the cluster store and, through its twin
 * `schema-sqlite.ts` (same tables and columns, checked by the tests), of the embedded store.
 * Change both together. Migrations in `store/migrations/` are generated from this file with
 * drizzle-kit (`npx drizzle-kit generate --config store/drizzle.config.ts`); never edit them by hand.
 *
 * Invariants:
 * - Facts are keyed by (sha256, analyser, analyser_version) and written once: rows are immutable,
 *   a new analyser version adds rows beside the old ones.
 * - An `objects` row (and its `object_exports`) exists only with an `analyses` row of status `ok`,
 *   written in the same transaction; a `failed` analysis has no `objects` row.
 * - Layer records are keyed by (digest, extractor_version); `layer_files.ordinal` keeps tar order.
 * - Sizes, addresses and ids that may exceed 2^31 are `bigint` read as JS numbers (all < 2^53).
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  foreignKey,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/** One row per analysis attempt that reached a final outcome (retryable failures are not stored). */
export const analyses = pgTable(
  'analyses',
  {
    sha256: text('sha256').notNull(),
    analyser: text('analyser').notNull(),
    analyserVersion: integer('analyser_version').notNull(),
    status: text('status', { enum: ['ok', 'failed'] }).notNull(),
    /** `ErrorCode` of `infra/errors.ts` for failed analyses. */
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    durationMs: integer('duration_ms').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.sha256, t.analyser, t.analyserVersion] }),
    check('analyses_status_check', sql`${t.status} in ('ok', 'failed')`),
    check('analyses_failed_has_code', sql`${t.status} = 'ok' or ${t.errorCode} is not null`),
  ],
);

/** `ObjectFacts` of one ELF object: the queryable fields as columns, the whole value in `facts`. */
export const objects = pgTable(
  'objects',
  {
    sha256: text('sha256').notNull(),
    analyser: text('analyser').notNull(),
    analyserVersion: integer('analyser_version').notNull(),
    arch: text('arch').notNull(),
    elfType: text('elf_type').notNull(),
    interpreter: text('interpreter'),
    soname: text('soname'),
    needed: text('needed').array().notNull(),
    rpath: text('rpath').array().notNull(),
    runpath: text('runpath').array().notNull(),
    isStatic: boolean('is_static').notNull(),
    isPie: boolean('is_pie').notNull(),
    isGo: boolean('is_go').notNull(),
    isStripped: boolean('is_stripped').notNull(),
    /** The full `ObjectFacts` as the analyser returned it (jsonb: key order is not kept). */
    facts: jsonb('facts').notNull(),
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

/** One row per distinct reach of an object (`ObjectFacts.reaches`), by its index there. */
export const objectReaches = pgTable(
  'object_reaches',
  {
    sha256: text('sha256').notNull(),
    analyser: text('analyser').notNull(),
    analyserVersion: integer('analyser_version').notNull(),
    reach: integer('reach').notNull(),
    /** Syscall names of the object's architecture, sorted (`Reach.syscalls`). */
    syscalls: text('syscalls').array().notNull(),
    imports: text('imports').array().notNull(),
    unresolvedCount: integer('unresolved_count').notNull(),
    /** An indirect call is reachable: linking adds every loaded object's `addressTaken`. */
    indirect: boolean('indirect').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.sha256, t.analyser, t.analyserVersion, t.reach] }),
    foreignKey({
      name: 'object_reaches_objects_fk',
      columns: [t.sha256, t.analyser, t.analyserVersion],
      foreignColumns: [objects.sha256, objects.analyser, objects.analyserVersion],
    }).onDelete('cascade'),
    index('object_reaches_syscalls_idx').using('gin', t.syscalls),
  ],
);

/**
 * One row per exported function (`ObjectFacts.exports`) and the index of its reach; entry,
 * initialisers and `addressTaken` stay in `facts` only.
 */
export const objectExports = pgTable(
  'object_exports',
  {
    sha256: text('sha256').notNull(),
    analyser: text('analyser').notNull(),
    analyserVersion: integer('analyser_version').notNull(),
    /** As the analyser names it: `name`, `name@VERSION` or `name@@VERSION`. */
    symbol: text('symbol').notNull(),
    /** `symbol` without its version: what `exportsNamed` and cross-object joins look up. */
    name: text('name').notNull(),
    address: bigint('address', { mode: 'number' }).notNull(),
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

/** `LayerRecord` without its files. */
export const layers = pgTable(
  'layers',
  {
    digest: text('digest').notNull(),
    extractorVersion: integer('extractor_version').notNull(),
    diffId: text('diff_id').notNull(),
    mediaType: text('media_type').notNull(),
    compressedBytes: bigint('compressed_bytes', { mode: 'number' }).notNull(),
    uncompressedBytes: bigint('uncompressed_bytes', { mode: 'number' }).notNull(),
    whiteouts: text('whiteouts').array().notNull(),
    opaqueDirs: text('opaque_dirs').array().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.digest, t.extractorVersion] })],
);

/** `LayerFile`s of a layer; NULL stands for an absent optional field. */
export const layerFiles = pgTable(
  'layer_files',
  {
    digest: text('digest').notNull(),
    extractorVersion: integer('extractor_version').notNull(),
    /** Position in `LayerRecord.files` (tar order), from 0. */
    ordinal: integer('ordinal').notNull(),
    path: text('path').notNull(),
    type: text('type').notNull(),
    mode: integer('mode').notNull(),
    uid: bigint('uid', { mode: 'number' }).notNull(),
    gid: bigint('gid', { mode: 'number' }).notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
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

/** A scan of an image reference (for later issues). */
export const images = pgTable(
  'images',
  {
    /** Normalised reference as the user typed it (`ResolvedImage.reference`). */
    reference: text('reference').notNull(),
    manifestDigest: text('manifest_digest').notNull(),
    configDigest: text('config_digest').notNull(),
    /** `os/architecture[/variant]`. */
    platform: text('platform').notNull(),
    /** `ImageConfig`. */
    config: jsonb('config').notNull(),
    scannedAt: timestamp('scanned_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.reference, t.manifestDigest] }),
    index('images_manifest_digest_idx').on(t.manifestDigest),
  ],
);

/** Layers of an image manifest, bottom first (for later issues). */
export const imageLayers = pgTable(
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

/** A generated policy per image manifest and generator version (for later issues). */
export const policies = pgTable(
  'policies',
  {
    manifestDigest: text('manifest_digest').notNull(),
    generatorVersion: integer('generator_version').notNull(),
    /** Syscall names allowed by the profile, sorted. */
    syscalls: text('syscalls').array().notNull(),
    /** Docker/OCI seccomp profile JSON. */
    profile: jsonb('profile').notNull(),
    report: jsonb('report').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.manifestDigest, t.generatorVersion] })],
);

/**
 * Finished scans (`store/scan-cache.ts` in the embedded mode): the key names the manifest digest
 * and every version the result depends on, so a row never changes once written.
 */
export const scanResults = pgTable('scan_results', {
  key: text('key').primaryKey(),
  /** The result's JSON text as written: `jsonb` would reorder keys, and outputs are compared byte for byte. */
  result: text('result').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Registry tags that a crawl or rescan resolved, and what each pointed at when last checked
 * (`coordinator/crawl/`). A tag is current when its `digest` is what the registry answers and its
 * `state` the analysis state of this version (`coordinator/crawl/state.ts`): then nothing is scanned.
 */
export const registryTags = pgTable(
  'registry_tags',
  {
    registry: text('registry').notNull(),
    repository: text('repository').notNull(),
    tag: text('tag').notNull(),
    /** What the tag resolved to: an image manifest or an index. */
    digest: text('digest').notNull(),
    /** The analysis state its scans were made in. */
    state: text('state').notNull(),
    /** `TagScan[]`: one per platform scanned (platform, manifest digest, allowed syscalls). */
    scans: jsonb('scans').notNull(),
    /** The reason of the last attempt's failure (then `scans` is empty and the tag is tried again). */
    error: text('error'),
    checkedAt: timestamp('checked_at', { withTimezone: true }).notNull().defaultNow(),
    changedAt: timestamp('changed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.registry, t.repository, t.tag] })],
);

/** Each change of a tag: the digest it moved from (NULL when first seen) and the syscalls that changed. */
export const tagHistory = pgTable(
  'tag_history',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    registry: text('registry').notNull(),
    repository: text('repository').notNull(),
    tag: text('tag').notNull(),
    fromDigest: text('from_digest'),
    toDigest: text('to_digest').notNull(),
    /** Syscalls allowed now and not before, and the reverse, over all platforms, sorted. */
    added: text('added').array().notNull(),
    removed: text('removed').array().notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('tag_history_tag_idx').on(t.registry, t.repository, t.tag)],
);

/**
 * The reverse index of profiles, for fleet queries ("which images need ptrace?"): one row per
 * image manifest scanned in an analysis state, the syscalls its profile allows with one witness
 * each, and which tags point at it. Join tables hold integer ids, not digests or names.
 */
export const imageProfiles = pgTable(
  'image_profiles',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    manifestDigest: text('manifest_digest').notNull(),
    state: text('state').notNull(),
    platform: text('platform').notNull(),
    syscallCount: integer('syscall_count').notNull(),
    /** Docker's default profile was added: the analysis was unsure. */
    fallback: boolean('fallback').notNull(),
    /** The decisions that made it unsure (`{ kind, detail, path? }[]`), empty without fallback. */
    reasons: jsonb('reasons').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('image_profiles_manifest_state_idx').on(t.manifestDigest, t.state), index('image_profiles_syscall_count_idx').on(t.syscallCount)],
);

/** Syscall names by id, for the join table. */
export const syscallNames = pgTable('syscall_names', {
  id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
  name: text('name').notNull().unique(),
});

/** A syscall a profile allows, and why: the witness path from the entrypoint, ` → ` joined. */
export const profileSyscalls = pgTable(
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

/** The profiles a registry tag points at now (one per platform scanned), rewritten with the tag. */
export const tagProfiles = pgTable(
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
    // The order in which queries page tags (code points, as SQLite's BINARY): walked in order, a
    // page of "tags allowing X" costs a probe per tag instead of a sort of every match.
    index('tag_profiles_order_idx').on(sql`${t.registry} collate "C"`, sql`${t.repository} collate "C"`, sql`${t.tag} collate "C"`, t.profileId),
    foreignKey({ name: 'tag_profiles_profile_fk', columns: [t.profileId], foreignColumns: [imageProfiles.id] }).onDelete('cascade'),
  ],
);
