/**
 * Domain types of image reading: what a source yields and what a layer becomes.
 * Wire shapes of work units live in `worker/contracts.ts`, not here.
 */
import type { Readable } from 'node:stream';

/** `sha256:<hex>` (OCI image spec `descriptor.md`, digests). Only sha256 is accepted. */
export type Digest = `sha256:${string}`;

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

/** The parts of the image config (OCI `config.md`) that the pipeline uses. */
export interface ImageConfig {
  readonly platform: Platform;
  readonly entrypoint: readonly string[] | null;
  readonly cmd: readonly string[] | null;
  readonly env: readonly string[];
  readonly workingDir: string;
  readonly user: string;
  /** Docker's HEALTHCHECK test, e.g. `["CMD-SHELL", "curl -f localhost"]`; null when absent. */
  readonly healthcheck: readonly string[] | null;
  readonly labels: Readonly<Record<string, string>>;
  /** `rootfs.diff_ids`: sha256 of each uncompressed layer tar, bottom first. */
  readonly diffIds: readonly Digest[];
}

/** One layer as the manifest names it. `size` is the descriptor's claim, never trusted as a bound. */
export interface LayerDescriptor {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
}

/** An image resolved by a source: everything needed to plan per-layer work. */
export interface ResolvedImage {
  /** The reference as the user typed it, normalised (`docker://127.0.0.1:5000/app:1`). */
  readonly reference: string;
  /** Digest of the manifest bytes; for sources without a manifest (dir:, docker save), of the config. */
  readonly manifestDigest: Digest;
  readonly configDigest: Digest;
  readonly config: ImageConfig;
  /** Bottom layer first, as in the manifest. */
  readonly layers: readonly LayerDescriptor[];
}

/** An opened image: its metadata and a way to read each layer's blob bytes. */
export interface OpenedImage extends ResolvedImage {
  /**
   * The layer's bytes as stored (compressed per its media type). Implementations verify the
   * digest and the declared size while streaming and fail the stream on mismatch.
   */
  openLayer(layer: LayerDescriptor, signal?: AbortSignal): Promise<Readable>;
  close(): Promise<void>;
}

export type FileType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** Classification by magic bytes, never by the exec bit. */
export type FileKind = 'elf' | 'script' | 'other';

/** One entry of a layer tar after path normalisation (whiteouts are kept apart). */
export interface LayerFile {
  /** Absolute, normalised path inside the image: `/usr/bin/env`. */
  readonly path: string;
  readonly type: FileType;
  /** Permission and special bits (07777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Symlink target as written (may be relative); hard link target as an absolute image path. */
  readonly linkTarget?: string;
  /** Regular files (and hard links to files of the same layer): SHA-256 of the content. */
  readonly sha256?: string;
  readonly kind?: FileKind;
  /** ELF files: the e_machine name (`x86_64`, `aarch64`, ...). */
  readonly elfMachine?: string;
  /** Scripts: the `#!` line's interpreter and argument. */
  readonly interpreter?: string;
}

/**
 * What one layer contributes, computed once per (layer digest, extractor version).
 * Whiteouts are data (OCI image spec `layer.md`, "Whiteouts"): `whiteouts` are deleted paths,
 * `opaqueDirs` are directories whose lower-layer children are hidden.
 */
export interface LayerRecord {
  readonly digest: Digest;
  /** SHA-256 of the uncompressed tar (`rootfs.diff_ids` entry). */
  readonly diffId: Digest;
  readonly mediaType: string;
  readonly compressedBytes: number;
  readonly uncompressedBytes: number;
  readonly extractorVersion: number;
  readonly files: readonly LayerFile[];
  readonly whiteouts: readonly string[];
  readonly opaqueDirs: readonly string[];
}
