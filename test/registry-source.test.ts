/**
 * The registry source against hostile registries started in-test on 127.0.0.1 (node:http on
 * port 0). These are not mocks of a real registry (that one is tested elsewhere): each server
 * misbehaves in one way, and the source must fail with the right typed error, quickly.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { MEDIA_TYPES } from '../extractor/manifest.js';
import { parseRegistryReference, type RegistryReference } from '../extractor/reference.js';
import type { SourceOptions } from '../extractor/source.js';
import { findCredentials, normaliseConfigKey } from '../extractor/sources/docker-config.js';
import { parseWwwAuthenticate, summariseErrorBody, tokenFromResponse } from '../extractor/sources/registry-auth.js';
import { checkRegistryUrl, registrySchemes, registrySource } from '../extractor/sources/registry.js';
import type { Digest, OpenedImage, Platform } from '../extractor/types.js';
import {
  AbortedError,
  AuthError,
  DigestMismatchError,
  InvalidInputError,
  LimitExceededError,
  NotFoundError,
  UnavailableError,
  UnsupportedError,
} from '../infra/errors.js';
import { DEFAULT_LIMITS, limitsWith } from '../infra/limits.js';

// ------------------------------------------------------------------------------ fixtures

const GZIP_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };

function sha256(bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o755 }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

interface LayerSpec {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
  readonly diffId: Digest;
}

interface BuiltImage {
  readonly manifest: Buffer;
  readonly manifestDigest: Digest;
  readonly config: Buffer;
  readonly configDigest: Digest;
  readonly layers: readonly LayerSpec[];
  /** Layer blobs by digest (a spec built by hand may have none). */
  readonly blobs: ReadonlyMap<string, Buffer>;
}

async function realLayer(files: Record<string, string>): Promise<{ spec: LayerSpec; blob: Buffer }> {
  const tarBytes = await makeTar(files);
  const blob = zlib.gzipSync(tarBytes);
  return { spec: { digest: sha256(blob), size: blob.length, mediaType: GZIP_LAYER, diffId: sha256(tarBytes) }, blob };
}

async function buildImage(options: {
  platform?: Platform;
  layers?: readonly LayerSpec[];
  files?: Record<string, string>;
  diffIds?: readonly Digest[];
}): Promise<BuiltImage> {
  const platform = options.platform ?? AMD64;
  const blobs = new Map<string, Buffer>();
  let layers = options.layers;
  if (!layers) {
    const layer = await realLayer(options.files ?? { 'bin/hello': `#!/bin/sh\necho ${platform.architecture}\n` });
    blobs.set(layer.spec.digest, layer.blob);
    layers = [layer.spec];
  }
  const config = json({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Entrypoint: ['/bin/hello'], Env: ['PATH=/bin'], WorkingDir: '/srv', User: '1000' },
    rootfs: { type: 'layers', diff_ids: options.diffIds ?? layers.map((layer) => layer.diffId) },
  });
  const configDigest = sha256(config);
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: configDigest, size: config.length },
    layers: layers.map((layer) => ({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size })),
  });
  return { manifest, manifestDigest: sha256(manifest), config, configDigest, layers, blobs };
}

function buildIndex(entries: ReadonlyArray<{ image: BuiltImage; platform: Platform }>): Buffer {
  return json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: entries.map(({ image, platform }) => ({
      mediaType: MEDIA_TYPES.ociManifest,
      digest: image.manifestDigest,
      size: image.manifest.length,
      platform,
    })),
  });
}

// ------------------------------------------------------------------------- fake registries

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

interface Server {
  readonly port: number;
  readonly host: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, server: Server) => void | Promise<void>;

const servers = new Set<Server>();

async function startServer(handler: Handler): Promise<Server> {
  const seen: Seen[] = [];
  const httpServer = http.createServer();
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;
  const server: Server = {
    port,
    host: `127.0.0.1:${port}`,
    seen,
    close: async () => {
      servers.delete(server);
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
  httpServer.on('request', (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    res.on('error', () => undefined);
    Promise.resolve(handler(req, res, server)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(599);
      res.end(String(err));
    });
  });
  servers.add(server);
  return server;
}

after(async () => {
  for (const server of [...servers]) await server.close();
});

interface Store {
  /** Manifests by tag or digest. */
  readonly manifests: Map<string, { body: Buffer; type: string; digest?: string }>;
  readonly blobs: Map<string, Buffer>;
}

function storeOf(tag: string, ...images: BuiltImage[]): Store {
  const store: Store = { manifests: new Map(), blobs: new Map() };
  for (const image of images) addImage(store, image);
  if (images[0]) store.manifests.set(tag, { body: images[0].manifest, type: MEDIA_TYPES.ociManifest });
  return store;
}

function addImage(store: Store, image: BuiltImage): void {
  store.manifests.set(image.manifestDigest, { body: image.manifest, type: MEDIA_TYPES.ociManifest });
  store.blobs.set(image.configDigest, image.config);
  for (const [digest, blob] of image.blobs) store.blobs.set(digest, blob);
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = json({ errors: [{ code, message }] });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/** Serves manifests and blobs from a store, as a well-behaved registry would. */
function serveStore(store: Store, req: http.IncomingMessage, res: http.ServerResponse): void {
  const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/.exec(req.url ?? '');
  if (!match) return sendError(res, 404, 'NOT_FOUND', 'no route');
  const [, , kind, reference] = match as unknown as [string, string, string, string];
  if (kind === 'manifests') {
    const entry = store.manifests.get(decodeURIComponent(reference));
    if (!entry) return sendError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    res.writeHead(200, {
      'content-type': entry.type,
      'content-length': entry.body.length,
      'docker-content-digest': entry.digest ?? sha256(entry.body),
    });
    res.end(req.method === 'HEAD' ? undefined : entry.body);
    return;
  }
  const blob = store.blobs.get(reference);
  if (!blob) return sendError(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
  res.end(req.method === 'HEAD' ? undefined : blob);
}

async function startRegistry(store: Store, override?: Handler): Promise<Server> {
  return startServer(async (req, res, server) => {
    if (override) {
      await override(req, res, server);
      if (res.headersSent || res.writableEnded) return;
    }
    serveStore(store, req, res);
  });
}

/**
 * Writes `total` bytes in chunks, honouring backpressure, stopping when the client goes away.
 * Returns the bytes handed to the socket.
 */
async function writeFlood(res: http.ServerResponse, total: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  let written = 0;
  while (written < total && !res.destroyed) {
    written += chunk.length;
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
  res.end();
  return written;
}

// ------------------------------------------------------------------------------- helpers

let tmpDir = '';
let noConfig = '';

before(async () => {
  tmpDir = await mkdtemp(path.join(os.tmpdir(), 'dockergate-registry-test-'));
  noConfig = path.join(tmpDir, 'absent', 'config.json');
});

after(async () => {
  await rm(tmpDir, { recursive: true, force: true });
});

function options(overrides: Partial<SourceOptions> = {}): SourceOptions {
  return {
    platform: AMD64,
    limits: DEFAULT_LIMITS,
    insecure: false,
    spoolDir: tmpDir,
    dockerConfigPath: noConfig,
    ...overrides,
  };
}

function ref(server: Server, rest = 'x/y:1'): RegistryReference {
  return parseRegistryReference(`${server.host}/${rest}`);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function openLayer0(image: OpenedImage): Promise<Buffer> {
  const layer = image.layers[0];
  assert.ok(layer);
  return readAll(await image.openLayer(layer));
}

async function writeDockerConfig(name: string, content: unknown): Promise<string> {
  const file = path.join(tmpDir, name, 'config.json');
  await rm(path.dirname(file), { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(path.dirname(file), { recursive: true }));
  await writeFile(file, JSON.stringify(content));
  return file;
}

// -------------------------------------------------------------------------------- tests

describe('registry source', () => {
  test('bearer token flow, index with two platforms, layer through a storage redirect', async () => {
    const amd = await buildImage({ platform: AMD64 });
    const arm = await buildImage({ platform: ARM64 });
    const index = buildIndex([
      { image: amd, platform: AMD64 },
      { image: arm, platform: ARM64 },
    ]);
    const store = storeOf('unused', amd, arm);
    store.manifests.set('1', { body: index, type: MEDIA_TYPES.ociIndex });

    const storage = await startServer((req, res) => {
      const digest = (req.url ?? '').replace(/^\/storage\//, '');
      const blob = store.blobs.get(digest);
      if (!blob) return sendError(res, 404, 'BLOB_UNKNOWN', 'no such blob in storage');
      res.writeHead(200, { 'content-length': blob.length });
      res.end(blob);
    });
    const user = 'alice';
    const password = 's3cr:et';
    const expectedBasic = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    let tokenRequests = 0;
    const registry = await startRegistry(store, (req, res, self) => {
      const url = new URL(req.url ?? '/', `http://${self.host}`);
      if (url.pathname === '/token') {
        tokenRequests++;
        if (req.headers.authorization !== expectedBasic) return sendError(res, 401, 'UNAUTHORIZED', 'bad credentials');
        assert.equal(url.searchParams.get('service'), 'test');
        assert.equal(url.searchParams.get('scope'), 'repository:x/y:pull');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'tok-123', expires_in: 300 }));
        return;
      }
      if (req.headers.authorization !== 'Bearer tok-123') {
        res.setHeader(
          'www-authenticate',
          `Bearer realm="http://${self.host}/token",service="test",scope="repository:x/y:pull"`,
        );
        return sendError(res, 401, 'UNAUTHORIZED', 'authentication required');
      }
      const layerDigest = amd.layers[0]!.digest;
      const armLayerDigest = arm.layers[0]!.digest;
      if (req.url === `/v2/x/y/blobs/${layerDigest}` || req.url === `/v2/x/y/blobs/${armLayerDigest}`) {
        const digest = req.url.split('/').pop()!;
        res.writeHead(307, { location: `http://${storage.host}/storage/${digest}` });
        res.end();
      }
    });
    const dockerConfigPath = await writeDockerConfig('bearer', {
      auths: { [registry.host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } },
    });

    const image = await registrySource.open(ref(registry), options({ dockerConfigPath }));
    assert.equal(image.reference, `docker://${registry.host}/x/y:1`);
    assert.equal(image.manifestDigest, amd.manifestDigest);
    assert.equal(image.configDigest, amd.configDigest);
    assert.deepEqual(image.config.platform, AMD64);
    assert.deepEqual(image.config.entrypoint, ['/bin/hello']);
    assert.deepEqual(image.config.env, ['PATH=/bin']);
    assert.equal(image.config.workingDir, '/srv');
    assert.equal(image.config.user, '1000');
    assert.deepEqual(image.config.diffIds, [amd.layers[0]!.diffId]);
    assert.deepEqual(image.layers, [{ digest: amd.layers[0]!.digest, mediaType: GZIP_LAYER, size: amd.layers[0]!.size }]);

    const blob = await openLayer0(image);
    assert.equal(sha256(blob), amd.layers[0]!.digest);
    assert.equal(sha256(zlib.gunzipSync(blob)), image.config.diffIds[0]);
    await image.close();

    // One token for the whole image (cached per registry and scope), never sent to storage.
    assert.equal(tokenRequests, 1);
    assert.ok(storage.seen.length >= 1);
    for (const request of storage.seen) assert.equal(request.headers.authorization, undefined);
    // The tag was resolved by HEAD first, with the manifest Accept header.
    const head = registry.seen.find((request) => request.method === 'HEAD' && request.headers.authorization);
    assert.ok(head);
    assert.match(String(head.headers.accept), /application\/vnd\.oci\.image\.index\.v1\+json/);

    const armImage = await registrySource.open(ref(registry), options({ dockerConfigPath, platform: ARM64 }));
    assert.equal(armImage.manifestDigest, arm.manifestDigest);
    assert.equal(armImage.config.platform.architecture, 'arm64');
    assert.equal(sha256(await openLayer0(armImage)), arm.layers[0]!.digest);
  });

  test('manifest bytes that do not match the digest are refused', async () => {
    const amd = await buildImage({});
    const registry = await startRegistry(storeOf('1', amd), (req, res) => {
      // Serves the same manifest for any digest.
      if (/\/manifests\/sha256:/.test(req.url ?? '')) {
        res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest });
        res.end(amd.manifest);
      }
    });
    const wrong = `sha256:${'ab'.repeat(32)}`;
    await assert.rejects(registrySource.open(ref(registry, `x/y@${wrong}`), options()), DigestMismatchError);

    // A tag: the HEAD's Docker-Content-Digest is what the GET body must match.
    const lying = storeOf('1', amd);
    lying.manifests.set('1', { body: amd.manifest, type: MEDIA_TYPES.ociManifest, digest: wrong });
    const liar = await startRegistry(lying);
    await assert.rejects(registrySource.open(ref(liar), options()), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.match(err.message, new RegExp(`registry ${liar.host}, repository x/y`));
      return true;
    });

    // An index whose platform manifest was swapped.
    const other = await buildImage({ files: { 'bin/other': 'x' } });
    const index = buildIndex([{ image: amd, platform: AMD64 }]);
    const swapped = storeOf('1', amd);
    swapped.manifests.set('1', { body: index, type: MEDIA_TYPES.ociIndex });
    swapped.manifests.set(amd.manifestDigest, { body: other.manifest, type: MEDIA_TYPES.ociManifest });
    const swapper = await startRegistry(swapped);
    await assert.rejects(registrySource.open(ref(swapper), options()), DigestMismatchError);
  });

  test('a layer blob larger than declared fails fast', async () => {
    const size = 1024;
    const layer: LayerSpec = { digest: sha256(Buffer.alloc(size)), size, mediaType: GZIP_LAYER, diffId: sha256(Buffer.from('x')) };
    const image = await buildImage({ layers: [layer] });
    const total = 10 * 1024 * 1024;
    let sent: Promise<number> = Promise.resolve(-1);
    const registry = await startRegistry(storeOf('1', image), (req, res) => {
      if (req.url === `/v2/x/y/blobs/${layer.digest}`) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        sent = writeFlood(res, total);
        return sent.then(() => undefined);
      }
    });
    const opened = await registrySource.open(ref(registry), options());
    const started = Date.now();
    await assert.rejects(openLayer0(opened), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.match(err.message, /larger than declared/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'took too long');
    // The client hung up: the server could not push the whole 10 MB.
    const written = await sent;
    assert.ok(written > 0 && written < total, `server wrote ${written} bytes`);
  });

  test('a layer blob with wrong content or truncated fails with DigestMismatchError', async () => {
    const real = await realLayer({ 'etc/hostname': 'box\n'.repeat(300) });
    const image = await buildImage({ layers: [real.spec] });
    const store = storeOf('1', image);
    store.blobs.set(real.spec.digest, real.blob);

    const tampered = Buffer.from(real.blob);
    tampered[tampered.length - 10]! ^= 0xff;
    store.blobs.set(real.spec.digest, tampered);
    const wrongContent = await startRegistry(store);
    const opened = await registrySource.open(ref(wrongContent), options());
    await assert.rejects(openLayer0(opened), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.match(err.message, new RegExp(real.spec.digest));
      return true;
    });

    store.blobs.set(real.spec.digest, real.blob.subarray(0, Math.floor(real.blob.length / 2)));
    const truncated = await startRegistry(store);
    const opened2 = await registrySource.open(ref(truncated), options());
    await assert.rejects(openLayer0(opened2), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.match(err.message, /truncated/);
      return true;
    });

    // The config blob is verified too.
    const badConfig = storeOf('1', image);
    badConfig.blobs.set(image.configDigest, Buffer.from(image.config.toString().replace('/srv', '/tmp')));
    const configLiar = await startRegistry(badConfig);
    await assert.rejects(registrySource.open(ref(configLiar), options()), DigestMismatchError);
  });

  test('a manifest larger than maxManifestBytes is refused without trusting Content-Length', async () => {
    const image = await buildImage({});
    const big = json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, padding: 'p'.repeat(8000) });
    const limits = limitsWith({ maxManifestBytes: 1024 });
    // Chunked: no Content-Length at all.
    const chunked = await startRegistry(storeOf('1', image), (req, res) => {
      if (req.url === '/v2/x/y/manifests/1' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest });
        for (let i = 0; i < big.length; i += 500) res.write(big.subarray(i, i + 500));
        res.end();
      }
    });
    await assert.rejects(registrySource.open(ref(chunked), options({ limits })), (err: unknown) => {
      assert.ok(err instanceof LimitExceededError, String(err));
      assert.equal(err.limit, 'maxManifestBytes');
      return true;
    });
    // Declared honestly: refused before reading.
    const store = storeOf('1', image);
    store.manifests.set('1', { body: big, type: MEDIA_TYPES.ociManifest });
    const declared = await startRegistry(store);
    await assert.rejects(registrySource.open(ref(declared), options({ limits })), LimitExceededError);
  });

  test('404 is NotFoundError naming the reference', async () => {
    const registry = await startRegistry(storeOf('1', await buildImage({})));
    await assert.rejects(registrySource.open(ref(registry, 'x/y:nope'), options()), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.match(err.message, new RegExp(`docker://${registry.host}/x/y:nope`));
      assert.match(err.message, /MANIFEST_UNKNOWN/);
      return true;
    });
  });

  test('500 three times is UnavailableError (retryable)', async () => {
    const registry = await startServer((_req, res) => sendError(res, 500, 'UNKNOWN', 'boom'));
    await assert.rejects(registrySource.open(ref(registry), options()), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.equal(err.retryable, true);
      return true;
    });
    assert.equal(registry.seen.length, 3);
  });

  test('a registry that does not answer in time is UnavailableError', async () => {
    const registry = await startServer(() => undefined); // never answers
    const started = Date.now();
    await assert.rejects(
      registrySource.open(ref(registry), options({ limits: limitsWith({ httpTimeoutMs: 100 }) })),
      UnavailableError,
    );
    assert.ok(Date.now() - started < 5000);
  });

  test('a manifest body that stalls after the headers times out', async () => {
    const registry = await startRegistry(storeOf('1', await buildImage({})), (req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest, 'content-length': 5000 });
        res.write('{"schemaVersion":');
        return new Promise<void>(() => undefined); // never finishes
      }
    });
    await assert.rejects(
      registrySource.open(ref(registry), options({ limits: limitsWith({ httpTimeoutMs: 100 }) })),
      (err: unknown) => {
        assert.ok(err instanceof UnavailableError, String(err));
        assert.match(err.message, /no answer within 100 ms/);
        return true;
      },
    );
  });

  test('a layer blob trickled one byte at a time is cut at its overall deadline', async () => {
    const size = 64 * 1024;
    const layer: LayerSpec = { digest: sha256(Buffer.alloc(size)), size, mediaType: GZIP_LAYER, diffId: sha256(Buffer.from('x')) };
    const image = await buildImage({ layers: [layer] });
    const registry = await startRegistry(storeOf('1', image), (req, res) => {
      if (req.url === `/v2/x/y/blobs/${layer.digest}`) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
        // One byte every 50 ms: never idle long enough for an idle timeout.
        const timer = setInterval(() => res.write(Buffer.alloc(1)), 50);
        res.on('close', () => clearInterval(timer));
        return new Promise<void>((resolve) => res.on('close', () => resolve()));
      }
    });
    // 64 KiB at 64 KiB/s after a 500 ms allowance for the headers: cut after 1.5 s.
    const limits = limitsWith({ httpTimeoutMs: 500, minBlobBytesPerSecond: 64 * 1024 });
    const opened = await registrySource.open(ref(registry), options({ limits }));
    const started = Date.now();
    await assert.rejects(openLayer0(opened), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.match(err.message, /not received within/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 1_000 && took < 5_000, `cut after ${took} ms`);
  });

  test('aborting stops requests and layer streams with AbortedError', async () => {
    const image = await buildImage({});
    const layerDigest = image.layers[0]!.digest;
    const registry = await startRegistry(storeOf('1', image), (req, res) => {
      if (req.url === `/v2/x/y/blobs/${layerDigest}`) {
        res.writeHead(200, { 'content-length': image.layers[0]!.size });
        res.write(image.blobs.get(layerDigest)!.subarray(0, 10));
        return new Promise<void>(() => undefined); // the rest never comes
      }
    });
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(registrySource.open(ref(registry), options({ signal: aborted.signal })), AbortedError);

    const opened = await registrySource.open(ref(registry), options());
    const controller = new AbortController();
    const stream = await opened.openLayer(opened.layers[0]!, controller.signal);
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(readAll(stream), AbortedError);
  });

  test('a 500 followed by success is retried transparently', async () => {
    const image = await buildImage({});
    let failures = 0;
    const registry = await startRegistry(storeOf('1', image), (_req, res) => {
      if (failures < 2) {
        failures++;
        sendError(res, 503, 'UNAVAILABLE', 'try later');
      }
    });
    const opened = await registrySource.open(ref(registry), options());
    assert.equal(opened.manifestDigest, image.manifestDigest);
  });

  test('an unsupported layer media type is UnsupportedError', async () => {
    const layer: LayerSpec = {
      digest: sha256(Buffer.from('a')),
      size: 1,
      mediaType: 'application/vnd.example.squashfs',
      diffId: sha256(Buffer.from('a')),
    };
    const registry = await startRegistry(storeOf('1', await buildImage({ layers: [layer] })));
    await assert.rejects(registrySource.open(ref(registry), options()), (err: unknown) => {
      assert.ok(err instanceof UnsupportedError, String(err));
      assert.match(err.message, /squashfs/);
      return true;
    });
  });

  test('an index without the requested platform is NotFoundError listing what it has', async () => {
    const amd = await buildImage({ platform: AMD64 });
    const arm = await buildImage({ platform: ARM64 });
    const store = storeOf('unused', amd, arm);
    store.manifests.set('1', { body: buildIndex([{ image: amd, platform: AMD64 }, { image: arm, platform: ARM64 }]), type: MEDIA_TYPES.ociIndex });
    const registry = await startRegistry(store);
    await assert.rejects(
      registrySource.open(ref(registry), options({ platform: { os: 'linux', architecture: 's390x' } })),
      (err: unknown) => {
        assert.ok(err instanceof NotFoundError, String(err));
        assert.match(err.message, /linux\/s390x/);
        assert.match(err.message, /available: linux\/amd64, linux\/arm64\/v8/);
        return true;
      },
    );
  });

  test('a single-platform image for another platform is refused', async () => {
    const registry = await startRegistry(storeOf('1', await buildImage({ platform: ARM64 })));
    await assert.rejects(registrySource.open(ref(registry), options()), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.match(err.message, /linux\/arm64\/v8, not the requested linux\/amd64/);
      return true;
    });
  });

  test('a config whose diff_ids do not match the layers is InvalidInputError', async () => {
    const image = await buildImage({ diffIds: [] });
    const registry = await startRegistry(storeOf('1', image));
    await assert.rejects(registrySource.open(ref(registry), options()), InvalidInputError);
  });

  test('credentials rejected after auth is AuthError with the registry message', async () => {
    const image = await buildImage({});
    const registry = await startRegistry(storeOf('1', image), (req, res) => {
      if (req.headers.authorization !== 'Basic never') {
        res.setHeader('www-authenticate', 'Basic realm="test registry"');
        sendError(res, 401, 'UNAUTHORIZED', '  wrong password for bob  ');
      }
    });
    const dockerConfigPath = await writeDockerConfig('basic', {
      auths: { [`http://${registry.host}/v2/`]: { username: 'bob', password: 'hunter2' } },
    });
    await assert.rejects(registrySource.open(ref(registry), options({ dockerConfigPath })), (err: unknown) => {
      assert.ok(err instanceof AuthError, String(err));
      assert.match(err.message, /UNAUTHORIZED: wrong password for bob/);
      assert.match(err.message, new RegExp(registry.host));
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
    // Anonymous first, then Basic credentials; refused ones are not sent over and over.
    assert.equal(registry.seen[0]!.headers.authorization, undefined);
    const withAuth = registry.seen.filter((request) => request.headers.authorization);
    assert.ok(withAuth.length >= 1 && withAuth.length <= 2, `${withAuth.length} requests with credentials`);
    for (const request of withAuth) {
      assert.equal(request.headers.authorization, `Basic ${Buffer.from('bob:hunter2').toString('base64')}`);
    }
  });

  test('a credential helper without inline auth is UnsupportedError naming the helper', async () => {
    const registry = await startRegistry(storeOf('1', await buildImage({})), (_req, res) => {
      res.setHeader('www-authenticate', 'Basic realm="x"');
      sendError(res, 401, 'UNAUTHORIZED', 'authentication required');
    });
    const dockerConfigPath = await writeDockerConfig('helper', { auths: {}, credHelpers: { [registry.host]: 'secretservice' } });
    await assert.rejects(registrySource.open(ref(registry), options({ dockerConfigPath })), (err: unknown) => {
      assert.ok(err instanceof UnsupportedError, String(err));
      assert.match(err.message, /docker-credential-secretservice/);
      return true;
    });
    // No config at all: the registry demands credentials we do not have.
    await assert.rejects(registrySource.open(ref(registry), options()), AuthError);
  });

  test('a redirect loop stops at maxRedirects', async () => {
    const registry = await startServer((req, res) => {
      res.writeHead(302, { location: `${req.url ?? '/'}x` });
      res.end();
    });
    await assert.rejects(
      registrySource.open(ref(registry), options({ limits: limitsWith({ maxRedirects: 3 }) })),
      (err: unknown) => {
        assert.ok(err instanceof LimitExceededError, String(err));
        assert.equal(err.limit, 'maxRedirects');
        return true;
      },
    );
    assert.equal(registry.seen.length, 4);
  });
});

describe('registry URL policy (no network)', () => {
  test('http is refused for non-loopback registries unless insecure', () => {
    assert.deepEqual(registrySchemes('registry.example.com', false), ['https:']);
    assert.deepEqual(registrySchemes('registry.example.com:5000', true), ['https:', 'http:']);
    assert.deepEqual(registrySchemes('127.0.0.1:5000', false), ['http:']);
    assert.deepEqual(registrySchemes('localhost:5000', false), ['http:']);
    assert.deepEqual(registrySchemes('[::1]:5000', false), ['http:']);

    assert.throws(() => checkRegistryUrl('http://registry.example.com/v2/', false), UnsupportedError);
    assert.throws(() => checkRegistryUrl('http://10.0.0.1:5000/v2/', false), UnsupportedError);
    assert.equal(checkRegistryUrl('http://registry.example.com/v2/', true).host, 'registry.example.com');
    assert.equal(checkRegistryUrl('https://registry.example.com/v2/', false).protocol, 'https:');
    assert.equal(checkRegistryUrl('http://127.0.0.1:5000/v2/', false).host, '127.0.0.1:5000');
    assert.equal(checkRegistryUrl('http://localhost:5000/v2/', false).hostname, 'localhost');
    assert.throws(() => checkRegistryUrl('file:///etc/passwd', true), UnsupportedError);
    assert.throws(() => checkRegistryUrl('https://user:pw@registry.example.com/', false), InvalidInputError);
    // A remote registry may not send us (a redirect, a token realm) to a loopback address.
    assert.throws(
      () => checkRegistryUrl('http://127.0.0.1:2375/containers/json', false, new URL('https://registry.example.com/')),
      UnsupportedError,
    );
  });
});

describe('registry auth helpers (no network)', () => {
  test('WWW-Authenticate parsing', () => {
    assert.deepEqual(
      parseWwwAuthenticate('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"'),
      [
        {
          scheme: 'bearer',
          params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull' },
        },
      ],
    );
    assert.deepEqual(parseWwwAuthenticate('Basic realm="a \\"quoted\\" realm, with comma", Bearer realm=https://x/t, scope=repository:a/b:pull,push'), [
      { scheme: 'basic', params: { realm: 'a "quoted" realm, with comma' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', scope: 'repository:a/b:pull' } },
      { scheme: 'push', params: {} },
    ]);
    assert.deepEqual(parseWwwAuthenticate('Negotiate abc+/==, Basic'), [
      { scheme: 'negotiate', params: {}, token68: 'abc+/==' },
      { scheme: 'basic', params: {} },
    ]);
    assert.deepEqual(parseWwwAuthenticate('  , "garbage", Bearer REALM = "r" ,, service="s'), [
      { scheme: 'bearer', params: { realm: 'r', service: 's' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate(''), []);
  });

  test('token responses and error bodies', () => {
    assert.equal(tokenFromResponse({ token: 'a' }), 'a');
    assert.equal(tokenFromResponse({ access_token: 'b' }), 'b');
    assert.equal(tokenFromResponse({ token: 'bad\r\nheader' }), undefined);
    assert.equal(tokenFromResponse([]), undefined);
    assert.equal(
      summariseErrorBody(json({ errors: [{ code: 'DENIED', message: 'no\naccess' }] })),
      'DENIED: no access',
    );
    assert.equal(summariseErrorBody(Buffer.from('  plain\u0000text  ')), 'plain text');
  });

  test('docker config lookup', () => {
    const hub = findCredentials(
      { auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('u:p:w').toString('base64') } }, credHelpers: {} },
      'registry-1.docker.io',
      '/cfg',
    );
    assert.deepEqual(hub.credentials, { username: 'u', password: 'p:w' });
    const helper = findCredentials({ auths: { 'reg.example.com': {} }, credHelpers: {}, credsStore: 'desktop' }, 'reg.example.com', '/cfg');
    assert.equal(helper.credentials, undefined);
    assert.equal(helper.helper, 'docker-credential-desktop');
    assert.equal(normaliseConfigKey('HTTPS://Reg.Example.com:5000/v1/'), 'reg.example.com:5000');
    assert.throws(
      () => findCredentials({ auths: { 'r.example': { auth: Buffer.from('nocolon').toString('base64') } }, credHelpers: {} }, 'r.example', '/cfg'),
      InvalidInputError,
    );
  });
});
