/**
 * Bad registries don't hurt a crawl (issue 12, acceptance 5). A private docker-registry holds six
 * repositories of two tags; the crawl reaches it through a fault-injecting proxy on loopback that
 * answers some requests itself: 500s (for a while, and for ever), a HEAD that never answers, a
 * lying Docker-Content-Digest, a 10 MB tags page, and a storm of 429s with Retry-After. Each fault
 * ends in retries or in a clear, typed failure of what it touched, memory stays bounded, and every
 * other tag is profiled.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { crawlRegistry, type CrawlSummary } from '../coordinator/crawl/crawl.js';
import { analysisState } from '../coordinator/plan/analysis-state.js';
import { scanImage } from '../coordinator/plan/scan.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import { limitsWith } from '../infra/limits.js';
import { DEFAULT_ANALYSER } from '../worker/analysers.js';
import { gzipLayer, tempDir, writeOciLayout } from './helpers/layers.js';
import { type PrivateRegistry, startPrivateRegistry } from './helpers/private-servers.js';

const run = promisify(execFile);
const REPOSITORIES = ['f/flaky', 'f/broken', 'f/slow', 'f/liar', 'f/huge', 'f/fine'];
const LIMITS = limitsWith({ httpTimeoutMs: 2_000 });

/** What the proxy does with one request: pass it on, or answer itself. */
type Fault = (request: http.IncomingMessage, response: http.ServerResponse) => boolean;

interface FaultProxy {
  readonly address: string;
  faults: Fault[];
  requests: number;
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<FaultProxy> {
  const hanging: http.ServerResponse[] = [];
  const proxy: FaultProxy = {
    address: '',
    faults: [],
    requests: 0,
    close: async () => {
      for (const response of hanging) response.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((request, response) => {
    proxy.requests++;
    for (const fault of proxy.faults) if (fault(request, response)) return;
    if (request.url === '/hang') return void hanging.push(response);
    const upstream = http.request(`http://${target}${request.url}`, { method: request.method, headers: { ...request.headers, host: target } }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  server.on('request', (_request, response) => response.on('close', () => hanging.splice(hanging.indexOf(response), 1)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(proxy, { address: `127.0.0.1:${(server.address() as AddressInfo).port}` });
  return proxy;
}

describe('a crawl through a misbehaving registry', { timeout: 600_000 }, () => {
  let work: string;
  let registry: PrivateRegistry;
  let proxy: FaultProxy;

  before(async () => {
    work = await tempDir('dockergate-crawl-faults-');
    registry = await startPrivateRegistry();
    await fs.writeFile(path.join(work, 'app.c'), 'int main(void) { return 0; }\n');
    await run('gcc', ['-static', '-O2', '-o', path.join(work, 'app'), path.join(work, 'app.c')]);
    const base = await gzipLayer([{ name: 'bin/app', content: await fs.readFile(path.join(work, 'app')), mode: 0o755 }]);
    for (const repository of REPOSITORIES) {
      for (const tag of ['1', '2']) {
        const layout = path.join(work, `${repository.replace('/', '_')}-${tag}`);
        await writeOciLayout(layout, { layers: [base, await gzipLayer([{ name: 'etc/id', content: `${repository}:${tag}` }])], config: { Entrypoint: ['/bin/app'] } });
        await registry.push(`oci:${layout}`, repository, tag);
      }
    }
    proxy = await startProxy(registry.address);
  });

  after(async () => {
    await proxy?.close();
    await registry?.close();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  const crawl = async (cache: string): Promise<CrawlSummary> => {
    const runtime = embeddedRuntime(LIMITS, path.join(work, cache));
    try {
      return await crawlRegistry({
        registry: proxy.address,
        platform: { os: 'linux', architecture: 'amd64' },
        allPlatforms: false,
        concurrency: 4,
        insecure: false,
        limits: LIMITS,
        state: analysisState(DEFAULT_ANALYSER, { strict: false }),
        kb: await runtime.kb(),
        scan: (reference, platform) => scanImage(runtime, reference, { source: { platform, insecure: false } }),
      });
    } finally {
      await runtime.close();
    }
  };

  it('retries 500s and 429s, fails only what is broken with its reason, and profiles the rest', async () => {
    let flakyFailures = 0;
    let storm = 0;
    const liarDigest = `sha256:${'0'.repeat(64)}`;
    const hugeTagsPage = Buffer.from(JSON.stringify({ name: 'f/huge', tags: Array.from({ length: 90_000 }, (_, i) => `tag-${String(i).padStart(100, '0')}`) }));
    proxy.faults = [
      // A storm: the first 12 requests of the crawl get 429, Retry-After 1 s.
      (_request, response) => {
        if (storm >= 12) return false;
        storm++;
        response.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
        return true;
      },
      // Two 500s, then the truth.
      (request, response) => {
        if (!request.url?.startsWith('/v2/f/flaky/tags/list') || flakyFailures >= 2) return false;
        flakyFailures++;
        response.writeHead(500).end('{"errors":[{"code":"UNKNOWN","message":"try again"}]}');
        return true;
      },
      // For ever 500.
      (request, response) => {
        if (!request.url?.startsWith('/v2/f/broken/tags/list')) return false;
        response.writeHead(500).end('{"errors":[{"code":"UNKNOWN","message":"broken for good"}]}');
        return true;
      },
      // A HEAD that never answers (headers never come).
      (request) => {
        if (request.method !== 'HEAD' || request.url !== '/v2/f/slow/manifests/1') return false;
        request.url = '/hang';
        return false;
      },
      // A lying digest: HEAD names a manifest that the GET by that digest does not match.
      (request, response) => {
        if (!request.url?.startsWith('/v2/f/liar/manifests/')) return false;
        if (request.method === 'HEAD' && request.url.endsWith('/1')) {
          response.writeHead(200, { 'docker-content-digest': liarDigest, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end();
          return true;
        }
        if (request.url.endsWith(liarDigest)) request.url = '/v2/f/liar/manifests/1';
        return false;
      },
      // A 10 MB tags page, whatever `n` asks for (built once, above, so that the proxy's own copy is not
      // counted in the crawl's memory).
      (request, response) => {
        if (!request.url?.startsWith('/v2/f/huge/tags/list')) return false;
        response.writeHead(200, { 'content-type': 'application/json' }).end(hugeTagsPage);
        return true;
      },
    ];
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const summary = await crawl('cache');
    const seconds = (performance.now() - started) / 1000;
    const failures = Object.fromEntries(summary.failures.map((failure) => [failure.reference.replace(`${proxy.address}/`, ''), failure.error]));
    assert.deepEqual(Object.keys(failures).sort(), ['f/broken', 'f/huge', 'f/liar:1', 'f/slow:1'], JSON.stringify(summary.failures, null, 1));
    assert.match(failures['f/broken']!, /^unavailable: .*HTTP 500.*broken for good/);
    assert.match(failures['f/huge']!, /^limit-exceeded: .*maxRegistryPageBytes/);
    assert.match(failures['f/liar:1']!, /^digest-mismatch: /);
    assert.match(failures['f/slow:1']!, /^unavailable: manifest f\/slow:1: no answer within 2000 ms/);
    // Every other tag: flaky's after its retries, liar:2, slow:2 and both of fine.
    assert.equal(summary.scanned, 6);
    assert.equal(flakyFailures, 2);
    assert.equal(storm, 12);
    // The storm's Retry-After was honoured: the catalog alone was refused 12 times, 1 s apart.
    assert.ok(seconds >= 12, `${seconds} s`);
    // Pages over the bound are never held whole: memory grew by less than the 10 MB pages read ten
    // times (measured: 40–54 MiB, scans and analysis threads included).
    assert.ok(process.memoryUsage().rss - rssBefore < 100 * 1024 * 1024, `RSS grew by ${Math.round((process.memoryUsage().rss - rssBefore) / 1048576)} MiB`);

    // Once the registry behaves, the next crawl finishes what failed and keeps the rest.
    proxy.faults = [];
    const healed = await crawl('cache');
    assert.deepEqual(healed.failures.map((failure) => failure.reference), []);
    assert.equal(healed.skipped, 6);
    assert.equal(healed.scanned, 6);
  });
});
