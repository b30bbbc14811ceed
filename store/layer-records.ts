import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Digest, LayerRecord } from '../extractor/types.js';

/**
 * Layer records, kept once per (layer digest, extractor version): an image is assembled from
 * these, never by re-reading its tars. The embedded store is a directory of JSON files.
 */
export interface LayerRecordStore {
  get(digest: Digest, extractorVersion: number): Promise<LayerRecord | undefined>;
  put(record: LayerRecord): Promise<void>;
}

export class DirLayerRecordStore implements LayerRecordStore {
  constructor(private readonly root: string) {}

  private fileOf(digest: Digest, extractorVersion: number): string {
    const hex = digest.slice('sha256:'.length);
    return path.join(this.root, 'layers', `v${extractorVersion}`, hex.slice(0, 2), `${hex}.json`);
  }

  async get(digest: Digest, extractorVersion: number): Promise<LayerRecord | undefined> {
    try {
      const record = JSON.parse(await fs.readFile(this.fileOf(digest, extractorVersion), 'utf8')) as LayerRecord;
      return record.digest === digest && record.extractorVersion === extractorVersion ? record : undefined;
    } catch {
      return undefined;
    }
  }

  async put(record: LayerRecord): Promise<void> {
    const file = this.fileOf(record.digest, record.extractorVersion);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(record));
    await fs.rename(tmp, file);
  }
}
