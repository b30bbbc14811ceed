/**
 * `docker-daemon:name:tag`: an image in the local Docker daemon, read through dockerode's image
 * export (`GET /images/{name}/get`, the `docker save` format). The export is spooled to one file
 * next to the CAS, indexed, read as a docker archive, and deleted on `close()`.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { NotFoundError, UnavailableError } from '../../infra/errors.js';
import { openArchive } from '../archive-fs.js';
import type { SourceReference } from '../reference.js';
import type { ImageSource } from '../source.js';
import type { OpenedImage } from '../types.js';
import { openSavedImage } from './docker-archive.js';

type DaemonReference = Extract<SourceReference, { transport: 'docker-daemon' }>;

/** dockerode reads DOCKER_HOST itself; the default is the local unix socket. Loaded on first use. */
async function connect(): Promise<import('dockerode')> {
  const { default: Docker } = await import('dockerode');
  return new Docker();
}

function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err ? Number(err.statusCode) : undefined;
}

export const dockerDaemonSource: ImageSource<DaemonReference> = {
  transport: 'docker-daemon',
  async peekDigest(reference) {
    // The export's config digest is the image ID (openSavedImage uses the config digest).
    try {
      const info = (await (await connect()).getImage(reference.name).inspect()) as { Id?: string };
      return info.Id;
    } catch {
      return undefined;
    }
  },
  async open(reference, options): Promise<OpenedImage> {
    const where = `docker-daemon:${reference.name}`;
    const image = (await connect()).getImage(reference.name);
    try {
      await image.inspect();
    } catch (err) {
      if (statusOf(err) === 404) throw new NotFoundError(`${where}: no such image in the local daemon`, { cause: err });
      throw new UnavailableError(`${where}: Docker daemon not reachable (${(err as Error).message})`, { cause: err });
    }
    await fs.mkdir(options.spoolDir, { recursive: true });
    const spool = path.join(options.spoolDir, `daemon-export-${randomUUID()}.tar`);
    const remove = () => fs.rm(spool, { force: true });
    try {
      const exported = await image.get();
      await pipeline(exported, createWriteStream(spool), { signal: options.signal });
      const archive = await openArchive(spool, options.limits);
      // The export holds exactly this image, whatever name or id it was asked by.
      const opened = await openSavedImage(archive, undefined, where, options);
      return { ...opened, close: async () => { await opened.close(); await remove(); } };
    } catch (err) {
      await remove();
      throw err;
    }
  },
};
