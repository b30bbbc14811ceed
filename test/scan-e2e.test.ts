/**
 * End to end with the real dockerd: images are scanned, the generated profile is applied with
 * `docker run --security-opt seccomp=...`, and each image must still do its job (smoke test) and
 * miss none of the syscalls `strace -f` sees in the container. Images: the shell-script entrypoint
 * ending in `exec "$@"` (dockergate-test/app:1), a static glibc program, a musl program and a
 * Debian 13 shell-script entrypoint that forks and waits (glibc 2.41's `__syscall_cancel`) from
 * the corpus (bench/corpus). Also: explain, diff and the Kubernetes profile.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { baseImageId, buildImage } from '../bench/corpus/build.js';
import { type CorpusImage, selectImages } from '../bench/corpus/images.js';
import { runWithProfile } from '../bench/corpus/run.js';
import { traceSyscalls } from '../bench/corpus/trace.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import type { Runtime } from '../coordinator/runtime/runtime.js';
import { buildDockerProfile, kubernetesProfile, validateSeccompProfileCrd } from '../coordinator/output/policy.js';
import { diffText, explainText } from '../coordinator/output/report.js';
import { type ScanResult, scanImage } from '../coordinator/plan/scan.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { tempDir } from './helpers/layers.js';

const run = promisify(execFile);
const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;

const APP: CorpusImage = {
  name: 'app',
  tag: 'dockergate-test/app:1',
  kind: 'service',
  runArgs: ['--network', 'none'],
  smoke: { kind: 'alive', seconds: 3 },
  notes: 'shell-script entrypoint ending in exec "$@", Cmd sleep infinity',
};
const IMAGES: CorpusImage[] = [APP, ...selectImages(['static-c', 'musl-http', 'trixie-shell', 'busybox-shell'])];

let work: string;
let runtime: Runtime;

async function scan(tag: string): Promise<ScanResult> {
  return scanImage(runtime, `docker-daemon:${tag}`, { source: { platform: PLATFORM, insecure: false } });
}

before(async () => {
  work = await tempDir('dockergate-e2e-');
  runtime = embeddedRuntime(DEFAULT_LIMITS, path.join(work, 'cache'));
  const baseId = await baseImageId();
  for (const image of IMAGES.slice(1)) await buildImage(image, baseId);
});

after(async () => {
  await runtime.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('scan → profile → docker run', () => {
  for (const image of IMAGES) {
    it(`${image.name} works under its generated profile and misses nothing strace sees`, { timeout: 600_000 }, async () => {
      const result = await scan(image.tag);
      const { profile, dropped } = buildDockerProfile(result.syscalls.keys(), PLATFORM);
      assert.deepEqual(dropped, []);
      const file = path.join(work, `${image.name}.json`);
      await fs.writeFile(file, JSON.stringify(profile));
      const outcome = await runWithProfile(image, file);
      assert.ok(outcome.passed, `${image.name} under its profile (${result.syscalls.size} syscalls): ${outcome.detail}`);
      const traced = await traceSyscalls(image);
      const missed = [...traced].filter((name) => !result.syscalls.has(name)).sort();
      assert.deepEqual(missed, [], `${image.name}: strace saw ${missed.join(', ')} which the profile does not allow`);
      console.log(`${image.name}: ${result.syscalls.size} allowed, ${traced.size} seen by strace${result.unsure ? ' (fallback applied)' : ''}`);
    });
  }

  it('a BusyBox image: the ash script is evaluated with its Cmd and each applet linked alone, far under all applets', { timeout: 300_000 }, async () => {
    const result = await scan('dockergate-corpus/busybox-shell:1');
    assert.equal(result.unsure, false, JSON.stringify(result.decisions.filter((d) => d.kind === 'unresolved')));
    const details = result.decisions.map((decision) => decision.detail);
    assert.ok(details.some((detail) => /\/entrypoint\.sh evaluated with arguments \["--lines","3","count"\]: it may run mkdir, seq, wc, sha256sum, cut, grep, rm$/.test(detail)), details.join('\n'));
    assert.ok(details.includes('/bin/sh runs as its sh applet: only that applet of the multi-call binary is linked'));
    // Every applet of this busybox together reaches more than 160 syscalls (the profile before applets were told apart).
    assert.ok(result.syscalls.size < 130, `${result.syscalls.size} syscalls`);
  });

  it('a profile without what the image needs breaks it (the check can fail)', { timeout: 300_000 }, async () => {
    const result = await scan(APP.tag);
    const { profile } = buildDockerProfile([...result.syscalls.keys()].filter((name) => name !== 'execve' && name !== 'nanosleep' && name !== 'clock_nanosleep'), PLATFORM);
    const file = path.join(work, 'broken.json');
    await fs.writeFile(file, JSON.stringify(profile));
    const outcome = await runWithProfile(APP, file);
    assert.equal(outcome.passed, false);
  });
});

describe('explain, diff and Kubernetes', () => {
  it('explain gives a chain from the entrypoint to the syscall', async () => {
    const result = await scan(APP.tag);
    const text = explainText(result, 'clock_nanosleep');
    // One true chain: the syscall, the libc function, a program of the image, its runner, the entrypoint.
    const chain = text.trim().split('\n');
    assert.equal(chain[0], 'clock_nanosleep');
    assert.match(chain[1]!, /libc\.so\.6/);
    assert.match(text, /← (\/bin\/sh|\/usr\/bin\/sleep)\n/);
    assert.equal(chain[chain.length - 1], '  ← entrypoint');
    assert.match(explainText(result, 'reboot'), /not allowed/);
  });

  it('diff names the program and the syscalls that changed between two versions', { timeout: 300_000 }, async () => {
    // Version 2 of the app image runs `date` instead of `sleep infinity`.
    await run('sh', ['-c', `printf 'FROM ${APP.tag}\\nCMD ["date"]\\n' | DOCKER_BUILDKIT=0 docker build --network host -q -t dockergate-test/app:2 -`]);
    const before = await scan(APP.tag);
    const later = await scan('dockergate-test/app:2');
    const text = diffText(before, later);
    assert.match(text, /\+ program \/usr\/bin\/date/);
    assert.match(text, /- program \/usr\/bin\/sleep/);
  });

  it('the Kubernetes SeccompProfile has the CRD shape', async () => {
    const result = await scan(APP.tag);
    const yaml = kubernetesProfile(buildDockerProfile(result.syscalls.keys(), PLATFORM).profile, 'app');
    assert.deepEqual(validateSeccompProfileCrd(parseYaml(yaml)), []);
    assert.ok(validateSeccompProfileCrd({ apiVersion: 'x', kind: 'SeccompProfile' }).length > 0);
  });
});
