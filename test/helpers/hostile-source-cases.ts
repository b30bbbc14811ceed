/**
 * Hostile inputs of the other sources, for `inspect`: docker archives (files and directories),
 * `dir:` trees, registries on loopback, and hostile OCI layout metadata.
 *
 * Every input is written under the case's `<sandbox>/input/` (what the escape cases point at,
 * under `<sandbox>/outside/`); the registries listen on 127.0.0.1 only, and nothing here names an
 * address that would be contacted elsewhere.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import type { InspectResult } from '../../coordinator/plan/inspect.js';
import {
  AuthError,
  DigestMismatchError,
  type DockergateError,
  InvalidInputError,
  LimitExceededError,
  NotFoundError,
  UnavailableError,
  UnsafePathError,
  UnsupportedError,
} from '../../infra/errors.js';
import { GiB, MiB } from '../../infra/limits.js';
import { type CaseInput, type ErrorClass, type HostileCase, layers, run } from './hostile-cases.js';
import { digestOf, type EntrySpec, gzipLayer, type OciImageSpec, tarOf, ustarHeader } from './layers.js';

// ------------------------------------------------------------------------------ expectations

/**
 * `base`, narrowed to the errors that pass `check` (runCase tests `outcome instanceof expect`):
 * a class whose prototype is `base`'s, with its own `Symbol.hasInstance`.
 */
function narrowed(base: ErrorClass, label: string, check: (err: DockergateError) => boolean): ErrorClass {
  const matcher = function () {} as unknown as { prototype: unknown };
  matcher.prototype = base.prototype;
  Object.defineProperty(matcher, Symbol.hasInstance, { value: (value: unknown) => value instanceof base && check(value) });
  Object.defineProperty(matcher, 'name', { value: `${base.name} (${label})` });
  return matcher as unknown as ErrorClass;
}

/** A `LimitExceededError` naming `limit`. */
const limit = (name: string): ErrorClass => narrowed(LimitExceededError, name, (err) => (err as LimitExceededError).limit === name);
/** An error of class `base` whose message matches `pattern`. */
const saying = (base: ErrorClass, pattern: RegExp): ErrorClass => narrowed(base, String(pattern), (err) => pattern.test(err.message));

const paths = (result: InspectResult): string[] => [...result.tree.files()].map((file) => file.path);

// ------------------------------------------------------------------------------ inputs

const TAR = 'application/vnd.oci.image.layer.v1.tar';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A one-file image: the baseline each case corrupts one way. */
const oneFile = (): Promise<OciImageSpec> => layers([{ name: 'bin/x', content: 'x' }]);
/** One empty (zero-byte) uncompressed layer. */
const emptyLayer = async (): Promise<OciImageSpec> => ({ layers: [{ blob: Buffer.alloc(0), mediaType: TAR, tar: Buffer.alloc(0) }] });
/** One layer whose diff_id in the config is not its tar's digest. */
const wrongDiffId = async (): Promise<OciImageSpec> => ({ layers: [{ ...(await gzipLayer([{ name: 'f', content: 'x' }])), diffId: digestOf('another layer') }] });

/** An uncompressed one-file layer (no decompressor between the bytes and the digest check). */
async function tarLayerImage(name: string, content: string): Promise<OciImageSpec> {
  const tar = await tarOf([{ name, content }]);
  return { layers: [{ blob: tar, mediaType: TAR, tar }] };
}

/** `<sandbox>/input/<name>` (its parent made). */
async function inputPath(sandbox: string, ...names: string[]): Promise<string> {
  const file = path.join(sandbox, 'input', ...names);
  await fs.mkdir(path.dirname(file), { recursive: true });
  return file;
}

/** `<sandbox>/outside/<name>` with `content`: what an escaping input points at, never to be read. */
async function outsideFile(sandbox: string, name: string, content: string | Buffer): Promise<string> {
  const file = path.join(sandbox, 'outside', name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
  return file;
}

/** A sparse file of `size` bytes starting with `head`: gigabytes that cost no disk and must not be read. */
async function sparseFile(file: string, head: string | Buffer, size: number): Promise<void> {
  await fs.writeFile(file, head);
  await fs.truncate(file, size);
}

// ------------------------------------------------------------------------------ docker save

interface SavedEntry {
  Config: unknown;
  RepoTags: unknown;
  Layers: unknown;
}

/** A `docker save` archive before it is written: manifest.json's value and the other members. */
interface DockerSave {
  manifest: unknown;
  members: EntrySpec[];
}

/** The image config JSON, as writeOciLayout writes it. */
function imageConfig(spec: OciImageSpec): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: spec.architecture ?? 'amd64',
      os: 'linux',
      config: spec.config ?? { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] },
      rootfs: { type: 'layers', diff_ids: spec.layers.map((layer) => layer.diffId ?? digestOf(layer.tar)) },
    }),
  );
}

/**
 * The legacy `docker save` form of an image (Docker image spec v1.2): config `<hex>.json`, each
 * layer as the uncompressed tar `<i>/layer.tar`, and manifest.json naming them.
 */
function dockerSave(spec: OciImageSpec): DockerSave {
  const config = imageConfig(spec);
  const configName = `${digestOf(config).slice('sha256:'.length)}.json`;
  const layerNames = spec.layers.map((_, i) => `${i}/layer.tar`);
  return {
    manifest: [{ Config: configName, RepoTags: ['hostile/image:latest'], Layers: layerNames }],
    members: [{ name: configName, content: config }, ...spec.layers.map((layer, i) => ({ name: layerNames[i]!, content: layer.tar }))],
  };
}

/** The only image entry of a save's manifest.json. */
const savedEntry = (save: DockerSave): SavedEntry => (save.manifest as SavedEntry[])[0]!;

/** How a case writes a save: `edit` changes it first; `alter` then changes the directory written. */
interface SaveOptions {
  readonly edit?: (save: DockerSave) => void;
  /** Tarballs: manifest.json's own entry, when it is not a regular file (a symlink, a hard link). */
  readonly manifestEntry?: Omit<EntrySpec, 'name'>;
  /** Tarballs: bytes of sparse zeros after the archive's end. */
  readonly tail?: number;
  /** Directories: makes what a tar cannot carry (symlinks out, FIFOs, sparse files). */
  readonly alter?: (dir: string, sandbox: string, save: DockerSave) => Promise<void>;
}

const manifestText = (save: DockerSave): string => (typeof save.manifest === 'string' ? save.manifest : JSON.stringify(save.manifest));

/** A `docker-archive:` tarball of `image` in `<sandbox>/input/image.tar`, for a case's `input`. */
function saveTarball(image: () => Promise<OciImageSpec>, options: SaveOptions = {}) {
  return async (_layout: string, sandbox: string): Promise<string> => {
    const save = dockerSave(await image());
    options.edit?.(save);
    const file = await inputPath(sandbox, 'image.tar');
    const manifest: EntrySpec = { name: 'manifest.json', ...(options.manifestEntry ?? { content: manifestText(save) }) };
    await fs.writeFile(file, await tarOf([...save.members, manifest]));
    if (options.tail) await fs.truncate(file, (await fs.stat(file)).size + options.tail);
    return `docker-archive:${file}`;
  };
}

/** A `docker-archive:` directory (a save extracted) of `image` in `<sandbox>/input/saved`, for a case's `input`. */
function saveDirectory(image: () => Promise<OciImageSpec>, options: SaveOptions = {}) {
  return async (_layout: string, sandbox: string): Promise<string> => {
    const save = dockerSave(await image());
    options.edit?.(save);
    const dir = path.join(sandbox, 'input', 'saved');
    for (const member of [...save.members, { name: 'manifest.json', content: manifestText(save) }]) {
      await fs.mkdir(path.dirname(path.join(dir, member.name)), { recursive: true });
      await fs.writeFile(path.join(dir, member.name), member.content ?? '');
    }
    await options.alter?.(dir, sandbox, save);
    return `docker-archive:${dir}`;
  };
}

/** Replaces the save directory's `member` with a symlink to `target`. */
async function symlinkMember(dir: string, member: string, target: string): Promise<void> {
  await fs.rm(path.join(dir, member));
  await fs.symlink(target, path.join(dir, member));
}

/** Replaces `file` with a FIFO: opening it would block until a writer came, which none will. */
async function fifoAt(file: string): Promise<void> {
  await fs.rm(file, { force: true });
  await run('mkfifo', [file]);
}

// ------------------------------------------------------------------------------ OCI layout metadata

type JsonObject = Record<string, unknown>;
/** A manifest as writeOciLayout writes it. */
type ManifestJson = JsonObject & { config: JsonObject; layers: JsonObject[] };

const blobFile = (layout: string, digest: string): string => path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));

async function readJson<T = JsonObject>(file: string): Promise<T> {
  return JSON.parse(await fs.readFile(file, 'utf8')) as T;
}

/** Stores `bytes` as a blob of the layout; its descriptor's digest and size. */
async function putBlob(layout: string, bytes: Buffer | string): Promise<{ digest: string; size: number }> {
  const data = Buffer.from(bytes);
  const digest = digestOf(data);
  await fs.writeFile(blobFile(layout, digest), data);
  return { digest, size: data.length };
}

/** Rewrites index.json through `edit`. */
async function editIndex(layout: string, edit: (index: JsonObject & { manifests: JsonObject[] }) => unknown): Promise<void> {
  const index = await readJson<JsonObject & { manifests: JsonObject[] }>(path.join(layout, 'index.json'));
  edit(index);
  await fs.writeFile(path.join(layout, 'index.json'), JSON.stringify(index));
}

/** The image manifest index.json names first, with the digest and size it is named by. */
async function topManifest(layout: string): Promise<{ manifest: ManifestJson; digest: string; size: number }> {
  const index = await readJson<{ manifests: { digest: string; size: number }[] }>(path.join(layout, 'index.json'));
  const { digest, size } = index.manifests[0]!;
  return { manifest: await readJson<ManifestJson>(blobFile(layout, digest)), digest, size };
}

/** Rewrites the image manifest through `edit` (stored as a new blob, index.json updated to name it). */
async function editManifest(layout: string, edit: (manifest: ManifestJson) => unknown): Promise<void> {
  const { manifest } = await topManifest(layout);
  await edit(manifest);
  const stored = await putBlob(layout, JSON.stringify(manifest));
  await editIndex(layout, (index) => Object.assign(index.manifests[0]!, stored));
}

/** An `oci:` input: the layout after `alter`. */
function layout(alter: (layout: string, sandbox: string) => Promise<void>) {
  return async (dir: string, sandbox: string): Promise<string> => {
    await alter(dir, sandbox);
    return `oci:${dir}`;
  };
}

/** An index blob holding one descriptor. */
const indexOf = (descriptor: JsonObject): string => JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptor] });

// ------------------------------------------------------------------------------ dir: trees

/** A `dir:` input: `<sandbox>/input/tree` with `/bin/x`, after `build` (given the tree); `close` undoes what it started. */
function tree(build: (root: string, sandbox: string) => Promise<void | (() => Promise<void>)>) {
  return async (_layout: string, sandbox: string): Promise<CaseInput> => {
    const root = path.join(sandbox, 'input', 'tree');
    await fs.mkdir(path.join(root, 'bin'), { recursive: true });
    await fs.writeFile(path.join(root, 'bin', 'x'), 'x');
    const close = await build(root, sandbox);
    return { reference: `dir:${root}`, ...(close ? { close } : {}) };
  };
}

/** Nested directories `count` deep, each name `name`, below `parent` (GNU mkdir -p goes deeper than PATH_MAX). */
async function nestedDirs(parent: string, name: string, count: number): Promise<void> {
  await run('mkdir', ['-p', Array.from({ length: count }, () => name).join('/')], { cwd: parent });
}

/** Removes a tree whose paths may be longer than PATH_MAX (Node's fs.rm cannot; rm walks by descriptor). */
const removeDeep = (dir: string) => async (): Promise<void> => {
  await run('rm', ['-rf', '--', dir]);
};

// ------------------------------------------------------------------------------ loopback registries

/** What a hostile registry handler may use: the layout's image. */
interface Served {
  /** The image manifest, parsed, and the digest it is stored under. */
  readonly manifest: ManifestJson;
  readonly manifestDigest: string;
  readonly manifestBytes: Buffer;
  /** A blob of the layout, by digest (undefined when there is none). */
  blob(digest: string): Promise<Buffer | undefined>;
  /** `tick` every `ms` until the response closes (or the registry does). */
  every(res: http.ServerResponse, ms: number, tick: () => void): void;
}

/** Answers a request itself (true), or leaves it to the well-behaved registry (false). */
type Hostility = (req: http.IncomingMessage, res: http.ServerResponse, served: Served) => boolean | Promise<boolean>;

/** The route of a distribution API request: `manifests` or `blobs`, and the tag or digest. */
function route(req: http.IncomingMessage): { kind: 'manifests' | 'blobs'; reference: string } | undefined {
  const match = /^\/v2\/hostile\/image\/(manifests|blobs)\/([^/?]+)/.exec(req.url ?? '');
  return match ? { kind: match[1] as 'manifests' | 'blobs', reference: decodeURIComponent(match[2]!) } : undefined;
}

function isLayerBlob(req: http.IncomingMessage, served: Served): boolean {
  const found = route(req);
  return found?.kind === 'blobs' && served.manifest.layers.some((layer) => layer.digest === found.reference);
}

function isTopManifest(req: http.IncomingMessage): boolean {
  const found = route(req);
  return found?.kind === 'manifests' && found.reference === 'latest';
}

/**
 * A registry on 127.0.0.1 (an ephemeral port) serving the case's layout as `hostile/image:latest`,
 * `hostility` answering first; closed, with every connection and timer, by the input's `close`.
 */
function loopbackRegistry(hostility: Hostility, options: { insecure?: boolean; alter?: (layout: string) => Promise<void> } = {}) {
  return async (dir: string): Promise<CaseInput> => {
    await options.alter?.(dir);
    const { manifest, digest: manifestDigest } = await topManifest(dir);
    const manifestBytes = await fs.readFile(blobFile(dir, manifestDigest));
    const timers = new Set<NodeJS.Timeout>();
    const served: Served = {
      manifest,
      manifestDigest,
      manifestBytes,
      // Only well-formed digests name a file: the test's own server reads nothing outside the layout.
      blob: async (digest) => (digest.startsWith('sha256:') && SHA256_HEX.test(digest.slice(7)) ? fs.readFile(blobFile(dir, digest)).catch(() => undefined) : undefined),
      every(res, ms, tick) {
        const timer = setInterval(tick, ms);
        timers.add(timer);
        res.once('close', () => {
          clearInterval(timer);
          timers.delete(timer);
        });
      },
    };
    const server = http.createServer((req, res) => {
      res.on('error', () => undefined);
      void (async () => {
        if (await hostility(req, res, served)) return;
        await serveLayout(req, res, served);
      })().catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(err));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      reference: `docker://127.0.0.1:${port}/hostile/image:latest`,
      insecure: options.insecure ?? true,
      close: async () => {
        for (const timer of timers) clearInterval(timer);
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  };
}

/** What a well-behaved registry answers: the manifest by tag or digest, blobs by digest. */
async function serveLayout(req: http.IncomingMessage, res: http.ServerResponse, served: Served): Promise<void> {
  const found = route(req);
  const body = !found
    ? undefined
    : found.kind === 'manifests'
      ? found.reference === 'latest' || found.reference === served.manifestDigest
        ? served.manifestBytes
        : await served.blob(found.reference)
      : await served.blob(found.reference);
  if (!body) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'unknown' }] }));
    return;
  }
  const type = found?.kind === 'manifests' ? ((JSON.parse(body.toString('utf8')) as JsonObject).mediaType as string) : 'application/octet-stream';
  res.writeHead(200, { 'content-type': type, 'content-length': body.length, ...(found?.kind === 'manifests' ? { 'docker-content-digest': digestOf(body) } : {}) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Writes 64 KiB chunks for ever, honouring backpressure, until the client goes away. */
async function flood(res: http.ServerResponse): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  while (!res.destroyed) {
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
}

// ------------------------------------------------------------------------------ the cases

export const SOURCE_CASES: HostileCase[] = [
  // ---------------------------------------------------------------- docker-archive
  {
    name: 'docker-archive tarball followed by a 64 GiB sparse tail: the tail is never read',
    image: oneFile,
    input: saveTarball(oneFile, { tail: 64 * GiB }),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x']),
  },
  {
    // The config member is a symlink to the process's environment: refused, never followed.
    name: 'docker-archive directory whose config is a symlink to /proc/self/environ',
    image: oneFile,
    input: saveDirectory(oneFile, { alter: (dir, _sandbox, save) => symlinkMember(dir, savedEntry(save).Config as string, '/proc/self/environ') }),
    expect: saying(InvalidInputError, /reached through a symlink/),
  },
  {
    name: 'docker-archive directory whose manifest.json is a symlink to /etc/passwd',
    image: oneFile,
    input: saveDirectory(oneFile, { alter: (dir) => symlinkMember(dir, 'manifest.json', '/etc/passwd') }),
    expect: saying(InvalidInputError, /reached through a symlink/),
  },
  {
    // The layer's parent directory is a symlink to a directory outside holding a look-alike layer.
    name: 'docker-archive directory whose layer is reached through a symlinked parent outside it',
    image: oneFile,
    input: saveDirectory(oneFile, {
      alter: async (dir, sandbox) => {
        const outside = path.dirname(await outsideFile(sandbox, 'layers/layer.tar', await fs.readFile(path.join(dir, '0', 'layer.tar'))));
        await fs.rm(path.join(dir, '0'), { recursive: true });
        await fs.symlink(outside, path.join(dir, '0'));
      },
    }),
    expect: saying(InvalidInputError, /reached through a symlink/),
  },
  {
    // Opening a FIFO blocks until a writer comes: the member is refused by its type, never opened.
    name: 'docker-archive directory whose layer member is a FIFO: no hang',
    image: oneFile,
    input: saveDirectory(oneFile, { alter: (dir) => fifoAt(path.join(dir, '0', 'layer.tar')) }),
    expect: saying(NotFoundError, /layer member .* is missing/),
  },
  {
    name: 'docker-archive directory whose manifest.json is a FIFO: no hang',
    image: oneFile,
    input: saveDirectory(oneFile, { alter: (dir) => fifoAt(path.join(dir, 'manifest.json')) }),
    expect: saying(NotFoundError, /no regular file manifest\.json/),
  },
  {
    name: 'docker-archive tarball whose config member is a FIFO entry',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (save.members[0] = { name: save.members[0]!.name, type: 'fifo' }) }),
    expect: saying(NotFoundError, /no member .*\.json/),
  },
  {
    // Only the count is checked: the 100k members are never looked up.
    name: 'docker-archive manifest.json listing 100,000 layers is refused before any is read',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (savedEntry(save).Layers = Array.from({ length: 100_000 }, (_, i) => `${i}/layer.tar`)) }),
    expect: limit('maxLayersPerImage'),
  },
  {
    name: 'docker-archive manifest.json past maxArchiveMetadataBytes',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (savedEntry(save).RepoTags = Array.from({ length: 20_000 }, (_, i) => `padding/${i}:latest`)) }),
    limits: { maxArchiveMetadataBytes: 64 * 1024 },
    expect: limit('maxArchiveMetadataBytes'),
  },
  {
    // Its size is refused from the directory entry: a read of it would take minutes.
    name: 'docker-archive directory whose manifest.json is a 64 GiB sparse file',
    image: oneFile,
    input: saveDirectory(oneFile, { alter: (dir) => sparseFile(path.join(dir, 'manifest.json'), '[', 64 * GiB) }),
    expect: limit('maxArchiveMetadataBytes'),
  },
  {
    name: 'docker-archive manifest.json that is not JSON',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (save.manifest = '[{"Config": "x.json", "Layers": [') }),
    expect: saying(InvalidInputError, /manifest\.json is not valid JSON/),
  },
  {
    name: 'docker-archive manifest.json that is an object, not a list of images',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (save.manifest = savedEntry(save)) }),
    expect: saying(InvalidInputError, /not an array/),
  },
  {
    name: 'docker-archive manifest.json whose Layers is not a list of strings',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (savedEntry(save).Layers = [{ path: '0/layer.tar' }]) }),
    expect: saying(InvalidInputError, /lacks Config or Layers/),
  },
  {
    // `../../outside/layer.tar` does hold a layer: the name is refused before the path is touched.
    name: 'docker-archive directory whose Layers entry climbs out with ../',
    image: oneFile,
    input: saveDirectory(oneFile, {
      edit: (save) => (savedEntry(save).Layers = ['../../outside/layer.tar']),
      alter: async (dir, sandbox) => void (await outsideFile(sandbox, 'layer.tar', await fs.readFile(path.join(dir, '0', 'layer.tar')))),
    }),
    expect: UnsafePathError,
  },
  {
    // An absolute member name is a name inside the archive (as tar's are), not a host path.
    name: 'docker-archive Layers entry that is an absolute host path',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (savedEntry(save).Layers = ['/etc/passwd']) }),
    expect: saying(NotFoundError, /layer member \/etc\/passwd is missing/),
  },
  {
    name: 'docker-archive config named by an absolute path is looked up inside the archive',
    image: oneFile,
    input: saveDirectory(oneFile, { edit: (save) => (savedEntry(save).Config = '/proc/self/environ') }),
    expect: saying(NotFoundError, /no regular file \/proc\/self\/environ/),
  },
  {
    name: 'docker-archive Layers entry naming a missing member',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (savedEntry(save).Layers = ['nowhere/layer.tar']) }),
    expect: saying(NotFoundError, /nowhere\/layer\.tar is missing/),
  },
  {
    // Two members of one name: the last wins, as when `docker load` extracts the archive.
    name: 'docker-archive tarball with a duplicate layer member: the last one is read',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => save.members.splice(1, 0, { name: '0/layer.tar', content: 'first, not a tar' }) }),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x']),
  },
  {
    // The layer member is then replaced by a symlink (to the config): it is no longer a regular file,
    // and the earlier bytes (which `docker load` would never see) are not read in its stead.
    name: 'docker-archive tarball whose layer member is replaced by a later symlink of the same name',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => save.members.push({ name: '0/layer.tar', type: 'symlink', linkname: `../${save.members[0]!.name}` }) }),
    expect: saying(NotFoundError, /layer member 0\/layer\.tar is missing/),
  },
  {
    name: 'docker-archive tarball whose manifest.json is a symlink entry to /etc/passwd',
    image: oneFile,
    input: saveTarball(oneFile, { manifestEntry: { type: 'symlink', linkname: '/etc/passwd' } }),
    expect: saying(NotFoundError, /no member manifest\.json/),
  },
  {
    name: 'docker-archive tarball whose manifest.json is a hard link entry to /etc/shadow',
    image: oneFile,
    input: saveTarball(oneFile, { manifestEntry: { type: 'link', linkname: '/etc/shadow' } }),
    expect: saying(NotFoundError, /no member manifest\.json/),
  },
  {
    name: 'docker-archive config listing fewer diff_ids than layers',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (savedEntry(save).Layers = ['0/layer.tar', '0/layer.tar']) }),
    expect: saying(InvalidInputError, /2 layers but the config lists 1 diff_ids/),
  },
  {
    name: 'docker-archive config whose diff_id disagrees with its layer',
    image: wrongDiffId,
    input: saveTarball(wrongDiffId),
    expect: saying(DigestMismatchError, /content does not match its digest/),
  },
  {
    // A layer member of no bytes (an empty tar, as `docker save` never writes but a crafted archive may).
    name: 'docker-archive layer member of zero bytes',
    image: emptyLayer,
    input: saveTarball(emptyLayer),
    expect: (r) => assert.deepEqual(paths(r), []),
  },
  {
    // The config member is named by a digest its bytes do not have.
    name: 'docker-archive config whose member name is not its digest',
    image: oneFile,
    input: saveTarball(oneFile, {
      edit: (save) => {
        const name = `${'0'.repeat(64)}.json`;
        save.members[0] = { ...save.members[0]!, name };
        savedEntry(save).Config = name;
      },
    }),
    expect: saying(DigestMismatchError, /does not match its digest/),
  },
  {
    // A pax header gives the layer member a size of 1 TiB: past the end of the archive file.
    name: 'docker-archive tarball whose layer member claims 1 TiB through a pax size',
    image: oneFile,
    input: saveTarball(oneFile, { edit: (save) => (save.members[1] = { ...save.members[1]!, pax: { size: String(1024 * GiB) } }) }),
    expect: saying(InvalidInputError, /runs past the end of the file/),
  },
  {
    name: 'docker-archive: path that is a FIFO is refused without opening it',
    image: oneFile,
    input: async (_layout, sandbox) => {
      const file = await inputPath(sandbox, 'image.tar');
      await fifoAt(file);
      return `docker-archive:${file}`;
    },
    expect: saying(InvalidInputError, /neither a directory nor a tar file/),
  },

  // ---------------------------------------------------------------- OCI layout metadata
  {
    // Compact entries so that the 100k fit in maxManifestBytes: the count itself is refused.
    name: 'OCI layout index.json with 100,000 manifests',
    image: oneFile,
    input: layout(async (dir) => {
      const { digest, size } = await topManifest(dir);
      const entry = { mediaType: OCI_MANIFEST, digest, size };
      await editIndex(dir, (index) => (index.manifests = Array.from({ length: 100_000 }, () => entry)));
    }),
    limits: { maxManifestBytes: 64 * MiB },
    expect: limit('maxIndexEntries'),
  },
  {
    name: 'OCI layout manifest descriptor of 2^60 bytes',
    image: oneFile,
    input: layout((dir) => editIndex(dir, (index) => (index.manifests[0]!.size = 2 ** 60))),
    expect: saying(InvalidInputError, /size is not a non-negative integer/),
  },
  {
    name: 'OCI layout layer descriptor of negative size',
    image: oneFile,
    input: layout((dir) => editManifest(dir, (manifest) => (manifest.layers[0]!.size = -1))),
    expect: saying(InvalidInputError, /size is not a non-negative integer/),
  },
  {
    name: 'OCI layout config descriptor of fractional size',
    image: oneFile,
    input: layout((dir) => editManifest(dir, (manifest) => (manifest.config.size = 1.5))),
    expect: saying(InvalidInputError, /size is not a non-negative integer/),
  },
  {
    // A size the descriptor may claim (below 2^53) but the blob does not have: bounded by the bytes.
    name: 'OCI layout layer descriptor claiming 2^53-1 bytes for a small blob',
    image: oneFile,
    input: layout((dir) => editManifest(dir, (manifest) => (manifest.layers[0]!.size = Number.MAX_SAFE_INTEGER))),
    expect: saying(DigestMismatchError, /is truncated/),
  },
  {
    name: 'OCI layout digest with an unknown algorithm',
    image: oneFile,
    input: layout((dir) => editManifest(dir, (manifest) => (manifest.layers[0]!.digest = `sha512:${'a'.repeat(128)}`))),
    expect: saying(InvalidInputError, /not a sha256 digest/),
  },
  {
    // As a blob path this would be blobs/sha256/../../../../etc/passwd: the digest is refused first.
    name: 'OCI layout digest that climbs out of blobs/ (sha256:../../../../etc/passwd)',
    image: oneFile,
    input: layout((dir) => editIndex(dir, (index) => (index.manifests[0]!.digest = 'sha256:../../../../etc/passwd'))),
    expect: saying(InvalidInputError, /not a sha256 digest/),
  },
  {
    name: 'OCI layout digest in uppercase hex',
    image: oneFile,
    input: layout((dir) => editManifest(dir, (manifest) => (manifest.config.digest = String(manifest.config.digest).toUpperCase().replace('SHA256', 'sha256')))),
    expect: saying(InvalidInputError, /not a sha256 digest/),
  },
  {
    // Content addressing makes a loop impossible to write honestly: an index naming its own digest
    // cannot hash to it, so the loop ends at the first verification.
    name: 'OCI layout index blob naming its own digest (a loop)',
    image: oneFile,
    input: layout(async (dir) => {
      const loop = `sha256:${'1'.repeat(64)}`;
      const bytes = indexOf({ mediaType: OCI_INDEX, digest: loop, size: 0, platform: { os: 'linux', architecture: 'amd64' } });
      await fs.writeFile(blobFile(dir, loop), bytes);
      await editIndex(dir, (index) => (index.manifests[0] = { mediaType: OCI_INDEX, digest: loop, size: Buffer.byteLength(bytes) }));
    }),
    expect: saying(DigestMismatchError, /does not match its digest/),
  },
  {
    name: 'OCI layout of 8 nested indexes',
    image: oneFile,
    input: layout(async (dir) => {
      const { digest, size } = await topManifest(dir);
      let descriptor: JsonObject = { mediaType: OCI_MANIFEST, digest, size, platform: { os: 'linux', architecture: 'amd64' } };
      for (let i = 0; i < 8; i++) descriptor = { mediaType: OCI_INDEX, ...(await putBlob(dir, indexOf(descriptor))), platform: { os: 'linux', architecture: 'amd64' } };
      await editIndex(dir, (index) => (index.manifests[0] = descriptor));
    }),
    expect: limit('MAX_INDEX_DEPTH'),
  },
  {
    name: 'OCI layout config that is not JSON',
    image: oneFile,
    input: layout((dir) =>
      editManifest(dir, async (manifest) => {
        Object.assign(manifest.config, await putBlob(dir, '{"architecture": "amd64", "rootfs": '));
      }),
    ),
    expect: saying(InvalidInputError, /image config is not valid JSON/),
  },
  {
    name: 'OCI layout manifest that is not JSON',
    image: oneFile,
    input: layout(async (dir) => {
      const stored = await putBlob(dir, '\x00\x01 not json');
      await editIndex(dir, (index) => Object.assign(index.manifests[0]!, stored));
    }),
    expect: saying(InvalidInputError, /manifest is not valid JSON/),
  },
  {
    // Padded with whitespace to 5 MiB: refused by its size before it is read.
    name: 'OCI layout manifest larger than maxManifestBytes',
    image: oneFile,
    input: layout(async (dir) => {
      const { manifest } = await topManifest(dir);
      const stored = await putBlob(dir, JSON.stringify(manifest) + ' '.repeat(5 * MiB));
      await editIndex(dir, (index) => Object.assign(index.manifests[0]!, stored));
    }),
    expect: limit('maxManifestBytes'),
  },
  {
    name: 'OCI layout with a layer blob of zero bytes',
    image: emptyLayer,
    expect: (r) => assert.deepEqual(paths(r), []),
  },
  {
    name: 'OCI layout whose layer blob is a directory',
    image: oneFile,
    input: layout(async (dir) => {
      const { manifest } = await topManifest(dir);
      const file = blobFile(dir, String(manifest.layers[0]!.digest));
      await fs.rm(file);
      await fs.mkdir(file);
    }),
    expect: saying(NotFoundError, /no regular file/),
  },
  {
    name: 'OCI layout whose manifest blob is a FIFO: no hang',
    image: oneFile,
    input: layout(async (dir) => fifoAt(blobFile(dir, (await topManifest(dir)).digest))),
    expect: saying(NotFoundError, /no regular file/),
  },
  {
    name: 'OCI layout whose layer blob is a symlink to /etc/passwd',
    image: oneFile,
    input: layout(async (dir) => {
      const { manifest } = await topManifest(dir);
      const file = blobFile(dir, String(manifest.layers[0]!.digest));
      await fs.rm(file);
      await fs.symlink('/etc/passwd', file);
    }),
    expect: saying(InvalidInputError, /reached through a symlink/),
  },
  {
    // The layout is read from index.json and its blobs (sources/oci-layout.ts): the `oci-layout` marker is not required.
    name: 'OCI layout without its oci-layout file is read',
    image: oneFile,
    input: layout((dir) => fs.rm(path.join(dir, 'oci-layout'))),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x']),
  },
  {
    // Nor is the marker ever opened: a symlink of it to /etc/passwd is not followed.
    name: 'OCI layout whose oci-layout file is a symlink to /etc/passwd is read without it',
    image: oneFile,
    input: layout(async (dir) => {
      await fs.rm(path.join(dir, 'oci-layout'));
      await fs.symlink('/etc/passwd', path.join(dir, 'oci-layout'));
    }),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x']),
  },
  {
    name: 'OCI layout claiming imageLayoutVersion 9.9.9 is read as a layout',
    image: oneFile,
    input: layout((dir) => fs.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '9.9.9' }))),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x']),
  },
  {
    name: 'OCI layout index.json listing no image',
    image: oneFile,
    input: layout((dir) => editIndex(dir, (index) => (index.manifests = []))),
    expect: saying(InvalidInputError, /holds 0 images/),
  },
  {
    name: 'OCI layout index.json of schemaVersion 1',
    image: oneFile,
    input: layout((dir) => editIndex(dir, (index) => (index.schemaVersion = 1))),
    expect: saying(UnsupportedError, /schemaVersion 1/),
  },
  {
    // An artifact (a Helm chart) stored as a manifest: not a container image, refused before its layers.
    name: 'OCI layout manifest whose config is not an image config',
    image: oneFile,
    input: layout((dir) => editManifest(dir, (manifest) => (manifest.config.mediaType = 'application/vnd.cncf.helm.config.v1+json'))),
    expect: saying(UnsupportedError, /not a container image/),
  },

  // ---------------------------------------------------------------- dir: trees
  {
    // A FIFO named as a program: recorded by its type, never opened (which would block for ever).
    name: 'dir: tree whose /bin/entry is a FIFO: recorded, not opened',
    image: oneFile,
    input: tree((root) => fifoAt(path.join(root, 'bin', 'entry'))),
    expect: (r) => assert.equal(r.tree.lstat('/bin/entry')?.type, 'fifo'),
  },
  {
    // A listening unix socket (the server stays up until the case closes): left out of the image.
    name: 'dir: tree holding a listening unix socket',
    image: oneFile,
    input: tree(async (root) => {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(path.join(root, 'run.sock'), resolve));
      return () => new Promise<void>((resolve) => server.close(() => resolve()));
    }),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x']),
  },
  {
    name: 'dir: tree with a file name that is not valid UTF-8',
    image: oneFile,
    input: tree((root) => fs.writeFile(Buffer.concat([Buffer.from(`${root}/bin/caf`), Buffer.from([0xe9, 0xff])]), 'x')),
    expect: saying(InvalidInputError, /not valid UTF-8/),
  },
  {
    // 20 directories of 250 bytes: 5 KiB of path, past PATH_MAX; refused before it is listed.
    name: 'dir: tree with a path longer than PATH_MAX',
    image: oneFile,
    input: tree(async (root) => {
      await nestedDirs(root, 'd'.repeat(250), 20);
      return removeDeep(root);
    }),
    expect: limit('maxPathBytes'),
  },
  {
    // The image paths fit maxPathBytes, but the root's host path plus them does not fit PATH_MAX.
    name: 'dir: tree whose host paths pass PATH_MAX though its image paths fit',
    image: oneFile,
    input: async (_layout, sandbox) => {
      const parent = await inputPath(sandbox, 'r'.repeat(250), 'o'.repeat(250), 'x');
      const root = path.dirname(parent);
      await nestedDirs(root, 'd'.repeat(250), 15);
      return { reference: `dir:${root}`, close: removeDeep(path.join(sandbox, 'input')) };
    },
    expect: saying(InvalidInputError, /ENAMETOOLONG/),
  },
  {
    name: 'dir: tree with a symlink to /etc/passwd: recorded, never read',
    image: oneFile,
    input: tree((root) => fs.symlink('/etc/passwd', path.join(root, 'passwd'))),
    expect: (r) => {
      assert.equal(r.tree.lstat('/passwd')?.type, 'symlink');
      assert.equal(r.tree.lstat('/passwd')?.linkTarget, '/etc/passwd');
      assert.equal(r.tree.lstat('/etc/passwd'), undefined);
    },
  },
  {
    // A symlinked directory pointing outside: the link is recorded, its target never listed.
    name: 'dir: tree with a symlink to a directory outside it: not descended',
    image: oneFile,
    input: tree(async (root, sandbox) => {
      await outsideFile(sandbox, 'secret/key', 'k');
      await fs.symlink(path.join(sandbox, 'outside', 'secret'), path.join(root, 'secret'));
    }),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x', '/secret']),
  },
  {
    // 64 GiB of sparse zeros behind an ELF magic: refused from its size before a byte is read.
    name: 'dir: tree with a 64 GiB sparse file that starts as an ELF',
    image: oneFile,
    input: tree((root) => sparseFile(path.join(root, 'bin', 'huge'), '\x7fELF\x02\x01\x01', 64 * GiB)),
    expect: limit('maxLayerBlobBytes'),
  },
  {
    // A file appended to while the tree is read (a live container's log): it is read up to the size
    // listed, never past its tar entry, where the appended bytes (here forged tar headers) would
    // be read as the next entries.
    name: 'dir: tree with a file that grows while it is packed',
    image: oneFile,
    input: tree(async (root) => {
      const file = path.join(root, 'grows');
      const forged = ustarHeader('forged', 0);
      await fs.writeFile(file, forged);
      const timer = setInterval(() => void fs.appendFile(file, forged), 1);
      return async () => clearInterval(timer);
    }),
    expect: (r) => {
      assert.deepEqual(paths(r), ['/bin', '/bin/x', '/grows']);
      assert.equal((r.tree.lstat('/grows')?.size ?? 0) % 512, 0);
    },
  },
  {
    // A block device of the host's disk and /dev/mem: reading either would read the host; left out.
    name: 'dir: tree holding device nodes',
    image: oneFile,
    input: tree(async (root) => {
      await run('mknod', [path.join(root, 'disk'), 'b', '8', '0']);
      await run('mknod', [path.join(root, 'mem'), 'c', '1', '1']);
    }),
    expect: (r) => assert.deepEqual(paths(r), ['/bin', '/bin/x']),
  },
  {
    name: 'dir: tree with more entries than maxEntriesPerLayer',
    image: oneFile,
    input: tree(async (root) => {
      await Promise.all(Array.from({ length: 300 }, (_, i) => fs.writeFile(path.join(root, `f${i}`), '')));
    }),
    limits: { maxEntriesPerLayer: 200 },
    expect: limit('maxEntriesPerLayer'),
  },

  // ---------------------------------------------------------------- registries on loopback
  {
    // One byte every 2 s never trips an idle timeout: the blob's overall deadline does.
    name: 'registry blob trickled one byte every 2 s',
    image: oneFile,
    input: loopbackRegistry(async (req, res, served) => {
      if (!isLayerBlob(req, served)) return false;
      const blob = (await served.blob(route(req)!.reference))!;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
      let sent = 0;
      res.write(blob.subarray(sent, ++sent));
      served.every(res, 2_000, () => void (sent < blob.length && res.write(blob.subarray(sent, ++sent))));
      return true;
    }),
    limits: { httpTimeoutMs: 600, minBlobBytesPerSecond: 1024 * 1024 },
    expect: saying(UnavailableError, /not received within/),
  },
  {
    // The blob request is accepted and never answered: the extraction unit's deadline ends it.
    name: 'registry blob whose headers never come',
    image: oneFile,
    input: loopbackRegistry((req, _res, served) => isLayerBlob(req, served)),
    limits: { extractTimeoutMs: 1_500 },
    expect: limit('extractTimeoutMs'),
  },
  {
    name: 'registry manifest trickled for ever',
    image: oneFile,
    input: loopbackRegistry((req, res, served) => {
      if (!isTopManifest(req) || req.method !== 'GET') return false;
      res.writeHead(200, { 'content-type': OCI_MANIFEST });
      served.every(res, 200, () => res.write(' '));
      return true;
    }),
    limits: { httpTimeoutMs: 500 },
    expect: saying(UnavailableError, /no answer within 500 ms/),
  },
  {
    // No Content-Length, and bytes for ever: cut at maxManifestBytes.
    name: 'registry manifest body without end',
    image: oneFile,
    input: loopbackRegistry((req, res) => {
      if (!isTopManifest(req) || req.method !== 'GET') return false;
      res.writeHead(200, { 'content-type': OCI_MANIFEST });
      void flood(res);
      return true;
    }),
    expect: limit('maxManifestBytes'),
  },
  {
    name: 'registry blob redirecting to itself',
    image: oneFile,
    input: loopbackRegistry((req, res, served) => {
      if (!isLayerBlob(req, served)) return false;
      res.writeHead(307, { location: req.url });
      res.end();
      return true;
    }),
    expect: limit('maxRedirects'),
  },
  {
    // A different tar of the same length: no decompressor to fail first, the digest check does.
    name: 'registry blob whose bytes do not match its digest',
    image: () => tarLayerImage('bin/x', 'x'),
    input: loopbackRegistry(async (req, res, served) => {
      if (!isLayerBlob(req, served)) return false;
      const other = await tarOf([{ name: 'bin/y', content: 'y' }]);
      assert.equal(other.length, (await served.blob(route(req)!.reference))!.length);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': other.length });
      res.end(other);
      return true;
    }),
    expect: saying(DigestMismatchError, /does not match its digest/),
  },
  {
    name: 'registry config blob longer than its descriptor',
    image: oneFile,
    input: loopbackRegistry(async (req, res, served) => {
      if (route(req)?.reference !== served.manifest.config.digest) return false;
      const config = Buffer.concat([(await served.blob(route(req)!.reference))!, Buffer.alloc(4096, 0x20)]);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': config.length });
      res.end(config);
      return true;
    }),
    expect: saying(DigestMismatchError, /larger than declared/),
  },
  {
    name: 'registry whose Docker-Content-Digest is not the manifest it sends',
    image: oneFile,
    input: loopbackRegistry((req, res, served) => {
      if (!isTopManifest(req)) return false;
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': served.manifestBytes.length, 'docker-content-digest': digestOf('another manifest') });
      res.end(req.method === 'HEAD' ? undefined : served.manifestBytes);
      return true;
    }),
    expect: saying(DigestMismatchError, /does not match its digest/),
  },
  {
    // A token realm on a routable address over plain http: refused before any connection (the
    // registry is loopback, so it alone may speak http without --insecure).
    name: 'registry 401 with a token realm outside loopback',
    image: oneFile,
    input: loopbackRegistry(
      (_req, res) => {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://192.0.2.1/token",service="hostile"', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}');
        return true;
      },
      { insecure: false },
    ),
    expect: saying(AuthError, /unusable token realm.*refusing plain http to 192\.0\.2\.1/),
  },
  {
    name: 'registry 401 with a file:///etc/passwd token realm',
    image: oneFile,
    input: loopbackRegistry((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="file:///etc/passwd"' });
      res.end();
      return true;
    }),
    expect: saying(AuthError, /unusable token realm.*only http\(s\)/),
  },
  {
    // The token server (the registry itself) hands out tokens that the registry always refuses:
    // one retry with the token, then an error, not a loop.
    name: 'registry that refuses every token its own token server issues',
    image: oneFile,
    input: async (dir) => {
      let realm = '';
      const input = await loopbackRegistry((req, res) => {
        if (req.url?.startsWith('/token')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"token":"never-good-enough"}');
          return true;
        }
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}"` });
        res.end();
        return true;
      })(dir);
      realm = `http://${input.reference.slice('docker://'.length).split('/')[0]}/token`;
      return input;
    },
    expect: AuthError,
  },
  {
    name: 'registry answering HTTP 503 to everything',
    image: oneFile,
    input: loopbackRegistry((_req, res) => {
      res.writeHead(503);
      res.end();
      return true;
    }),
    expect: saying(UnavailableError, /HTTP 503/),
  },
  {
    // 100k compact entries fit maxManifestBytes (raised): the count itself is refused.
    name: 'registry manifest list with 100,000 entries',
    image: oneFile,
    input: (dir) => {
      let body: Buffer | undefined; // built once: HEAD and GET answer the same bytes
      return loopbackRegistry((req, res, served) => {
        if (!isTopManifest(req)) return false;
        const entry = { mediaType: OCI_MANIFEST, digest: served.manifestDigest, size: served.manifestBytes.length };
        body ??= Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array.from({ length: 100_000 }, () => entry) }));
        res.writeHead(200, { 'content-type': OCI_INDEX, 'content-length': body.length, 'docker-content-digest': digestOf(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
        return true;
      })(dir);
    },
    limits: { maxManifestBytes: 64 * MiB },
    expect: limit('maxIndexEntries'),
  },
  {
    // The manifest claims a 1 TiB layer: refused from the descriptor before the blob is requested.
    name: 'registry layer descriptor of 1 TiB',
    image: oneFile,
    input: loopbackRegistry(() => false, { alter: (dir) => editManifest(dir, (manifest) => (manifest.layers[0]!.size = 1024 * GiB)) }),
    expect: limit('maxLayerBlobBytes'),
  },
];

