/**
 * `dir:` sources: a root filesystem on disk. A debootstrapped Debian 13 root (the test
 * environment's trixie chroot) is inspected and scanned from its /bin/sh; a small tree with a
 * symlink, a hard link, a FIFO and a socket keeps each as the image tree expects, and a rescan of
 * it unchanged is recognised; and odd trees (a name that is not UTF-8, a path past
 * maxPathBytes, a tree deeper than maxPathDepth) are typed errors, never raw ENOENT/ENAMETOOLONG.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspectImage } from '../coordinator/plan/inspect.js';
import { scanImage } from '../coordinator/plan/scan.js';
import { buildDockerProfile } from '../coordinator/output/policy.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import { InvalidInputError, LimitExceededError } from '../infra/errors.js';
import { DEFAULT_LIMITS, type Limits, limitsWith } from '../infra/limits.js';
import { tempDir } from './helpers/layers.js';

const TRIXIE_ROOT = process.env.DOCKERGATE_TRIXIE_ROOT ?? '/var/cache/dockergate/rootfs/trixie';
const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;

let work: string;

before(async () => {
  work = await tempDir('dockergate-dir-');
});

after(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

function source(entrypoint: string[]) {
  return { platform: PLATFORM, insecure: false, dirConfig: { entrypoint, env: ['PATH=/usr/bin:/bin'] } };
}

async function withRuntime<T>(run: (runtime: ReturnType<typeof embeddedRuntime>) => Promise<T>, limits: Limits = DEFAULT_LIMITS): Promise<T> {
  const runtime = embeddedRuntime(limits, path.join(work, 'cache'));
  try {
    return await run(runtime);
  } finally {
    await runtime.close();
  }
}

describe('dir: sources', () => {
  it('a debootstrapped Debian root is inspected and scanned from its /bin/sh', { skip: existsSync(path.join(TRIXIE_ROOT, 'bin/sh')) ? false : `no ${TRIXIE_ROOT}`, timeout: 600_000 }, async () => {
    const reference = `dir:${TRIXIE_ROOT}`;
    const first = await withRuntime((runtime) => inspectImage(runtime, reference, { source: source(['/bin/sh', '-c', 'true']) }));
    assert.ok(first.counts.files > 1000, `files: ${first.counts.files}`);
    assert.equal(first.entrypoint.path, '/bin/sh');
    assert.equal(first.entrypoint.file?.kind, 'elf');
    const scanned = await withRuntime((runtime) => scanImage(runtime, reference, { source: source(['/bin/sh', '-c', 'true']) }));
    assert.ok(scanned.syscalls.has('execve') && scanned.syscalls.has('wait4'), `a shell's syscalls: ${[...scanned.syscalls.keys()].length}`);
    assert.ok(scanned.programs.some((program) => program.path === '/bin/sh'));
  });

  it('keeps symlinks, hard links and FIFOs, and leaves sockets out', { timeout: 60_000 }, async () => {
    const root = path.join(work, 'small');
    await fs.mkdir(path.join(root, 'bin'), { recursive: true });
    await fs.writeFile(path.join(root, 'bin', 'tool'), '#!/bin/sh\necho\n', { mode: 0o755 });
    await fs.symlink('tool', path.join(root, 'bin', 'alias'));
    await fs.link(path.join(root, 'bin', 'tool'), path.join(root, 'bin', 'hard'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(root, 'sock'), resolve));
    try {
      const result = await withRuntime((runtime) => inspectImage(runtime, `dir:${root}`, { source: source(['/bin/alias']) }));
      const files = new Map([...result.tree.files()].map((file) => [file.path, file]));
      assert.equal(files.get('/bin/alias')?.type, 'symlink');
      assert.equal(files.get('/bin/hard')?.sha256, files.get('/bin/tool')?.sha256);
      assert.equal(files.get('/fifo')?.type, 'fifo');
      assert.equal(files.has('/sock'), false);
      assert.equal(result.entrypoint.path, '/bin/alias');
      assert.equal(result.entrypoint.file?.kind, 'script');
      // Unchanged: recognised by its listing, its layer not read again; changed: a new digest.
      const again = await withRuntime((runtime) => inspectImage(runtime, `dir:${root}`, { source: source(['/bin/alias']) }));
      assert.equal(again.manifestDigest, result.manifestDigest);
      assert.ok(again.layers.every((layer) => layer.cached));
      await fs.writeFile(path.join(root, 'bin', 'new'), 'x');
      const changed = await withRuntime((runtime) => inspectImage(runtime, `dir:${root}`, { source: source(['/bin/alias']) }));
      assert.notEqual(changed.manifestDigest, result.manifestDigest);
    } finally {
      server.close();
    }
  });

  it('a tree gives the profile of the image built from it', { timeout: 600_000 }, async () => {
    // A small root from the host's own files: a shell, ls and what they load, the usual merged-/usr links.
    const context = path.join(work, 'built-context');
    const root = path.join(context, 'built');
    const copy = async (file: string) => {
      await fs.mkdir(path.join(root, path.dirname(file)), { recursive: true });
      await fs.copyFile(file, path.join(root, file));
    };
    for (const file of ['/usr/bin/dash', '/usr/bin/ls', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libselinux.so.1', '/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0', '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2']) {
      await copy(file);
    }
    await fs.symlink('usr/bin', path.join(root, 'bin'));
    await fs.symlink('usr/lib', path.join(root, 'lib'));
    await fs.mkdir(path.join(root, 'lib64'));
    await fs.symlink('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', path.join(root, 'lib64', 'ld-linux-x86-64.so.2'));
    await fs.symlink('dash', path.join(root, 'usr', 'bin', 'sh'));
    await fs.link(path.join(root, 'usr', 'bin', 'ls'), path.join(root, 'usr', 'bin', 'dir'));
    const entrypoint = ['/bin/sh', '-c', 'ls / && dir /'];
    await fs.writeFile(path.join(context, 'Dockerfile'), `FROM scratch\nCOPY built/ /\nENV PATH=/usr/bin:/bin\nENTRYPOINT ${JSON.stringify(entrypoint)}\n`);
    const { execFileSync } = await import('node:child_process');
    execFileSync('docker', ['build', '--network', 'none', '-q', '-t', 'dockergate-test/dir-tree:1', context], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    const fromTree = await withRuntime((runtime) => scanImage(runtime, `dir:${root}`, { source: source(entrypoint) }));
    const fromImage = await withRuntime((runtime) => scanImage(runtime, 'docker-daemon:dockergate-test/dir-tree:1', { source: { platform: PLATFORM, insecure: false } }));
    const profileOf = (result: typeof fromTree) => JSON.stringify(buildDockerProfile(result.syscalls.keys(), result.platform).profile);
    assert.ok(fromTree.syscalls.has('execve') && fromTree.programs.some((program) => program.path === '/usr/bin/ls'), `programs: ${fromTree.programs.map((p) => p.path).join(' ')}`);
    assert.deepEqual(fromTree.programs.map((p) => p.path).sort(), fromImage.programs.map((p) => p.path).sort());
    assert.equal(profileOf(fromTree), profileOf(fromImage));
  });

  it('an unreadable file or directory fails the scan as permission-denied, naming it', { skip: process.getuid?.() === 0 ? false : 'needs root, to run the command as nobody', timeout: 300_000 }, async () => {
    await fs.chmod(work, 0o755);
    const root = path.join(work, 'unreadable');
    await fs.mkdir(path.join(root, 'bin'), { recursive: true, mode: 0o755 });
    await fs.copyFile('/bin/true', path.join(root, 'bin', 'true'));
    await fs.chmod(path.join(root, 'bin', 'true'), 0o755);
    await fs.chmod(root, 0o755);
    const cache = path.join(work, 'unreadable-cache');
    await fs.mkdir(cache, { mode: 0o777 });
    await fs.chmod(cache, 0o777);
    const { execFile } = await import('node:child_process');
    const asNobody = () =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile('runuser', ['-u', 'nobody', '--', process.execPath, '--import', 'tsx', 'test/helpers/cli.ts', 'scan', `dir:${root}`, '--entrypoint', '["/bin/true"]', '--cache-dir', cache, '-o', path.join(cache, 'p.json'), '-q'], (err, _stdout, stderr) =>
          resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr }),
        ),
      );
    // The tree itself is fine: the command runs as nobody and succeeds.
    const readable = await asNobody();
    assert.equal(readable.code, 0, readable.stderr);
    await fs.writeFile(path.join(root, 'secret'), 'x', { mode: 0o000 });
    const file = await asNobody();
    assert.equal(file.code, 1);
    assert.equal(file.stderr.trim(), `dockergate: permission-denied: file dir:${path.join(root, 'secret')}: permission denied`);
    await fs.rm(path.join(root, 'secret'));
    await fs.mkdir(path.join(root, 'private'), { mode: 0o000 });
    const directory = await asNobody();
    assert.equal(directory.code, 1);
    assert.equal(directory.stderr.trim(), `dockergate: permission-denied: directory dir:${path.join(root, 'private')}: permission denied`);
  });

  it('a name that is not valid UTF-8 is an InvalidInputError naming it', { timeout: 60_000 }, async () => {
    const root = path.join(work, 'latin1');
    await fs.mkdir(root);
    await fs.writeFile(Buffer.concat([Buffer.from(`${root}/caf`), Buffer.from([0xe9])]), 'x');
    await assert.rejects(
      withRuntime((runtime) => inspectImage(runtime, `dir:${root}`, { source: source(['/x']) })),
      (err: unknown) => err instanceof InvalidInputError && /not valid UTF-8/.test(err.message),
    );
  });

  it('paths past maxPathBytes or maxPathDepth are LimitExceededErrors before any file is read', { timeout: 60_000 }, async () => {
    const long = path.join(work, 'long');
    await fs.mkdir(path.join(long, 'a'.repeat(200), 'b'.repeat(200)), { recursive: true });
    await assert.rejects(
      withRuntime((runtime) => inspectImage(runtime, `dir:${long}`, { source: source(['/x']) }), limitsWith({ maxPathBytes: 300 })),
      (err: unknown) => err instanceof LimitExceededError && err.message.includes('maxPathBytes'),
    );
    const deep = path.join(work, 'deep');
    await fs.mkdir(path.join(deep, ...Array.from({ length: 40 }, () => 'd')), { recursive: true });
    await assert.rejects(
      withRuntime((runtime) => inspectImage(runtime, `dir:${deep}`, { source: source(['/x']) }), limitsWith({ maxPathDepth: 20 })),
      (err: unknown) => err instanceof LimitExceededError && err.message.includes('maxPathDepth'),
    );
  });
});
