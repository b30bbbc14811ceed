import os from 'node:os';
import path from 'node:path';

/**
 * Where the embedded mode keeps its state: `$DOCKERGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/dockergate`,
 * else `~/.cache/dockergate`. Holds the CAS (`blobs/`), cached layer records (`layers/`) and spool
 * files (`tmp/`), all safe to delete.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKERGATE_CACHE_DIR) return path.resolve(env.DOCKERGATE_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'dockergate');
}
