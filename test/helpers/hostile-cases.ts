/**
 * The hostile-input cases (test/hostile-input.test.ts runs them in process, and
 * test/hostile-isolation.test.ts each in a child process under strace): crafted layers, layouts and
 * archives for `inspect`, and crafted images for the planner, with the runner that checks each.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { embeddedRuntime } from '../../coordinator/runtime/embedded.js';
import { SymlinkLoopError } from '../../coordinator/plan/image-tree.js';
import { type InspectResult, inspectImage } from '../../coordinator/plan/inspect.js';
import { type ScanResult, scanImage } from '../../coordinator/plan/scan.js';
import {
  DigestMismatchError,
  DockergateError,
  InvalidInputError,
  LimitExceededError,
  NotFoundError,
  UnsafePathError,
  UnsupportedError,
} from '../../infra/errors.js';
import { DEFAULT_LIMITS, type Limits, limitsWith, MiB } from '../../infra/limits.js';
import { indexTarFile } from '../../extractor/tar-index.js';
import {
  digestOf,
  type EntrySpec,
  gzip,
  gzipLayer,
  ldSoCache,
  listFiles,
  type OciImageSpec,
  type OciLayer,
  tarOf,
  tempDir,
  ustarHeader,
  writeOciLayout,
  zstd,
} from './layers.js';

/**
 * Files the isolation test's child writes into the sandbox around dockergate's part of a case:
 * what lies between them in its strace log is dockergate's, the rest the harness's set-up and checks.
 */
export const START_MARKER = '.dockergate-start';
export const END_MARKER = '.dockergate-end';

/** Called with `start` once a case's input is ready, and `end` once dockergate is done with it. */
export type CaseMark = (phase: 'start' | 'end') => Promise<void>;

export type ErrorClass = abstract new (...args: never[]) => DockergateError;

export interface HostileCase {
  readonly name: string;
  readonly image: () => Promise<OciImageSpec>;
  readonly limits?: Partial<Limits>;
  /** The typed error expected, or a check of the bounded result. */
  readonly expect: ErrorClass | ((result: InspectResult) => void | Promise<void>);
  /** For `LimitExceededError`: the limit it must name. */
  readonly limit?: keyof Limits;
  /**
   * Turns the written layout (in `sandbox`) into the input to read: its reference (default
   * `oci:<layout>`), or a reference with a server to close afterwards (a hostile registry on loopback).
   */
  readonly input?: (layout: string, sandbox: string) => Promise<string | CaseInput>;
}

export interface CaseInput {
  readonly reference: string;
  /** Plain HTTP to a loopback registry. */
  readonly insecure?: boolean;
  /** Stops what the input started (called once dockergate is done, whatever the outcome). */
  readonly close?: () => Promise<void>;
}

export const run = promisify(execFile);

/** The layout as one tar file (`oci:` reads OCI layout tarballs too), `tail` bytes of sparse zeros after it. */
async function layoutTarball(layout: string, sandbox: string, tail: number): Promise<string> {
  const file = path.join(sandbox, 'input', 'layout.tar');
  await fs.mkdir(path.dirname(file));
  await run('tar', ['-cf', file, '-C', layout, '.']);
  const { size } = await fs.stat(file);
  await fs.truncate(file, size + tail);
  return `oci:${file}`;
}

export const layers = async (...sets: EntrySpec[][]): Promise<OciImageSpec> => ({ layers: await Promise.all(sets.map(gzipLayer)) });
const rawLayer = (blob: Buffer, mediaType: string, tar: Buffer = blob): OciLayer => ({ blob, mediaType, tar });
const paths = (result: InspectResult): string[] => [...result.tree.files()].map((file) => file.path);
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const TGZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const TZST = 'application/vnd.oci.image.layer.v1.tar+zstd';

/** A tar with `count` empty files, built without tar-stream's per-entry overhead. */
export function manyFilesTar(count: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; i < count; i++) blocks.push(ustarHeader(`f/${i}`, 0));
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export const CASES: HostileCase[] = [
  { name: '../ traversal', image: () => layers([{ name: '../etc/passwd', content: 'x' }]), expect: UnsafePathError },
  { name: 'nested ../ climbing out', image: () => layers([{ name: 'a/b/../../../x', content: 'x' }]), expect: UnsafePathError },
  { name: 'PAX path with ..', image: () => layers([{ name: 'ok', content: 'x', pax: { path: '../../../tmp/evil' } }]), expect: UnsafePathError },
  {
    name: 'absolute path lands inside the image',
    image: () => layers([{ name: '/etc/abs', content: 'x' }]),
    expect: (r) => assert.deepEqual(paths(r), ['/etc', '/etc/abs']),
  },
  {
    name: '.. that stays inside is cleaned',
    image: () => layers([{ name: 'a/../b/./c', content: 'x' }]),
    expect: (r) => assert.deepEqual(paths(r), ['/b', '/b/c']),
  },
  {
    name: 'symlink to an absolute path outside resolves inside',
    image: () => layers([{ name: 'etc/passwd', content: 'inside' }, { name: 'esc', type: 'symlink', linkname: '/../../../etc/passwd' }]),
    expect: (r) => assert.equal(r.tree.resolve('/esc').path, '/etc/passwd'),
  },
  {
    name: 'relative symlink escape is confined',
    image: () => layers([{ name: 'etc/shadow', content: 's' }, { name: 'a/b/up', type: 'symlink', linkname: '../../../../../../etc/shadow' }]),
    expect: (r) => assert.equal(r.tree.resolve('/a/b/up').path, '/etc/shadow'),
  },
  {
    name: 'file written through a symlinked parent stays inside',
    image: () => layers([{ name: 'tmp/', type: 'directory' }, { name: 'lnk', type: 'symlink', linkname: '../../../../tmp' }, { name: 'lnk/evil', content: 'x' }]),
    expect: (r) => assert.ok(paths(r).includes('/tmp/evil')),
  },
  {
    name: 'file written through a dangling symlinked parent',
    image: () => layers([{ name: 'lnk', type: 'symlink', linkname: '/nowhere/../../x' }, { name: 'lnk/evil', content: 'x' }]),
    expect: InvalidInputError,
  },
  { name: 'hard link escaping the root', image: () => layers([{ name: 'h', type: 'link', linkname: '../../etc/passwd' }]), expect: UnsafePathError },
  { name: 'hard link to a missing file', image: () => layers([{ name: 'h', type: 'link', linkname: 'nowhere' }]), expect: InvalidInputError },
  {
    name: 'hard link to a file of a lower layer',
    image: () => layers([{ name: 'bin/real', content: 'data' }], [{ name: 'bin/alias', type: 'link', linkname: 'bin/real' }]),
    expect: (r) => assert.equal(r.tree.resolve('/bin/alias').sha256, r.tree.resolve('/bin/real').sha256),
  },
  {
    name: 'symlink loop a→b→a',
    image: () => layers([{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }]),
    expect: (r) => assert.throws(() => r.tree.resolve('/a'), SymlinkLoopError),
  },
  {
    name: 'self-referencing symlink',
    image: () => layers([{ name: 'self', type: 'symlink', linkname: '/self' }]),
    expect: (r) => assert.throws(() => r.tree.resolve('/self/x'), SymlinkLoopError),
  },
  {
    name: 'chain of 60 symlinks exceeds the hop limit',
    image: () => layers(Array.from({ length: 60 }, (_, i) => ({ name: `l${i}`, type: 'symlink' as const, linkname: `l${i + 1}` }))),
    expect: (r) => assert.throws(() => r.tree.resolve('/l0'), SymlinkLoopError),
  },
  {
    name: 'entrypoint through a symlink loop is reported, not thrown',
    image: async () => ({ ...(await layers([{ name: 'bin/x', type: 'symlink', linkname: 'x' }])), config: { Entrypoint: ['/bin/x'] } }),
    expect: (r) => assert.match(r.entrypoint.problem ?? '', /too many levels of symbolic links/),
  },
  {
    name: 'a symlink replaced by a directory in a later layer',
    image: () => layers([{ name: 'x', type: 'symlink', linkname: '/etc' }], [{ name: 'x/', type: 'directory' }, { name: 'x/f', content: '1' }]),
    expect: (r) => {
      assert.equal(r.tree.lstat('/x')?.type, 'dir');
      assert.ok(paths(r).includes('/x/f'));
    },
  },
  {
    name: 'a directory replaced by a file',
    image: () => layers([{ name: 'd/a', content: '1' }, { name: 'd/b', content: '2' }], [{ name: 'd', content: 'now a file' }]),
    expect: (r) => {
      assert.equal(r.tree.lstat('/d')?.type, 'file');
      assert.equal(r.counts.files, 1);
    },
  },
  {
    name: 'file as a parent directory',
    image: () => layers([{ name: 'f', content: 'x' }, { name: 'f/child', content: 'y' }]),
    expect: InvalidInputError,
  },
  {
    name: 'device files and fifos are data only',
    image: () => layers([{ name: 'dev/sda', type: 'block-device' }, { name: 'dev/null', type: 'character-device' }, { name: 'dev/p', type: 'fifo' }]),
    expect: (r) => assert.deepEqual([...r.tree.files()].map((f) => f.type), ['dir', 'char', 'fifo', 'block']),
  },
  { name: 'whiteout of the parent (.wh...)', image: () => layers([{ name: 'a/.wh...', content: '' }]), expect: UnsafePathError },
  {
    name: 'opaque marker at the root hides every lower file',
    image: () => layers([{ name: 'old', content: '1' }], [{ name: '.wh..wh..opq', content: '' }, { name: 'new', content: '2' }]),
    expect: (r) => assert.deepEqual(paths(r), ['/new']),
  },
  {
    name: 'duplicate entries: the last one wins',
    image: () => layers([{ name: 'dup', content: 'first' }, { name: 'dup', content: 'second' }]),
    expect: (r) => assert.equal(r.tree.resolve('/dup').size, 'second'.length),
  },
  {
    name: 'huge PAX header (5 MiB)',
    image: () => layers([{ name: 'p', content: 'x', pax: { comment: 'c'.repeat(5 * MiB) } }]),
    expect: InvalidInputError,
  },
  { name: 'PAX path longer than maxPathBytes', image: () => layers([{ name: 'p', content: 'x', pax: { path: 'a/'.repeat(3000) } }]), expect: LimitExceededError },
  { name: 'path deeper than maxPathDepth', image: () => layers([{ name: 'p', content: 'x', pax: { path: 'd/'.repeat(300) + 'f' } }]), expect: LimitExceededError },
  { name: 'symlink target longer than maxPathBytes', image: () => layers([{ name: 's', type: 'symlink', linkname: 'x', pax: { linkpath: 'y'.repeat(5000) } }]), expect: LimitExceededError },
  {
    name: 'truncated gzip stream',
    image: async () => {
      const layer = await gzipLayer([{ name: 'f', content: 'x'.repeat(10000) }]);
      const blob = layer.blob.subarray(0, layer.blob.length - 20);
      return { layers: [rawLayer(blob, TGZ, layer.tar)] };
    },
    expect: InvalidInputError,
  },
  {
    name: 'truncated zstd stream',
    image: async () => {
      const tar = await tarOf([{ name: 'f', content: Buffer.alloc(200000, 3) }]);
      const blob = (await zstd(tar)).subarray(0, 30);
      return { layers: [rawLayer(blob, TZST, tar)] };
    },
    expect: InvalidInputError,
  },
  {
    name: 'truncated tar (cut inside a file)',
    image: async () => {
      const tar = (await tarOf([{ name: 'f', content: Buffer.alloc(5000, 1) }])).subarray(0, 2048);
      return { layers: [rawLayer(tar, TAR)] };
    },
    expect: InvalidInputError,
  },
  { name: 'garbage declared as gzip', image: async () => ({ layers: [rawLayer(Buffer.from('not gzip at all'), TGZ)] }), expect: InvalidInputError },
  {
    name: 'tar header with a bad checksum',
    image: async () => {
      const tar = await tarOf([{ name: 'f', content: 'x' }]);
      tar[0] = 0x41;
      return { layers: [rawLayer(tar, TAR)] };
    },
    expect: InvalidInputError,
  },
  {
    name: 'gzip decompression bomb (1 GiB of zeros)',
    image: async () => {
      const zero = Buffer.alloc(MiB);
      const gz = zlib.createGzip({ level: 9 });
      const chunks: Buffer[] = [];
      gz.on('data', (chunk: Buffer) => chunks.push(chunk));
      gz.write(ustarHeader('bomb', 8 * 1024 * MiB));
      for (let i = 0; i < 1024; i++) gz.write(zero);
      await new Promise<void>((resolve) => gz.end(resolve));
      return { layers: [rawLayer(Buffer.concat(chunks), TGZ, Buffer.alloc(0))] };
    },
    limits: { bombRatioGraceBytes: 16 * MiB },
    expect: LimitExceededError,
  },
  {
    name: 'zstd bomb past maxLayerTarBytes',
    image: async () => {
      const tar = await tarOf([{ name: 'zeros', content: Buffer.alloc(64 * MiB) }]);
      return { layers: [rawLayer(await zstd(tar), TZST, tar)] };
    },
    limits: { maxLayerTarBytes: 8 * MiB },
    expect: LimitExceededError,
  },
  {
    name: '100k tiny files are handled',
    image: async () => {
      const tar = manyFilesTar(100_000);
      return { layers: [rawLayer(gzip(tar), TGZ, tar)] };
    },
    expect: (r) => assert.equal(r.counts.files, 100_001),
  },
  {
    name: '100k tiny files past maxEntriesPerLayer',
    image: async () => {
      const tar = manyFilesTar(100_000);
      return { layers: [rawLayer(gzip(tar), TGZ, tar)] };
    },
    limits: { maxEntriesPerLayer: 50_000 },
    expect: LimitExceededError,
  },
  {
    name: 'ELF file larger than maxBlobBytes',
    image: () => layers([{ name: 'big', content: Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(2 * MiB)]) }]),
    limits: { maxBlobBytes: MiB },
    expect: LimitExceededError,
  },
  {
    name: 'layer blob larger than declared',
    image: async () => {
      const layer = await gzipLayer([{ name: 'f', content: 'x' }]);
      return { layers: [{ ...layer, declaredSize: layer.blob.length - 10 }] };
    },
    expect: DigestMismatchError,
  },
  {
    name: 'layer blob whose digest is wrong',
    image: async () => {
      const layer = await gzipLayer([{ name: 'f', content: 'x' }]);
      return { layers: [{ ...layer, declaredDigest: digestOf('something else') }] };
    },
    expect: DigestMismatchError,
  },
  {
    name: 'diff_id that does not match the uncompressed layer',
    image: async () => {
      const layer = await gzipLayer([{ name: 'f', content: 'x' }]);
      return { layers: [{ ...layer, diffId: digestOf('other') }] };
    },
    expect: DigestMismatchError,
  },
  {
    name: 'a manifest listing 1,000 layers is refused before any is read',
    image: async () => {
      const layer = await gzipLayer([{ name: 'f', content: 'x' }]);
      return { layers: Array.from({ length: 1_000 }, () => layer) };
    },
    expect: LimitExceededError,
  },
  {
    name: 'directories nested 300 deep through symlinked parents (each path only 2 deep)',
    image: () =>
      layers([
        { name: 'a/', type: 'directory' },
        ...Array.from({ length: 300 }, (_, i): EntrySpec[] => [
          { name: `s${i}`, type: 'symlink', linkname: `/a${'/n'.repeat(i)}` },
          { name: `s${i}/n/`, type: 'directory' },
        ]).flat(),
      ]),
    expect: LimitExceededError,
  },
  {
    name: 'a layer of long symlinks past maxLayerRecordBytes (the record would not fit a string)',
    image: () => layers(Array.from({ length: 1000 }, (_, i) => ({ name: `l/${i}`, type: 'symlink' as const, linkname: `/${'t'.repeat(2000)}` }))),
    limits: { maxLayerRecordBytes: MiB },
    expect: LimitExceededError,
  },
  {
    name: 'OCI layout tarball followed by a 64 GiB sparse tail of zeros: the tail is never read',
    image: () => layers([{ name: 'bin/x', content: 'x' }]),
    input: (layout, sandbox) => layoutTarball(layout, sandbox, 64 * 1024 * MiB),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x']),
  },
  {
    name: 'OCI layout whose blobs/sha256 is a symlink to a directory outside it',
    image: () => layers([{ name: 'f', content: 'x' }]),
    input: async (layout, sandbox) => {
      const outside = path.join(sandbox, 'outside');
      await fs.rename(path.join(layout, 'blobs', 'sha256'), outside);
      await fs.symlink(outside, path.join(layout, 'blobs', 'sha256'));
      return `oci:${layout}`;
    },
    expect: InvalidInputError,
  },
  {
    name: 'OCI layout whose index.json is a symlink to /proc/self/environ',
    image: () => layers([{ name: 'f', content: 'x' }]),
    input: async (layout) => {
      await fs.rm(path.join(layout, 'index.json'));
      await fs.symlink('/proc/self/environ', path.join(layout, 'index.json'));
      return `oci:${layout}`;
    },
    expect: InvalidInputError,
  },
  {
    name: 'OCI layout whose index.json is a FIFO: never opened, no hang',
    image: () => layers([{ name: 'f', content: 'x' }]),
    input: async (layout) => {
      await fs.rm(path.join(layout, 'index.json'));
      await run('mkfifo', [path.join(layout, 'index.json')]);
      return `oci:${layout}`;
    },
    expect: NotFoundError,
  },
  {
    name: 'OCI layout tarball whose member data runs past the end of the file',
    image: () => layers([{ name: 'f', content: randomBytes(64 * 1024) }]),
    input: async (layout, sandbox) => {
      const reference = await layoutTarball(layout, sandbox, 0);
      const file = reference.slice('oci:'.length);
      // Cut in the middle of the largest member's data (the layer blob).
      const members = [...(await indexTarFile(file, DEFAULT_LIMITS)).values()].sort((a, b) => b.size - a.size);
      await fs.truncate(file, members[0]!.offset + Math.floor(members[0]!.size / 2));
      return reference;
    },
    expect: InvalidInputError,
  },
  {
    // 30,000 entries take far longer than 50 ms to extract: the unit stops and fails with the limit.
    name: 'a layer whose extraction runs past extractTimeoutMs',
    image: async () => ({ layers: [rawLayer(manyFilesTar(30_000), TAR)] }),
    limits: { extractTimeoutMs: 50 },
    expect: LimitExceededError,
    limit: 'extractTimeoutMs',
  },
  {
    name: 'an image whose inspection runs past scanTimeoutMs',
    image: async () => ({ layers: [rawLayer(manyFilesTar(30_000), TAR)] }),
    limits: { scanTimeoutMs: 50 },
    expect: LimitExceededError,
    limit: 'scanTimeoutMs',
  },
  {
    name: 'unsupported layer media type',
    image: async () => ({ layers: [{ ...(await gzipLayer([{ name: 'f', content: 'x' }])), mediaType: 'application/x-evil' }] }),
    expect: UnsupportedError,
  },
];

/** Runs one case in `given` (a fresh temp dir when absent, removed afterwards), `mark`ing dockergate's part. */
export async function runCase(testCase: HostileCase, given?: string, mark: CaseMark = async () => {}): Promise<void> {
  const sandbox = given ?? (await tempDir('dockergate-hostile-'));
  try {
    const layout = path.join(sandbox, 'layout');
    const cache = path.join(sandbox, 'cache');
    const spec = await testCase.image();
    await writeOciLayout(layout, spec);
    const given = testCase.input ? await testCase.input(layout, sandbox) : `oci:${layout}`;
    const input: CaseInput = typeof given === 'string' ? { reference: given } : given;
    const before = await listFiles(layout);
    await mark('start');
    const runtime = embeddedRuntime(limitsWith(testCase.limits ?? {}), cache);
    let outcome: InspectResult | unknown;
    try {
      outcome = await inspectImage(runtime, input.reference, { source: { platform: { os: 'linux', architecture: 'amd64' }, insecure: Boolean(input.insecure) } });
    } catch (err) {
      outcome = err;
    } finally {
      await runtime.close();
      await mark('end');
      await input.close?.();
    }
    if (typeof testCase.expect === 'function' && testCase.expect.prototype instanceof DockergateError) {
      assert.ok(outcome instanceof (testCase.expect as ErrorClass), `expected ${testCase.expect.name}, got ${outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : 'a result'}`);
      if (testCase.limit) assert.equal((outcome as LimitExceededError).limit, testCase.limit, (outcome as Error).message);
    } else {
      if (outcome instanceof Error) throw outcome;
      await (testCase.expect as (r: InspectResult) => void)(outcome as InspectResult);
    }
    // Nothing written outside the CAS and the record store; the input is untouched; no spool left.
    const written = (await listFiles(sandbox)).filter((file) => !/^(layout|input|outside)\//.test(file) && file !== START_MARKER && file !== END_MARKER);
    for (const file of written) assert.match(file, /^cache\/(blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}|layers\/v\d+\/[0-9a-f]{2}\/[0-9a-f]{64}\.json)$/);
    assert.deepEqual(await listFiles(layout), before);
  } finally {
    await fs.rm(sandbox, { recursive: true, force: true });
  }
}

/**
 * Hostile images for the planner: each must be scanned within its budgets, and every budget it
 * reaches must be a decision of the report (with the Docker-default fallback, or "cannot run").
 */
export interface HostileScanCase {
  readonly name: string;
  readonly image: () => Promise<OciImageSpec>;
  /** A decision the report must hold. */
  readonly decision: { readonly kind: string; readonly detail: RegExp };
  /** The scan must fall back to Docker's default (a budget reached) or not (a program that cannot run). */
  readonly fallback: boolean;
  /** Limits other than the defaults (small deadlines, to reach them quickly). */
  readonly limits?: Partial<Limits>;
}

const EXECUTABLE = 0o755;
const SHELL_STUB = { name: 'bin/sh', content: Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(60)]), mode: EXECUTABLE };

export const SCAN_CASES: HostileScanCase[] = [
  {
    name: 'a #! interpreter chain that loops back on itself',
    image: async () => ({
      ...(await layers([
        { name: 'a', content: '#!/b\n', mode: EXECUTABLE },
        { name: 'b', content: '#!/a\n', mode: EXECUTABLE },
      ])),
      config: { Entrypoint: ['/a'] },
    }),
    decision: { kind: 'missing', detail: /interpreters deep .*ELOOP/ },
    fallback: false,
  },
  {
    name: 'a 2 MB entrypoint script',
    image: async () => ({
      ...(await layers([SHELL_STUB, { name: 'entry.sh', content: `#!/bin/sh\n${'/bin/true "$x" && echo y\n'.repeat(80_000)}`, mode: EXECUTABLE }])),
      config: { Entrypoint: ['/entry.sh'] },
    }),
    decision: { kind: 'limit', detail: /maxShellScriptBytes/ },
    fallback: true,
  },
  {
    name: 'a HEALTHCHECK CMD-SHELL of 500k lines',
    image: async () => ({
      ...(await layers([SHELL_STUB])),
      config: { Entrypoint: ['/bin/sh'], Healthcheck: { Test: ['CMD-SHELL', 'true\n'.repeat(500_000)] } },
    }),
    decision: { kind: 'limit', detail: /maxShellScriptBytes/ },
    fallback: true,
  },
  {
    name: 'a PATH of 100k entries',
    image: async () => ({
      ...(await layers([SHELL_STUB])),
      config: { Entrypoint: ['sh'], Env: [`PATH=${Array.from({ length: 100_000 }, (_, i) => `/p${i}`).join(':')}:/bin`] },
    }),
    decision: { kind: 'limit', detail: /PATH has 100001 entries/ },
    fallback: true,
  },
  {
    name: 'an LD_LIBRARY_PATH of 100k entries through a symlink loop',
    image: async () => ({
      ...(await layers([SHELL_STUB, { name: 'l', type: 'symlink', linkname: 'l' }])),
      config: { Entrypoint: ['/bin/sh'], Env: ['PATH=/bin', `LD_LIBRARY_PATH=${Array.from({ length: 100_000 }, () => '/l/l/l').join(':')}`] },
    }),
    decision: { kind: 'limit', detail: /LD_LIBRARY_PATH has 100000 entries/ },
    fallback: true,
  },
  {
    name: 'an /etc/ld.so.cache declaring 100k entries',
    image: async () => ({
      ...(await layers([SHELL_STUB, { name: 'etc/ld.so.cache', content: ldSoCache([['libx.so', '/lib/libx.so']], 100_000) }])),
      config: { Entrypoint: ['/bin/sh'] },
    }),
    decision: { kind: 'limit', detail: /maxLdCacheEntries/ },
    fallback: true,
  },
  {
    name: 'a script whose evaluation runs past shellParseTimeoutMs',
    image: async () => ({
      ...(await layers([SHELL_STUB, { name: 'entry.sh', content: `#!/bin/sh\n${'if [ -n "$x" ]; then /bin/true "$x"; fi\n'.repeat(2_000)}`, mode: EXECUTABLE }])),
      config: { Entrypoint: ['/entry.sh'] },
    }),
    limits: { shellParseTimeoutMs: 1 },
    decision: { kind: 'limit', detail: /entry\.sh: evaluating \/entry\.sh exceeds limit shellParseTimeoutMs/ },
    fallback: true,
  },
  {
    // 1,500 programs to look up: planning passes 1 ms, stops following, and says so.
    name: 'planning that runs past planTimeoutMs',
    image: async () => ({
      ...(await layers([SHELL_STUB, { name: 'entry.sh', content: `#!/bin/sh\n${Array.from({ length: 1_500 }, (_, i) => `prog${i}\n`).join('')}`, mode: EXECUTABLE }])),
      config: { Entrypoint: ['/entry.sh'] },
    }),
    limits: { planTimeoutMs: 1 },
    decision: { kind: 'limit', detail: /planning ran past planTimeoutMs \(1 ms\)/ },
    fallback: true,
  },
  {
    name: 'an /etc/ld.so.cache larger than maxImageConfigFileBytes is not read',
    image: async () => ({
      ...(await layers([SHELL_STUB, { name: 'etc/ld.so.cache', content: Buffer.alloc(17 * MiB) }])),
      config: { Entrypoint: ['/bin/sh'] },
    }),
    decision: { kind: 'limit', detail: /\/etc\/ld\.so\.cache is 17825792 bytes \(maxImageConfigFileBytes/ },
    fallback: true,
  },
];

export async function runScanCase(testCase: HostileScanCase, given?: string, mark: CaseMark = async () => {}): Promise<void> {
  const sandbox = given ?? (await tempDir('dockergate-hostile-scan-'));
  try {
    const layout = path.join(sandbox, 'layout');
    await writeOciLayout(layout, await testCase.image());
    await mark('start');
    const runtime = embeddedRuntime(limitsWith(testCase.limits ?? {}), path.join(sandbox, 'cache'));
    const started = performance.now();
    let result: ScanResult;
    try {
      result = await scanImage(runtime, `oci:${layout}`, { source: { platform: { os: 'linux', architecture: 'amd64' }, insecure: false } });
    } finally {
      await runtime.close();
      await mark('end');
    }
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 20, `scanned in ${seconds.toFixed(1)} s`);
    const found = result.decisions.find((d) => d.kind === testCase.decision.kind && testCase.decision.detail.test(d.detail));
    assert.ok(found, `a ${testCase.decision.kind} decision matching ${testCase.decision.detail}: ${JSON.stringify(result.decisions, null, 1).slice(0, 2000)}`);
    const fellBack = result.syscalls.has('ptrace');
    assert.equal(fellBack, testCase.fallback, `Docker's default fallback ${testCase.fallback ? 'expected' : 'not expected'}`);
    if (testCase.fallback) assert.equal(result.unsure, true);
  } finally {
    await fs.rm(sandbox, { recursive: true, force: true });
  }
}

