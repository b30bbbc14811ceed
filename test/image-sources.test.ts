/**
 * Integration: the same image read from the real Docker daemon, a `docker save` archive, an OCI
 * layout and the loopback registry (Debian's docker-registry) gives the same config and file tree;
 * and the merged tree of a whiteout image equals what `docker export` shows.
 * Needs what `infra/setup/test-env.sh` prepares (dockerd, registry on 127.0.0.1:5000, test images).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import { fileJson, type InspectResult, inspectImage } from '../coordinator/plan/inspect.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { tempDir } from './helpers/layers.js';

const run = promisify(execFile);
const REGISTRY = '127.0.0.1:5000';
const IMAGES = ['dockergate-test/app:1', 'dockergate-test/whiteout:1'];

let work: string;

async function inspectFresh(reference: string): Promise<InspectResult> {
  // A fresh cache per read, so that every source really extracts its layers.
  const runtime = embeddedRuntime(DEFAULT_LIMITS, await fs.mkdtemp(path.join(work, 'cache-')));
  try {
    return await inspectImage(runtime, reference, { source: { platform: { os: 'linux', architecture: 'amd64' }, insecure: false } });
  } finally {
    await runtime.close();
  }
}

before(async () => {
  work = await tempDir('dockergate-sources-');
  await new Docker().ping().catch((err: unknown) => {
    throw new Error(`Docker daemon not reachable; run infra/setup/test-env.sh first (${String(err)})`);
  });
  const registry = await fetch(`http://${REGISTRY}/v2/`).catch(() => undefined);
  assert.ok(registry?.ok, `registry not answering on ${REGISTRY}; run infra/setup/test-env.sh first`);
});

after(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('every source reads the same image', () => {
  for (const image of IMAGES) {
    it(image, { timeout: 300_000 }, async () => {
      const base = image.replace(/[/:]/g, '_');
      await run('skopeo', ['copy', '-q', `docker-daemon:${image}`, `oci:${work}/${base}-oci:test`]);
      await run('skopeo', ['copy', '-q', `docker-daemon:${image}`, `docker-archive:${work}/${base}.tar:${image}`]);
      const references = [
        `docker-daemon:${image}`,
        `docker-archive:${work}/${base}.tar`,
        `oci:${work}/${base}-oci:test`,
        `docker://${REGISTRY}/${image}`,
      ];
      const results = [];
      for (const reference of references) results.push(await inspectFresh(reference));
      const [daemon, ...others] = results;
      assert.ok(daemon);
      const files = (result: InspectResult) => [...result.tree.files()].map(fileJson);
      const daemonFiles = files(daemon);
      assert.ok(daemonFiles.length > 1000, `a debootstrapped image has thousands of files (${daemonFiles.length})`);
      for (const [i, other] of others.entries()) {
        assert.deepEqual(other.config, daemon.config, `config of ${references[i + 1]}`);
        assert.deepEqual(files(other), daemonFiles, `file tree of ${references[i + 1]}`);
        assert.deepEqual(
          other.layers.map((layer) => layer.diffId),
          daemon.layers.map((layer) => layer.diffId),
        );
      }
      // Registry and OCI layouts carry compressed layers: their digests differ from the daemon's.
      assert.notDeepEqual(results[3]?.layers.map((l) => l.digest), daemon.layers.map((l) => l.digest));
      if (image.startsWith('dockergate-test/app')) {
        assert.deepEqual(daemon.config.entrypoint, ['docker-entrypoint.sh']);
        assert.equal(daemon.entrypoint.file?.path, '/usr/local/bin/docker-entrypoint.sh');
        assert.equal(daemon.entrypoint.file?.kind, 'script');
        const hardlink = daemon.tree.resolve('/srv/app/etc/config.hardlink');
        assert.equal(hardlink.sha256, daemon.tree.resolve('/srv/app/etc/config.txt').sha256);
        assert.equal(daemon.tree.resolve('/srv/app/bin/sh-rel').path, '/usr/bin/dash');
        assert.ok((daemon.counts.elfByMachine.x86_64 ?? 0) > 100);
      }
    });
  }
});

/** Paths the runtime adds to every container (init layer, mount points): not part of the image. */
const CONTAINER_ONLY = new Set(['/.dockerenv', '/etc/hostname', '/etc/hosts', '/etc/mtab', '/etc/resolv.conf', '/dev/console', '/dev/pts', '/dev/shm', '/dev/mqueue', '/proc', '/sys']);

const TAR_TYPE_NAMES: Record<string, string> = { directory: 'dir', 'character-device': 'char', 'block-device': 'block', fifo: 'fifo' };

interface ExportedFile {
  readonly path: string;
  readonly type: string;
  readonly sha256?: string;
  readonly linkTarget?: string;
}

/** `docker export` of a created (never started) container, listed like the image tree. */
async function dockerExport(image: string): Promise<ExportedFile[]> {
  const docker = new Docker();
  const container = await docker.createContainer({ Image: image, Cmd: ['/bin/true'], HostConfig: { NetworkMode: 'none' } });
  try {
    const stream = await container.export();
    const extract = tar.extract();
    stream.pipe(extract as unknown as NodeJS.WritableStream);
    const byPath = new Map<string, ExportedFile>();
    for await (const entry of extract) {
      const name = '/' + entry.header.name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
      const hash = createHash('sha256');
      for await (const chunk of entry) hash.update(chunk as Buffer);
      const type = entry.header.type;
      if (name === '/' || CONTAINER_ONLY.has(name)) continue;
      if (type === 'link') {
        const target = byPath.get('/' + (entry.header.linkname ?? '').replace(/^\.?\/+/, ''));
        byPath.set(name, { path: name, type: 'file', ...(target?.sha256 ? { sha256: target.sha256 } : {}) });
      } else if (type === 'file') byPath.set(name, { path: name, type: 'file', sha256: hash.digest('hex') });
      else if (type === 'symlink') byPath.set(name, { path: name, type: 'symlink', linkTarget: entry.header.linkname ?? '' });
      else byPath.set(name, { path: name, type: TAR_TYPE_NAMES[String(type)] ?? String(type) });
    }
    return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  } finally {
    await container.remove({ force: true });
  }
}

describe('whiteouts and opaque directories', () => {
  it('the merged tree equals docker export', { timeout: 300_000 }, async () => {
    const image = 'dockergate-test/whiteout:1';
    const result = await inspectFresh(`docker-daemon:${image}`);
    const ours = [...result.tree.files()]
      .filter((file) => !CONTAINER_ONLY.has(file.path))
      .map((file): ExportedFile => ({
        path: file.path,
        type: file.type,
        ...(file.sha256 ? { sha256: file.sha256 } : {}),
        ...(file.linkTarget !== undefined ? { linkTarget: file.linkTarget } : {}),
      }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    const theirs = await dockerExport(image);
    assert.ok(result.layers.some((layer) => layer.whiteouts > 0), 'the image has whiteouts');
    assert.ok(result.layers.some((layer) => layer.opaqueDirs > 0), 'the image has an opaque dir');
    assert.deepEqual(ours, theirs);
    const data = ours.filter((file) => file.path.startsWith('/data')).map((file) => file.path);
    assert.deepEqual(data, ['/data', '/data/file-to-dir', '/data/file-to-dir/inner', '/data/keep', '/data/new', '/data/replace-dir', '/data/replace-dir/z']);
  });
});
