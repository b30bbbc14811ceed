/**
 * A real S3-protocol server for tests: s3rver on a loopback port with its own directory, reached
 * only through `@aws-sdk/client-s3` (s3rver accepts the key pair S3RVER / S3RVER).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import type { S3CasConfig } from '../../store/s3-cas.js';

export interface TestS3 {
  readonly endpoint: string;
  readonly directory: string;
  config(bucket: string): S3CasConfig;
  close(): Promise<void>;
}

export async function startTestS3(): Promise<TestS3> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    directory,
    config: (bucket) => ({ endpoint, bucket, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }),
    async close() {
      await server.close();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}
