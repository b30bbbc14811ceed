/**
 * A structure-aware fuzzer for images (issue 11), beside the ELF fuzzers: each input is the fixture
 * OCI layout with one part mutated — index.json, the manifest, the config, a layer's tar headers,
 * the entrypoint script or the image's /etc/ld.so.cache — and, most of the time, the digests and
 * sizes that name the mutated part recomputed, so the mutation gets past the digest checks into
 * the parsers behind them. Every input is inspected, and scanned when the script or the cache was
 * mutated; each must end in a result or one of dockergate's typed errors, within its time bound.
 * Deterministic (seeded); `DOCKERGATE_IMAGE_FUZZ_ITERATIONS` sets the count (default 10,000).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { inspectImage } from '../coordinator/plan/inspect.js';
import { scanImage } from '../coordinator/plan/scan.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import { DockergateError } from '../infra/errors.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { type EntrySpec, ldSoCache, tarOf, tempDir } from './helpers/layers.js';
import { prng } from './helpers/mutate.js';

const ITERATIONS = Number(process.env.DOCKERGATE_IMAGE_FUZZ_ITERATIONS ?? 10_000);
/** One input's time beyond which it counts as over its bound. */
const SLOW_MS = 5_000;
const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const TGZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

type Random = () => number;
type Target = 'index' | 'manifest' | 'config' | 'tar' | 'script' | 'ldcache';
const TARGETS: readonly Target[] = ['index', 'manifest', 'config', 'tar', 'tar', 'script', 'script', 'ldcache'];

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const SCRIPT = `#!/bin/sh
set -e
if [ "\${1#-}" != "$1" ]; then set -- server "$@"; fi
case "$1" in
  server) exec /usr/bin/app --port 8080 "$@" ;;
  *) exec "$@" ;;
esac
trap 'rm -f /tmp/x' EXIT
for f in /etc/app.d/*.sh; do . "$f"; done
$(command -v helper) --check || echo "no helper"
`;

interface Parts {
  script: Buffer;
  ldcache: Buffer;
  /** The uncompressed tar of layer 0 (layer 1 is fixed). */
  tar: Buffer;
  config: Record<string, unknown>;
}

function entriesOf(parts: Pick<Parts, 'script' | 'ldcache'>): EntrySpec[] {
  return [
    { name: 'usr/bin/', type: 'directory' },
    { name: 'entrypoint.sh', content: parts.script, mode: 0o755 },
    { name: 'etc/ld.so.cache', content: parts.ldcache },
    { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
    { name: 'usr/bin/sh', type: 'link', linkname: 'entrypoint.sh' },
  ];
}

/** JSON mutated by structure: a field deleted, retyped, or given a boundary value. */
function mutateJson(value: unknown, random: Random): unknown {
  const boundary = (): unknown => [null, -1, 0, 2 ** 53, 1e308, '', 'x'.repeat(5000), [], {}, true, 'sha256:' + '0'.repeat(64), '../../etc/passwd'][random() % 12];
  const visit = (node: unknown, depth: number): unknown => {
    if (Array.isArray(node)) {
      if (node.length > 0 && random() % 3 !== 0) {
        const copy = [...node];
        const i = random() % copy.length;
        copy[i] = random() % 4 === 0 ? boundary() : visit(copy[i], depth + 1);
        return copy;
      }
      return random() % 2 === 0 ? [...node, boundary()] : node.slice(1);
    }
    if (node && typeof node === 'object') {
      const copy: Record<string, unknown> = { ...(node as Record<string, unknown>) };
      const keys = Object.keys(copy);
      if (keys.length === 0 || random() % 8 === 0) {
        copy[['mediaType', 'digest', 'size', 'layers', 'config', 'Entrypoint', 'Env', 'platform', 'rootfs'][random() % 9]!] = boundary();
        return copy;
      }
      const key = keys[random() % keys.length]!;
      const roll = random() % 6;
      if (roll === 0) delete copy[key];
      else if (roll === 1) copy[key] = boundary();
      else copy[key] = visit(copy[key], depth + 1);
      return copy;
    }
    return depth > 0 && random() % 2 === 0 ? boundary() : node;
  };
  return visit(value, 0);
}

/** Bytes flipped, set to boundary values, or cut. */
function mutateBytes(bytes: Buffer, random: Random, within = bytes.length): Buffer {
  const out = Buffer.from(bytes);
  const edits = 1 + (random() % 6);
  for (let e = 0; e < edits; e++) {
    const at = random() % Math.max(1, Math.min(within, out.length));
    const roll = random() % 5;
    if (roll === 0) out[at] = out[at]! ^ (1 << random() % 8);
    else if (roll === 1) out[at] = [0, 0xff, 0x7f, 0x80, 0x30, 0x37][random() % 6]!;
    else if (roll === 2) out.write(String(random()), at, 'latin1');
    else if (roll === 3 && out.length > 1) return out.subarray(0, at);
    else out[at] = random() & 0xff;
  }
  return out;
}

/** Writes one input as an OCI layout in `dir`: the parts, mutated where `target` says. */
async function writeInput(dir: string, base: Parts, layer1: Buffer, target: Target, random: Random): Promise<{ scan: boolean }> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (bytes: Buffer): Promise<string> => {
    const hex = sha(bytes);
    await fs.writeFile(path.join(dir, 'blobs', 'sha256', hex), bytes);
    return `sha256:${hex}`;
  };
  // Digests recomputed (reaching the parser behind the check) three times in four.
  const consistent = random() % 4 !== 0;
  let tar = base.tar;
  if (target === 'script' || target === 'ldcache') {
    const script = target === 'script' ? mutateBytes(base.script, random) : base.script;
    const ldcache = target === 'ldcache' ? mutateBytes(base.ldcache, random) : base.ldcache;
    tar = await tarOf(entriesOf({ script, ldcache }));
  } else if (target === 'tar') {
    // Headers live in the first 512 bytes of each member: aim most edits at the first members.
    tar = mutateBytes(base.tar, random, random() % 2 === 0 ? 2048 : base.tar.length);
  }
  const gzipped = random() % 2 === 0;
  const blob0 = gzipped ? zlib.gzipSync(tar) : tar;
  const layers = [
    { mediaType: gzipped ? TGZ : TAR, digest: await put(blob0), size: blob0.length },
    { mediaType: TGZ, digest: await put(layer1), size: layer1.length },
  ];
  let config: unknown = { ...base.config, rootfs: { type: 'layers', diff_ids: [`sha256:${sha(tar)}`, `sha256:${sha(zlib.gunzipSync(layer1))}`] } };
  if (target === 'config') config = mutateJson(config, random);
  let configBytes: Buffer = Buffer.from(JSON.stringify(config));
  if (target === 'config' && random() % 3 === 0) configBytes = mutateBytes(configBytes, random);
  const configDigest = await put(configBytes);
  let manifest: unknown = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: consistent ? configDigest : `sha256:${'1'.repeat(64)}`, size: configBytes.length },
    layers,
  };
  if (target === 'manifest') manifest = mutateJson(manifest, random);
  let manifestBytes: Buffer = Buffer.from(JSON.stringify(manifest));
  if (target === 'manifest' && random() % 3 === 0) manifestBytes = mutateBytes(manifestBytes, random);
  const manifestDigest = await put(manifestBytes);
  let index: unknown = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifestBytes.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  };
  if (target === 'index') index = mutateJson(index, random);
  let indexBytes: Buffer = Buffer.from(JSON.stringify(index));
  if (target === 'index' && random() % 3 === 0) indexBytes = mutateBytes(indexBytes, random);
  await fs.writeFile(path.join(dir, 'index.json'), indexBytes);
  await fs.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return { scan: target === 'script' || target === 'ldcache' || target === 'config' };
}

let work: string;
let base: Parts;
let layer1: Buffer;

before(async () => {
  work = await tempDir('dockergate-image-fuzz-');
  const script = Buffer.from(SCRIPT);
  const ldcache = ldSoCache([
    ['libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6'],
    ['libm.so.6', '/lib/x86_64-linux-gnu/libm.so.6'],
  ]);
  base = {
    script,
    ldcache,
    tar: await tarOf(entriesOf({ script, ldcache })),
    config: {
      architecture: 'amd64',
      os: 'linux',
      config: {
        Entrypoint: ['/entrypoint.sh'],
        Cmd: ['--verbose'],
        Env: ['PATH=/usr/bin:/bin', 'LD_LIBRARY_PATH=/opt/lib:$ORIGIN/../lib'],
        WorkingDir: '/srv',
        Healthcheck: { Test: ['CMD-SHELL', 'wget -q -O- http://localhost:8080/ || exit 1'] },
      },
    },
  };
  layer1 = zlib.gzipSync(await tarOf([{ name: 'usr/bin/app', content: '#!/bin/sh\nexec sleep 1\n', mode: 0o755 }, { name: '.wh.gone', content: '' }]));
});

after(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('image fuzzing', () => {
  it(`${ITERATIONS} mutated images end in a result or a typed error, each within its bound`, { timeout: 60 * 60_000 }, async (t) => {
    const random = prng(0x1a6e5eed);
    const runtime = embeddedRuntime(DEFAULT_LIMITS, path.join(work, 'cache'));
    const outcomes = new Map<string, number>();
    const foreign: string[] = [];
    let slowest = 0;
    const started = performance.now();
    try {
      const dir = path.join(work, 'input');
      for (let i = 0; i < ITERATIONS; i++) {
        const target = TARGETS[random() % TARGETS.length]!;
        const { scan } = await writeInput(dir, base, layer1, target, random);
        const begun = performance.now();
        let outcome: string;
        try {
          const options = { source: { platform: PLATFORM, insecure: false } };
          if (scan) await scanImage(runtime, `oci:${dir}`, options);
          else await inspectImage(runtime, `oci:${dir}`, options);
          outcome = 'ok';
        } catch (err) {
          if (err instanceof DockergateError) outcome = err.code;
          else {
            outcome = 'foreign';
            if (foreign.length < 10) foreign.push(`#${i} ${target}: ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err)}`);
          }
        }
        const ms = performance.now() - begun;
        slowest = Math.max(slowest, ms);
        assert.ok(ms < SLOW_MS, `input #${i} (${target}) took ${Math.round(ms)} ms`);
        const key = `${target}:${outcome}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
    } finally {
      await runtime.close();
    }
    t.diagnostic(`${ITERATIONS} inputs in ${((performance.now() - started) / 1000).toFixed(1)} s, slowest ${Math.round(slowest)} ms`);
    t.diagnostic([...outcomes].sort().map(([key, n]) => `${key} ${n}`).join(', '));
    assert.deepEqual(foreign, [], 'inputs that ended in an error that is not dockergate\'s');
    // The mutations must reach past the digest checks: some inputs of each target are read whole.
    for (const target of new Set(TARGETS)) assert.ok((outcomes.get(`${target}:ok`) ?? 0) > 0, `some ${target} mutations still give a result`);
  });
});
