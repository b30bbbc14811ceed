/**
 * A real S3-protocol server for tests: s3rver on a loopback port with its own directory, reached
 * only through `@aws-sdk/client-s3` (s3rver accepts the key pair S3RVER / S3RVER). Fault tests may
 * `stop()` it (open connections are cut) and `start()` it again on the same port and directory.
 */
import fs from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import type { S3CasConfig } from '../../store/s3-cas.js';

export interface TestS3 {
  readonly endpoint: string;
  readonly directory: string;
  config(bucket: string): S3CasConfig;
  /** Stops listening and cuts every open connection; the objects stay in `directory`. */
  stop(): Promise<void>;
  /** Listens again on the same port, serving the same directory. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestS3(): Promise<TestS3> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-s3-'));
  let port = 0;
  let server: S3rver | undefined;
  const start = async (): Promise<void> => {
    const started = new S3rver({ address: '127.0.0.1', port, silent: true, directory });
    ({ port } = await started.run());
    server = started;
  };
  const stop = async (): Promise<void> => {
    const running = server;
    server = undefined;
    if (!running) return;
    const closed = running.close();
    // Keep-alive sockets of clients would hold close() open: cut them, as a crash would.
    (running as unknown as { httpServer?: Server }).httpServer?.closeAllConnections();
    await closed;
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    directory,
    config: (bucket) => ({ endpoint, bucket, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }),
    stop,
    start,
    async close() {
      await stop();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}
