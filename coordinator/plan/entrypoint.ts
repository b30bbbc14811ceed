/**
 * Docker's process start rules, as far as `inspect` needs them: the command line is Entrypoint
 * followed by Cmd (Cmd alone when there is no Entrypoint); a program name without `/` is looked
 * up in the image's `PATH` (Docker's default when the image sets none); a relative path is
 * relative to WorkingDir. Shell-form instructions are already stored as `["/bin/sh", "-c", ...]`.
 */
import type { ImageConfig } from '../../extractor/types.js';
import { DockergateError } from '../../infra/errors.js';
import type { ImageTree, TreeFile } from './image-tree.js';

/** The PATH runc uses when the image's environment has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ResolvedEntrypoint {
  readonly argv: readonly string[];
  /** The path as found (first PATH hit), and the file after following symlinks. */
  readonly path?: string;
  readonly file?: TreeFile;
  readonly problem?: string;
}

export function commandLine(config: ImageConfig): string[] {
  return [...(config.entrypoint ?? []), ...(config.cmd ?? [])];
}

export function envValue(env: readonly string[], name: string): string | undefined {
  const prefix = `${name}=`;
  // The last assignment wins, as in execve's environment handling by shells and runc.
  for (let i = env.length - 1; i >= 0; i--) if (env[i]!.startsWith(prefix)) return env[i]!.slice(prefix.length);
  return undefined;
}

/**
 * Where a name is looked for, in order: a name with `/` as is (relative to `workingDir`), else in
 * each absolute entry among the first `maxPathEntries` of `path` (the runtime's default when unset).
 */
export function searchCandidates(name: string, path: string | undefined, workingDir: string | undefined, maxPathEntries = Number.POSITIVE_INFINITY): string[] {
  if (name.includes('/')) return [name.startsWith('/') ? name : `${workingDir || '/'}/${name}`];
  return (path ?? DEFAULT_PATH)
    .split(':')
    .slice(0, maxPathEntries)
    .filter((dir) => dir.startsWith('/'))
    .map((dir) => `${dir}/${name}`);
}

/**
 * Finds a program as runc and execvp do: a name with `/` as is (relative to WorkingDir), else the
 * first PATH entry holding a regular file with an execute bit. A symlink loop on one entry is that
 * entry's problem (ELOOP), reported in `failures`, and the search goes on.
 */
export function findExecutable(
  name: string,
  config: ImageConfig,
  tree: ImageTree,
  maxPathEntries = Number.POSITIVE_INFINITY,
): { path: string; file: TreeFile } | { candidates: string[]; failures: string[] } {
  const candidates = searchCandidates(name, envValue(config.env, 'PATH'), config.workingDir, maxPathEntries);
  const failures: string[] = [];
  for (const candidate of candidates) {
    let file: TreeFile | undefined;
    try {
      file = tree.tryResolve(candidate);
    } catch (err) {
      if (!(err instanceof DockergateError)) throw err;
      failures.push(err.message);
      continue;
    }
    if (file && file.type === 'file' && (file.mode & 0o111) !== 0) return { path: candidate, file };
  }
  return { candidates, failures };
}

export function resolveEntrypoint(config: ImageConfig, tree: ImageTree): ResolvedEntrypoint {
  const argv = commandLine(config);
  const program = argv[0];
  if (!program) return { argv, problem: 'the image has neither Entrypoint nor Cmd' };
  const found = findExecutable(program, config, tree);
  if ('file' in found) return { argv, path: found.path, file: found.file };
  const detail = found.failures.length > 0 ? `; ${found.failures.join('; ')}` : '';
  return { argv, problem: `${program}: executable not found in the image (looked in ${found.candidates.join(', ')})${detail}` };
}
