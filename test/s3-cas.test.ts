/**
 * The S3 CAS against a real S3-protocol server on loopback (s3rver), through @aws-sdk/client-s3:
 * the same keys and invariants as the directory CAS.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DigestMismatchError, NotFoundError, UnavailableError } from '../infra/errors.js';
import { casKey } from '../store/cas.js';
import { S3Cas } from '../store/s3-cas.js';
import { startTestS3, type TestS3 } from './helpers/s3.js';

let s3: TestS3;
before(async () => {
  s3 = await startTestS3();
});
after(async () => {
  await s3.close();
});

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

test('blobs are stored under blobs/sha256/<2>/<sha256>, once, and read back verified', async () => {
  const cas = new S3Cas(s3.config('cas-basic'));
  await cas.ensureBucket();
  const bytes = randomBytes(4096);
  const digest = sha(bytes);
  assert.equal(await cas.has(digest), false);
  await cas.put(digest, bytes);
  assert.equal(await cas.has(digest), true);
  assert.deepEqual(await cas.get(digest), bytes);
  // The object is where the directory CAS would put it, read with a plain S3 client.
  const raw = new S3Client(s3.config('cas-basic'));
  const object = await raw.send(new GetObjectCommand({ Bucket: 'cas-basic', Key: casKey(digest) }));
  assert.deepEqual(Buffer.from(await object.Body!.transformToByteArray()), bytes);
  raw.destroy();
  await cas.put(digest, bytes); // present: a no-op
  await assert.rejects(cas.put(digest, randomBytes(10)), DigestMismatchError);
  await assert.rejects(cas.get(sha(randomBytes(8))), NotFoundError);
  cas.close();
});

test('spooled files go up (in parts when large) and the spool file is consumed', async () => {
  const cas = new S3Cas({ ...s3.config('cas-files'), spoolDir: path.join(s3.directory, '..', `spool-${process.pid}`) });
  await cas.ensureBucket();
  await fs.mkdir(cas.spoolDir, { recursive: true });
  for (const size of [1000, 20 * 1024 * 1024]) {
    const bytes = randomBytes(size);
    const file = path.join(cas.spoolDir, `blob-${size}`);
    await fs.writeFile(file, bytes);
    await cas.putFile(sha(bytes), file);
    await assert.rejects(fs.access(file));
    assert.equal(sha(await cas.get(sha(bytes))), sha(bytes));
  }
  await fs.rm(cas.spoolDir, { recursive: true, force: true });
  cas.close();
});

test('an object whose bytes do not match its key is an error, not an input', async () => {
  const cas = new S3Cas(s3.config('cas-corrupt'));
  await cas.ensureBucket();
  const bytes = randomBytes(64);
  const digest = sha(bytes);
  const raw = new S3Client(s3.config('cas-corrupt'));
  await raw.send(new PutObjectCommand({ Bucket: 'cas-corrupt', Key: casKey(digest), Body: randomBytes(64) }));
  raw.destroy();
  await assert.rejects(cas.get(digest), (err: unknown) => err instanceof DigestMismatchError && /corrupt/.test(err.message));
  cas.close();
});

test('an unreachable endpoint is a one-line error naming it', async () => {
  const cas = new S3Cas({ ...s3.config('none'), endpoint: 'http://127.0.0.1:1' });
  await assert.rejects(cas.ensureBucket(), (err: unknown) => err instanceof UnavailableError && /S3 bucket none at http:\/\/127\.0\.0\.1:1 is unreachable/.test(err.message));
  cas.close();
});
