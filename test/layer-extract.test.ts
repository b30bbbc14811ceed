import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { ImageTree } from '../coordinator/plan/image-tree.js';
import { extractLayer } from '../extractor/layer-extract.js';
import type { LayerRecord } from '../extractor/types.js';
import { DEFAULT_LIMITS, limitsWith } from '../infra/limits.js';
import { DirCas } from '../store/cas.js';
import { digestOf, type EntrySpec, gzip, sha256, tarOf, tempDir, zstd } from './helpers/layers.js';

const ELF_BYTES = await fs.readFile('/bin/true');
const SCRIPT = '#!/bin/sh -e\nexec "$@"\n';

/** Temporary cache dirs of these tests, removed once they are done. */
const scratch: string[] = [];
async function scratchDir(): Promise<string> {
  const dir = await tempDir();
  scratch.push(dir);
  return dir;
}
after(async () => {
  for (const dir of scratch) await fs.rm(dir, { recursive: true, force: true });
});

async function extract(blob: Buffer, mediaType: string, cas?: DirCas, limits = DEFAULT_LIMITS): Promise<LayerRecord> {
  const store = cas ?? new DirCas(await scratchDir());
  return extractLayer(Readable.from([blob]), { digest: digestOf(blob), mediaType, size: blob.length }, { cas: store, limits });
}

const BASIC: EntrySpec[] = [
  { name: 'usr/', type: 'directory' },
  { name: 'usr/bin/', type: 'directory' },
  { name: 'usr/bin/true', content: ELF_BYTES, mode: 0o755 },
  { name: 'usr/local/bin/entry.sh', content: SCRIPT, mode: 0o755 },
  { name: 'etc/motd', content: 'hello\n' },
  { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
  { name: 'usr/bin/true-again', type: 'link', linkname: 'usr/bin/true' },
  { name: `deep/${'d'.repeat(120)}/${'f'.repeat(100)}`, content: 'long name' },
  { name: 'srv/data.txt', content: 'plain data\n' },
  { name: 'etc/big.conf', content: 'x'.repeat(DEFAULT_LIMITS.maxShellScriptBytes + 1) },
];

describe('extractLayer', () => {
  for (const [label, mediaType, encode] of [
    ['uncompressed', 'application/vnd.oci.image.layer.v1.tar', async (b: Buffer) => b],
    ['gzip', 'application/vnd.oci.image.layer.v1.tar+gzip', async (b: Buffer) => gzip(b)],
    ['zstd', 'application/vnd.oci.image.layer.v1.tar+zstd', zstd],
  ] as const) {
    it(`reads a ${label} layer: hashes, kinds, links, long names`, async () => {
      const layerTar = await tarOf(BASIC);
      const cacheDir = await scratchDir();
      const cas = new DirCas(cacheDir);
      const record = await extract(await encode(layerTar), mediaType, cas);
      assert.equal(record.diffId, digestOf(layerTar));
      assert.equal(record.uncompressedBytes, layerTar.length);
      const byPath = new Map(record.files.map((file) => [file.path, file]));
      const elf = byPath.get('/usr/bin/true');
      assert.equal(elf?.kind, 'elf');
      assert.equal(elf?.elfMachine, 'x86_64');
      assert.equal(elf?.sha256, sha256(ELF_BYTES));
      assert.equal(elf?.mode, 0o755);
      const script = byPath.get('/usr/local/bin/entry.sh');
      assert.equal(script?.kind, 'script');
      assert.equal(script?.interpreter, '/bin/sh -e');
      assert.equal(byPath.get('/etc/motd')?.kind, 'other');
      assert.equal(byPath.get('/bin')?.linkTarget, 'usr/bin');
      const hardlink = byPath.get('/usr/bin/true-again');
      assert.equal(hardlink?.type, 'hardlink');
      assert.equal(hardlink?.sha256, sha256(ELF_BYTES));
      assert.ok(byPath.has(`/deep/${'d'.repeat(120)}/${'f'.repeat(100)}`));
      // ELF files and scripts reach the CAS, and they verify on read; so does small text a shell
      // may source (under /etc, *.sh, bin dirs); other files are hashed only.
      assert.deepEqual(await cas.get(sha256(ELF_BYTES)), ELF_BYTES);
      assert.equal((await cas.get(sha256(SCRIPT))).toString(), SCRIPT);
      assert.equal((await cas.get(sha256('hello\n'))).toString(), 'hello\n');
      assert.equal(await cas.has(sha256('plain data\n')), false);
      assert.equal(await cas.has(sha256('x'.repeat(DEFAULT_LIMITS.maxShellScriptBytes + 1))), false);
    });
  }

  it('records whiteouts and opaque directories as data', async () => {
    const layerTar = await tarOf([
      { name: 'data/.wh.gone', content: '' },
      { name: 'data/replace/.wh..wh..opq', content: '' },
      { name: 'data/replace/z', content: 'z' },
    ]);
    const record = await extract(layerTar, 'application/vnd.oci.image.layer.v1.tar');
    assert.deepEqual(record.whiteouts, ['/data/gone']);
    assert.deepEqual(record.opaqueDirs, ['/data/replace']);
    assert.deepEqual(record.files.map((file) => file.path), ['/data/replace/z']);
  });

  it('spools large ELF files to disk and stores them intact', async () => {
    const big = Buffer.concat([ELF_BYTES, Buffer.alloc(40 * 1024 * 1024, 7)]);
    const cacheDir = await scratchDir();
    const cas = new DirCas(cacheDir);
    const record = await extract(await tarOf([{ name: 'big', content: big }]), 'application/vnd.oci.image.layer.v1.tar', cas);
    assert.equal(record.files[0]?.sha256, sha256(big));
    assert.equal((await cas.get(sha256(big))).length, big.length);
    assert.deepEqual(await fs.readdir(path.join(cacheDir, 'tmp')), [], 'spool files are removed');
  });
});

describe('ImageTree', () => {
  const limits = limitsWith({});
  const layer = (files: LayerRecord['files'], extra: Partial<LayerRecord> = {}): LayerRecord => ({
    digest: 'sha256:0',
    diffId: 'sha256:0',
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    compressedBytes: 0,
    uncompressedBytes: 0,
    extractorVersion: 1,
    files,
    whiteouts: [],
    opaqueDirs: [],
    ...extra,
  });
  const file = (p: string, sha = 'x'): LayerRecord['files'][number] => ({ path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, sha256: sha });
  const dir = (p: string): LayerRecord['files'][number] => ({ path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 });
  const link = (p: string, target: string): LayerRecord['files'][number] => ({ path: p, type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkTarget: target });

  it('applies whiteouts and opaque dirs to lower layers only', () => {
    const tree = ImageTree.fromLayers(
      [
        layer([dir('/a'), file('/a/keep'), file('/a/gone'), dir('/o'), file('/o/old')]),
        layer([file('/o/new'), file('/a/added')], { whiteouts: ['/a/gone'], opaqueDirs: ['/o'] }),
      ],
      limits,
    );
    assert.deepEqual([...tree.files()].map((f) => f.path), ['/a', '/a/added', '/a/keep', '/o', '/o/new']);
    assert.equal(tree.size, 5);
  });

  it('resolves symlinks inside the image root only', () => {
    const tree = ImageTree.fromLayers(
      [layer([dir('/etc'), file('/etc/passwd', 'inside'), link('/up', '../../../../etc/passwd'), link('/abs', '/etc/passwd'), link('/dirlink', '/etc')])],
      limits,
    );
    assert.equal(tree.resolve('/up').sha256, 'inside');
    assert.equal(tree.resolve('/abs').path, '/etc/passwd');
    assert.equal(tree.resolve('/dirlink/passwd').sha256, 'inside');
  });
});
