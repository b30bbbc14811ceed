/**
 * Every limit dockergate enforces on untrusted input, in one place, in units.
 *
 * Images, manifests, layers and binaries come from anywhere. Nothing read from them (a size in a
 * manifest, a tar header, an ELF header) is trusted to bound work or memory: these limits do, and
 * each is enforced by a counting stream or an explicit check that throws `LimitExceededError`.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export interface Limits {
  /** A manifest, index or image config is JSON held in memory. */
  readonly maxManifestBytes: number;
  readonly maxConfigBytes: number;
  /** Entries of an image index (manifest list) and layers of one image. */
  readonly maxIndexEntries: number;
  readonly maxLayersPerImage: number;
  /** Compressed bytes of one layer blob, whatever its descriptor claims. */
  readonly maxLayerBlobBytes: number;
  /** Uncompressed bytes of one layer tar: the decompression-bomb bound. */
  readonly maxLayerTarBytes: number;
  /** Uncompressed bytes / compressed bytes of one layer, checked once past `bombRatioGraceBytes`. */
  readonly maxCompressionRatio: number;
  readonly bombRatioGraceBytes: number;
  /** Tar entries in one layer, and files in the merged image tree. */
  readonly maxEntriesPerLayer: number;
  readonly maxFilesPerImage: number;
  /**
   * Bytes one layer's record may hold: its paths and link targets plus ~160 bytes per entry (the
   * record is one JSON document; V8 strings stop at 2^29 characters).
   */
  readonly maxLayerRecordBytes: number;
  /** Bytes of one path and of one symlink target, and components of one path. */
  readonly maxPathBytes: number;
  readonly maxPathDepth: number;
  /** Symlinks followed while resolving one path (Linux's MAXSYMLINKS is 40). */
  readonly maxSymlinkHops: number;
  /** One regular file stored in the CAS (ELF and scripts only). */
  readonly maxBlobBytes: number;
  /** Small JSON members of an archive (manifest.json, index.json, configs) read into memory. */
  readonly maxArchiveMetadataBytes: number;
  /** Bytes sniffed from the head of a file to classify it (ELF magic, `#!` line). */
  readonly classifyHeadBytes: number;
  /**
   * HTTP: one request's time (a layer blob's: until its headers), redirects followed, and the
   * slowest transfer of a layer body accepted: a blob of S bytes must arrive within
   * `httpTimeoutMs + S / minBlobBytesPerSecond`, whatever the server trickles.
   */
  readonly httpTimeoutMs: number;
  readonly minBlobBytesPerSecond: number;
  readonly maxRedirects: number;
  /**
   * Registry listings (catalog, tags) of a crawl: bytes of one page (a larger page is asked for
   * again with fewer entries), pages of one listing, and names of one listing.
   */
  readonly maxRegistryPageBytes: number;
  readonly maxRegistryPages: number;
  readonly maxRegistryEntries: number;
  /** ELF analysis: one object's size, and counts of what its headers claim. */
  readonly maxElfBytes: number;
  readonly maxElfSections: number;
  readonly maxElfSymbols: number;
  readonly maxElfRelocations: number;
  readonly maxFdes: number;
  readonly maxGoFunctions: number;
  /** Instructions decoded for one object, and wall time of one object's analysis. */
  readonly maxInstructions: number;
  readonly analysisTimeoutMs: number;
  /**
   * The radare2 analyser (`--analyser radare2`): wall time and address space of one radare2
   * process. radare2's full analysis (`aaa`) is slower than the native one on large Go binaries.
   */
  readonly radare2TimeoutMs: number;
  readonly radare2MemoryBytes: number;
  /**
   * Planning a scan. Shell source parsed for one script or `sh -c` string (the parser runs
   * synchronously at about 30 KB/s of dense commands, so bytes bound its time); `#!` interpreters
   * followed in one chain (Linux stops at 4: BINPRM_MAX_RECURSION, then ELOOP); programs the
   * planner follows in one scan; entries of one search path (PATH, LD_LIBRARY_PATH, DT_RPATH,
   * DT_RUNPATH) and DT_NEEDED names of one object that are considered; entries read from an
   * image's /etc/ld.so.cache. Past any of these the scan reports a decision and falls back to
   * Docker's default profile: never a silent cut.
   */
  readonly maxShellScriptBytes: number;
  /** Nesting of shell function calls, `.`/`source` and `eval` while a script is evaluated (and rounds of sourced files read). */
  readonly maxShellCallDepth: number;
  readonly maxInterpreterDepth: number;
  readonly maxProgramsPerScan: number;
  /** Distinct objects (programs and libraries) one scan analyses or reads the facts of. */
  readonly maxObjectsPerScan: number;
  readonly maxSearchPathEntries: number;
  readonly maxNeededPerObject: number;
  readonly maxLdCacheEntries: number;
  /** An image's configuration file the planner reads (ld.so.cache, nsswitch.conf, musl's path file). */
  readonly maxImageConfigFileBytes: number;
  /**
   * Wall-clock deadlines. One image's whole scan or inspection (a typed error past it: the image
   * fails, the crawl goes on); one layer's extraction unit, fetch included (the unit fails with its
   * reason, never retried); the planner's following and linking of one image, and the walk of one
   * script's evaluation (past either: a decision, and Docker's default profile instead).
   */
  readonly scanTimeoutMs: number;
  readonly extractTimeoutMs: number;
  readonly planTimeoutMs: number;
  readonly shellParseTimeoutMs: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxManifestBytes: 4 * MiB,
  maxConfigBytes: 8 * MiB,
  maxIndexEntries: 1_000,
  maxLayersPerImage: 256,
  maxLayerBlobBytes: 16 * GiB,
  maxLayerTarBytes: 32 * GiB,
  maxCompressionRatio: 200,
  bombRatioGraceBytes: 64 * MiB,
  maxEntriesPerLayer: 2_000_000,
  maxFilesPerImage: 4_000_000,
  maxLayerRecordBytes: 256 * MiB,
  maxPathBytes: 4 * KiB,
  maxPathDepth: 256,
  maxSymlinkHops: 40,
  maxBlobBytes: 2 * GiB,
  maxArchiveMetadataBytes: 16 * MiB,
  classifyHeadBytes: 256,
  httpTimeoutMs: 5 * 60_000,
  minBlobBytesPerSecond: 64 * KiB,
  maxRedirects: 5,
  maxRegistryPageBytes: 4 * MiB,
  maxRegistryPages: 10_000,
  maxRegistryEntries: 1_000_000,
  maxElfBytes: 512 * MiB,
  maxElfSections: 4_096,
  maxElfSymbols: 2_000_000,
  maxElfRelocations: 4_000_000,
  maxFdes: 1_000_000,
  maxGoFunctions: 1_000_000,
  maxInstructions: 60_000_000,
  analysisTimeoutMs: 120_000,
  radare2TimeoutMs: 600_000,
  radare2MemoryBytes: 8 * 1024 * MiB,
  maxShellScriptBytes: 128 * KiB,
  maxShellCallDepth: 32,
  maxInterpreterDepth: 4,
  maxProgramsPerScan: 2_000,
  maxObjectsPerScan: 20_000,
  maxSearchPathEntries: 256,
  maxNeededPerObject: 1_024,
  maxLdCacheEntries: 65_536,
  maxImageConfigFileBytes: 16 * MiB,
  scanTimeoutMs: 60 * 60_000,
  extractTimeoutMs: 30 * 60_000,
  planTimeoutMs: 10 * 60_000,
  shellParseTimeoutMs: 10_000,
});

/** Limits with some values overridden (tests use small ones to exercise each bound quickly). */
export function limitsWith(overrides: Partial<Limits>): Limits {
  return Object.freeze({ ...DEFAULT_LIMITS, ...overrides });
}

/**
 * Media types of the layers dockergate can read (OCI image spec `media-types.md`, Docker image
 * manifest v2 schema 2), mapped to their compression. Checked before any work is dispatched.
 * Foreign/non-distributable layers are readable the same way when a source holds their bytes.
 */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

export const LAYER_MEDIA_TYPES: ReadonlyMap<string, LayerCompression> = new Map([
  ['application/vnd.oci.image.layer.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
  ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
]);
