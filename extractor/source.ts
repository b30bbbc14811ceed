import type { Limits } from '../infra/limits.js';
import type { SourceReference } from './reference.js';
import type { OpenedImage, Platform } from './types.js';

export interface SourceOptions {
  /** Platform to pick from an index (default linux/amd64). */
  readonly platform: Platform;
  readonly limits: Limits;
  /** Allow plain http and unverified TLS to non-loopback registries. */
  readonly insecure: boolean;
  /** A directory for temporary files (daemon exports); same filesystem as the CAS. */
  readonly spoolDir: string;
  /** `~/.docker/config.json` or `$DOCKER_CONFIG/config.json`, for registry credentials. */
  readonly dockerConfigPath?: string;
  /** `dir:` sources have no image config: the user gives it. */
  readonly dirConfig?: DirImageConfig;
  readonly signal?: AbortSignal;
}

export interface DirImageConfig {
  readonly entrypoint?: readonly string[];
  readonly cmd?: readonly string[];
  readonly env?: readonly string[];
  readonly workingDir?: string;
  readonly user?: string;
}

/**
 * One way of reading images. Every source yields the same `OpenedImage`: the config, layer
 * descriptors bottom first, and verified layer bytes. Sources know nothing of files or trees.
 */
export interface ImageSource<R extends SourceReference = SourceReference> {
  readonly transport: R['transport'];
  open(reference: R, options: SourceOptions): Promise<OpenedImage>;
  /**
   * The digest `open` would report, when the source can tell it cheaply without opening (the
   * daemon's image ID): lets a rescan find its cached result before exporting anything.
   */
  peekDigest?(reference: R, options: SourceOptions): Promise<string | undefined>;
}
