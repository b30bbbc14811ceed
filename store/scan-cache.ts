import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Finished scans, keyed by what fully determines them: the image's manifest digest and the
 * versions of the extractor, analyser and scan generator. A rescan of an unchanged image reads the
 * manifest, finds its scan here, and reads nothing else. Values are opaque JSON to this module.
 */
export interface ScanCache {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<void>;
}

export class DirScanCache implements ScanCache {
  constructor(private readonly root: string) {}

  private fileOf(key: string): string {
    const hex = key.replace(/[^a-zA-Z0-9.@_-]/g, '_');
    return path.join(this.root, 'scans', `${hex}.json`);
  }

  async get(key: string): Promise<unknown> {
    try {
      return JSON.parse(await fs.readFile(this.fileOf(key), 'utf8')) as unknown;
    } catch {
      return undefined;
    }
  }

  async put(key: string, value: unknown): Promise<void> {
    const file = this.fileOf(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(value));
    await fs.rename(tmp, file);
  }
}
