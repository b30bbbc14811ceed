/** Builders of layer tars and OCI layouts for tests (pure data: no Docker involved). */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';

export interface EntrySpec {
  readonly name: string;
  readonly type?: tar.Header['type'];
  readonly content?: Buffer | string;
  readonly linkname?: string;
  readonly mode?: number;
  readonly pax?: Record<string, string>;
  readonly size?: number;
}

/** A tar archive of the given entries, in order. */
export async function tarOf(entries: readonly EntrySpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk) => chunks.push(chunk as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const entry of entries) {
    const content = entry.content === undefined ? undefined : Buffer.from(entry.content);
    const header: tar.Header = {
      name: entry.name,
      type: entry.type ?? 'file',
      mode: entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(0),
      uid: 0,
      gid: 0,
      size: entry.size ?? content?.length ?? 0,
      linkname: entry.linkname ?? '',
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
      ...(entry.pax ? { pax: entry.pax } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      if (content !== undefined && header.type === 'file') pack.entry(header, content, (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const gzip = (bytes: Buffer): Buffer => zlib.gzipSync(bytes);
export const zstd = async (bytes: Buffer): Promise<Buffer> => zstdCompress(bytes);

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const digestOf = (bytes: Buffer | string): `sha256:${string}` => `sha256:${sha256(bytes)}`;

export async function tempDir(prefix = 'dockergate-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface OciLayer {
  readonly blob: Buffer;
  readonly mediaType: string;
  /** The uncompressed tar, for the config's diff_id. */
  readonly tar: Buffer;
  /** Overrides for hostile cases. */
  readonly declaredSize?: number;
  readonly declaredDigest?: `sha256:${string}`;
  readonly diffId?: `sha256:${string}`;
}

export interface OciImageSpec {
  readonly layers: readonly OciLayer[];
  readonly config?: Record<string, unknown>;
  readonly tag?: string;
  readonly architecture?: string;
}

/** Writes an OCI image layout (OCI image spec `image-layout.md`) holding one image. */
export async function writeOciLayout(dir: string, spec: OciImageSpec): Promise<{ manifestDigest: string; configDigest: string }> {
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (bytes: Buffer, digest = digestOf(bytes)): Promise<string> => {
    await fs.writeFile(path.join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return digest;
  };
  const layerDescriptors = [];
  for (const layer of spec.layers) {
    const digest = await put(layer.blob, layer.declaredDigest);
    layerDescriptors.push({ mediaType: layer.mediaType, digest, size: layer.declaredSize ?? layer.blob.length });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: spec.architecture ?? 'amd64',
      os: 'linux',
      config: spec.config ?? { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] },
      rootfs: { type: 'layers', diff_ids: spec.layers.map((layer) => layer.diffId ?? digestOf(layer.tar)) },
    }),
  );
  const configDigest = await put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layerDescriptors,
    }),
  );
  const manifestDigest = await put(manifest);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: manifestDigest,
        size: manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': spec.tag ?? 'latest' },
      },
    ],
  };
  await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
  await fs.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { manifestDigest, configDigest };
}

/** A gzip layer from entries, ready for `writeOciLayout`. */
export async function gzipLayer(entries: readonly EntrySpec[]): Promise<OciLayer> {
  const layerTar = await tarOf(entries);
  return { blob: gzip(layerTar), tar: layerTar, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' };
}

/** Every regular file below `dir`, relative, sorted: to prove nothing was written elsewhere. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(dir, relative), { withFileTypes: true })) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(child);
      else out.push(child);
    }
  };
  await walk('');
  return out.sort();
}

/** A ustar header block for a regular file of `size` bytes (size may exceed what follows). */
export function ustarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

/**
 * An /etc/ld.so.cache in glibc's "glibc-ld.so.cache1.1" format (glibc `elf/cache.c`): a 48-byte
 * header with the entry count, 24-byte entries whose key and value are string offsets, then the
 * strings (each written once, however many entries name it). `declared` entries of `entries`,
 * repeated in turn when there are more of them than given (a hostile count).
 */
export function ldSoCache(entries: readonly (readonly [name: string, path: string])[], declared = entries.length): Buffer {
  const header = Buffer.alloc(48);
  header.write('glibc-ld.so.cache1.1', 0, 'latin1');
  header.writeUInt32LE(declared, 20);
  const table = Buffer.alloc(24 * declared);
  const offsets = new Map<string, number>();
  const strings: string[] = [];
  let next = 48 + table.length;
  const offsetOf = (text: string): number => {
    let at = offsets.get(text);
    if (at === undefined) {
      at = next;
      offsets.set(text, at);
      strings.push(text);
      next += Buffer.byteLength(text, 'latin1') + 1;
    }
    return at;
  };
  for (let i = 0; i < declared; i++) {
    const [name, file] = entries[i % entries.length]!;
    table.writeUInt32LE(offsetOf(name), i * 24 + 4);
    table.writeUInt32LE(offsetOf(file), i * 24 + 8);
  }
  return Buffer.concat([header, table, Buffer.from(strings.map((text) => `${text}\0`).join(''), 'latin1')]);
}
