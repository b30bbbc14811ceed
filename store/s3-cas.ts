/**
 * The cluster CAS: blobs in any S3-compatible store, under the same `blobs/sha256/<2>/<sha256>`
 * keys as the directory CAS. Same invariants (`Cas` in cas.ts): a blob is stored only under the
 * SHA-256 of its bytes, `put*` is a no-op when the key exists (`HEAD` before `PUT`), and every read
 * verifies the hash, so a corrupt or substituted object is an error, never an input.
 *
 * Checksums: the SDK's flexible checksums (CRC trailers in aws-chunked bodies) are sent only when
 * an operation requires them, since several S3-compatible servers reject them; integrity is ours.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { DigestMismatchError, NotFoundError, UnavailableError } from '../infra/errors.js';
import { roundTrip } from '../infra/round-trips.js';
import { type Cas, casKey, type Sha256Hex } from './cas.js';

export interface S3CasConfig {
  /** `S3_ENDPOINT`; the AWS endpoint for the region when absent. */
  readonly endpoint?: string;
  /** `S3_BUCKET`. */
  readonly bucket: string;
  /** `S3_REGION` (default us-east-1). */
  readonly region?: string;
  /** `S3_FORCE_PATH_STYLE`: `http://host/bucket/key` instead of `http://bucket.host/key`. */
  readonly forcePathStyle?: boolean;
  /** Explicit keys; otherwise the SDK's chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, roles). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Where `putFile` callers spool (default: a directory under the OS temp dir). */
  readonly spoolDir?: string;
}

/** Objects above this size go up in parts (lib-storage), so no blob is ever held whole in memory. */
const MULTIPART_THRESHOLD = 16 * 1024 * 1024;

export class S3Cas implements Cas {
  readonly spoolDir: string;
  private readonly client: S3Client;
  private readonly where: string;

  constructor(private readonly config: S3CasConfig) {
    // The SDK warns on every start under Node 20 that its future releases will need Node 22; the
    // version in package-lock.json supports Node 20, which this project targets.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: config.region ?? 'us-east-1',
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.forcePathStyle ?? false,
      ...(config.credentials ? { credentials: config.credentials } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
    // Every request (with the SDK's retries) is an `s3` round trip; a body read after it is another (get).
    this.client.middlewareStack.add((next) => (args) => roundTrip('s3', () => next(args)), { step: 'initialize', name: 'dockergateRoundTrips' });
    this.where = `S3 bucket ${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
    this.spoolDir = config.spoolDir ?? path.join(os.tmpdir(), 'dockergate-spool');
  }

  /** Checks that the bucket answers, creating it when the store has none by that name. */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
    } catch (err) {
      if (!isNotFound(err)) throw this.unavailable(err);
      try {
        await this.client.send(new CreateBucketCommand({ Bucket: this.config.bucket }));
      } catch (createErr) {
        // Another process of the cluster created it first.
        if (createErr instanceof S3ServiceException && (createErr.name === 'BucketAlreadyOwnedByYou' || createErr.name === 'BucketAlreadyExists')) return;
        throw this.unavailable(createErr);
      }
    }
  }

  async has(sha256: Sha256Hex): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: casKey(sha256) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.unavailable(err);
    }
  }

  async put(sha256: Sha256Hex, bytes: Uint8Array): Promise<void> {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256) throw new DigestMismatchError(sha256, actual, 'CAS put');
    if (await this.has(sha256)) return;
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.config.bucket, Key: casKey(sha256), Body: bytes, ContentLength: bytes.length }));
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  async putFile(sha256: Sha256Hex, filePath: string): Promise<void> {
    try {
      if (await this.has(sha256)) return;
      const { size } = await fs.stat(filePath);
      if (size <= MULTIPART_THRESHOLD) {
        await this.client.send(new PutObjectCommand({ Bucket: this.config.bucket, Key: casKey(sha256), Body: await fs.readFile(filePath), ContentLength: size }));
      } else {
        const upload = new Upload({ client: this.client, params: { Bucket: this.config.bucket, Key: casKey(sha256), Body: createReadStream(filePath) }, partSize: MULTIPART_THRESHOLD });
        await upload.done();
      }
    } catch (err) {
      if (err instanceof UnavailableError) throw err;
      throw this.unavailable(err);
    } finally {
      await fs.rm(filePath, { force: true });
    }
  }

  async get(sha256: Sha256Hex): Promise<Buffer> {
    let bytes: Buffer;
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: casKey(sha256) }));
      bytes = Buffer.from(await roundTrip('s3', () => answer.Body!.transformToByteArray(), true));
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(`blob sha256:${sha256} is not in ${this.where}`, { cause: err });
      throw this.unavailable(err);
    }
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256) throw new DigestMismatchError(sha256, actual, `CAS object ${casKey(sha256)} in ${this.where} is corrupt`);
    return bytes;
  }

  close(): void {
    this.client.destroy();
  }

  private unavailable(err: unknown): UnavailableError {
    const detail = err instanceof S3ServiceException ? `${err.name} (HTTP ${err.$metadata.httpStatusCode ?? '?'})` : err instanceof Error ? err.message || err.name : String(err);
    return new UnavailableError(`${this.where} is unreachable or refused the request (S3_ENDPOINT, S3_BUCKET): ${detail}`, { cause: err });
  }
}

function isNotFound(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  return err.$metadata.httpStatusCode === 404 || err.name === 'NotFound' || err.name === 'NoSuchKey' || err.name === 'NoSuchBucket';
}
