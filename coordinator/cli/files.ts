/**
 * Files the user names on the command line (profiles to read, outputs to write), read and written
 * so that every failure is a typed error naming the file and its role (`infra/errors.ts` fileError):
 * `dockergate: not-found: profile /tmp/p.json: no such file or directory`, never a bare `ENOENT`.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileError, InvalidInputError, NotFoundError } from '../../infra/errors.js';

/** The text of `file`, read for the role `what` ("profile", "token file"). */
export async function readNamedFile(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw fileError(err, file, what);
  }
}

/** `file` parsed as JSON; a parse error names the file. */
export async function readJsonFile(file: string, what: string): Promise<unknown> {
  const text = await readNamedFile(file, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInputError(`${what} ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes `text` to `file` (an output of role `what`). */
export async function writeNamedFile(file: string, text: string | Uint8Array, what: string): Promise<void> {
  try {
    await fs.writeFile(file, text);
  } catch (err) {
    throw fileError(err, file, what);
  }
}

/**
 * Fails at once, before any long work, when `file` could not be written: its directory is missing
 * or not writable, or it is itself a directory. (The write can still fail later, e.g. on a full
 * disk; that failure names the file too.)
 */
export async function checkWritable(file: string, what: string): Promise<void> {
  const stat = await fs.stat(file).catch(() => undefined);
  if (stat?.isDirectory()) throw new InvalidInputError(`${what} ${file} is a directory`);
  const target = stat ? file : path.dirname(path.resolve(file));
  try {
    if (!stat && !(await fs.stat(target)).isDirectory()) throw new NotFoundError(`${what} ${file}: ${target} is not a directory`);
    await fs.access(target, fsConstants.W_OK);
  } catch (err) {
    throw fileError(err, file, what);
  }
}
