import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, LimitExceededError } from '../infra/errors.js';
import type { Digest } from './types.js';

export interface VerifyOptions {
  /** The descriptor's digest: checked when the stream ends. */
  readonly digest: Digest;
  /** The descriptor's size, when it has one: more bytes fail at once, fewer fail at the end. */
  readonly size?: number;
  /** Hard bound whatever the descriptor says. */
  readonly maxBytes: number;
  readonly limitName: string;
  readonly what: string;
}

/**
 * Passes bytes through while hashing and counting them. Fails the stream as soon as it sees more
 * bytes than declared or allowed, and at the end when the SHA-256 or the length differs
 * (OCI image spec `descriptor.md`: consumers MUST verify the digest and size of fetched content).
 */
export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  constructor(private readonly options: VerifyOptions) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    const { size, maxBytes, limitName, what, digest } = this.options;
    if (size !== undefined && this.bytes > size) {
      callback(new DigestMismatchError(`${size} bytes`, `more than ${size} bytes`, `${what} ${digest} is larger than declared`));
      return;
    }
    if (this.bytes > maxBytes) {
      callback(new LimitExceededError(limitName, maxBytes, `${what} ${digest}`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const { size, what, digest } = this.options;
    if (size !== undefined && this.bytes !== size) {
      callback(new DigestMismatchError(`${size} bytes`, `${this.bytes} bytes`, `${what} ${digest} is truncated`));
      return;
    }
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual !== digest) {
      callback(new DigestMismatchError(digest, actual, `${what} content does not match its digest`));
      return;
    }
    callback();
  }
}

/** Hashes and counts a stream without judging it; `digest()` is valid after the stream ended. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly limitName: string,
    private readonly what: string,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(new LimitExceededError(this.limitName, this.maxBytes, this.what));
      return;
    }
    this.hash.update(chunk);
    this.onProgress?.(chunk.length);
    callback(null, chunk);
  }

  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

export function sha256Digest(bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
