/**
 * Docker's process start rules, as far as `inspect` needs them: the command line is Entrypoint
 * followed by Cmd (Cmd alone when there is no Entrypoint); a program name without `/` is looked
 * up in the image's `PATH` (Docker's default when the image sets none); a relative path is
 * relative to WorkingDir. Shell-form instructions are already stored as `["/bin/sh", "-c", ...]`.
 */
import type { ImageConfig } from '../extractor/types.js';
import { DockergateError } from '../infra/errors.js';
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

export function resolveEntrypoint(config: ImageConfig, tree: ImageTree): ResolvedEntrypoint {
  const argv = commandLine(config);
  const program = argv[0];
  if (!program) return { argv, problem: 'the image has neither Entrypoint nor Cmd' };
  const candidates = program.includes('/')
    ? [program.startsWith('/') ? program : `${config.workingDir || '/'}/${program}`]
    : (envValue(config.env, 'PATH') ?? DEFAULT_PATH)
        .split(':')
        .filter((dir) => dir.startsWith('/'))
        .map((dir) => `${dir}/${program}`);
  const failures: string[] = [];
  for (const candidate of candidates) {
    let file: TreeFile | undefined;
    try {
      file = tree.tryResolve(candidate);
    } catch (err) {
      // A symlink loop on one PATH entry is that entry's problem, as ELOOP is for execvp.
      if (!(err instanceof DockergateError)) throw err;
      failures.push(err.message);
      continue;
    }
    // runc's lookup accepts a regular file with any execute bit.
    if (file && file.type === 'file' && (file.mode & 0o111) !== 0) return { argv, path: candidate, file };
  }
  const detail = failures.length > 0 ? `; ${failures.join('; ')}` : '';
  return { argv, problem: `${program}: executable not found in the image (looked in ${candidates.join(', ')})${detail}` };
}
