import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DigestMismatchError, InvalidInputError, NotFoundError } from '../infra/errors.js';

/** A SHA-256 in lowercase hex, the only key of the CAS. */
export type Sha256Hex = string;

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function assertSha256Hex(value: string): Sha256Hex {
  if (!SHA256_HEX.test(value)) throw new InvalidInputError(`not a sha256 hex digest: ${JSON.stringify(value)}`);
  return value;
}

/** `blobs/sha256/<first 2 hex>/<sha256>`: the key layout shared by the directory and S3 stores. */
export function casKey(sha256: Sha256Hex): string {
  assertSha256Hex(sha256);
  return `blobs/sha256/${sha256.slice(0, 2)}/${sha256}`;
}

/**
 * Content-addressed blob store. Invariants: a blob is stored under the SHA-256 of its bytes and
 * nothing else; `put*` is a no-op when the blob is present; every read verifies the hash.
 */
export interface Cas {
  has(sha256: Sha256Hex): Promise<boolean>;
  /** Stores bytes already in memory; throws `DigestMismatchError` if they do not hash to `sha256`. */
  put(sha256: Sha256Hex, bytes: Uint8Array): Promise<void>;
  /** Moves a spooled file (already hashed by the caller) into the store; consumes `filePath`. */
  putFile(sha256: Sha256Hex, filePath: string): Promise<void>;
  get(sha256: Sha256Hex): Promise<Buffer>;
  /** A directory where callers may spool files destined for `putFile` (same filesystem). */
  readonly spoolDir: string;
}

/** The embedded CAS: a directory under the user's cache dir. */
export class DirCas implements Cas {
  readonly spoolDir: string;

  constructor(readonly root: string) {
    this.spoolDir = path.join(root, 'tmp');
  }

  private pathOf(sha256: Sha256Hex): string {
    return path.join(this.root, casKey(sha256));
  }

  async has(sha256: Sha256Hex): Promise<boolean> {
    try {
      await fs.access(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

  async put(sha256: Sha256Hex, bytes: Uint8Array): Promise<void> {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256) throw new DigestMismatchError(sha256, actual, 'CAS put');
    if (await this.has(sha256)) return;
    await fs.mkdir(this.spoolDir, { recursive: true });
    const tmp = path.join(this.spoolDir, `put-${randomUUID()}`);
    try {
      await fs.writeFile(tmp, bytes);
      await this.putFile(sha256, tmp);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async putFile(sha256: Sha256Hex, filePath: string): Promise<void> {
    const target = this.pathOf(sha256);
    if (await this.has(sha256)) {
      await fs.rm(filePath, { force: true });
      return;
    }
    await fs.mkdir(path.dirname(target), { recursive: true });
    // rename(2) is atomic: concurrent writers of the same blob leave one complete copy.
    await fs.rename(filePath, target);
  }

  async get(sha256: Sha256Hex): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(this.pathOf(sha256));
    } catch (err) {
      throw new NotFoundError(`blob sha256:${sha256} is not in the CAS`, { cause: err });
    }
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256) throw new DigestMismatchError(sha256, actual, `CAS blob ${casKey(sha256)} is corrupt`);
    return bytes;
  }
}
