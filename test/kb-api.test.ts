/**
 * `dockergate serve` over HTTP (issue 12, acceptance 3): the real command on a loopback port, on
 * an embedded knowledge base filled through the store: the OpenAPI document, each query, paging by
 * cursor (body and Link header), and errors as JSON with their status (400 bad parameter, 401 no
 * token, 404 unknown name or route, 405 not GET); it refuses to listen beyond loopback without a token.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openEmbeddedKnowledgeBase } from '../store/kb/sqlite.js';
import { cli } from './helpers/cluster.js';
import { tempDir } from './helpers/layers.js';

const REGISTRY = '127.0.0.1:5999';
const digest = (): string => `sha256:${randomBytes(32).toString('hex')}`;

interface Served {
  readonly base: string;
  stop(): Promise<void>;
}

/** Starts `dockergate serve` on a free loopback port and waits for its listening line. */
async function serve(cacheDir: string, env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/cli.ts', 'serve', '--port', '0', '--cache-dir', cacheDir], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const base = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  return {
    base,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    },
  };
}

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

describe('dockergate serve: the knowledge base over HTTP', { timeout: 120_000 }, () => {
  let work: string;
  let served: Served;
  const [plain, tracer] = [digest(), digest()];

  before(async () => {
    work = await tempDir('dockergate-kb-api-');
    const kb = await openEmbeddedKnowledgeBase(path.join(work, 'kb.sqlite'));
    const profile = (manifestDigest: string, names: string[]) => ({
      manifestDigest,
      state: 's1',
      platform: 'linux/amd64',
      fallback: false,
      reasons: [],
      syscalls: new Map(names.map((name) => [name, ['entrypoint', '/bin/app', name]])),
    });
    await kb.putProfile(profile(plain, ['read', 'write']));
    await kb.putProfile(profile(tracer, ['ptrace', 'read', 'write']));
    for (const [repository, manifestDigest] of [['a', tracer], ['b', tracer], ['c', tracer], ['d', plain]] as const) {
      await kb.putTag(
        { registry: REGISTRY, repository, tag: '1', digest: manifestDigest, state: 's1', scans: [{ platform: 'linux/amd64', manifestDigest, syscalls: [] }] },
        { toDigest: manifestDigest, added: [], removed: [] },
      );
    }
    await kb.close();
    served = await serve(work);
  });

  after(async () => {
    await served?.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('serves its OpenAPI document', async () => {
    const { status, body, headers } = await get(`${served.base}/openapi.json`);
    assert.equal(status, 200);
    assert.match(headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(body.openapi, '3.1.0');
    assert.deepEqual(Object.keys(body.paths as object).sort(), ['/healthz', '/v1/diff', '/v1/libraries/{name}', '/v1/stats', '/v1/syscalls/{name}/tags', '/v1/tags']);
  });

  it('pages the tags that allow a syscall, by cursor in the body and the Link header', async () => {
    const first = await get(`${served.base}/v1/syscalls/ptrace/tags?limit=2`);
    assert.equal(first.status, 200);
    assert.deepEqual((first.body.items as { repository: string }[]).map((item) => item.repository), ['a', 'b']);
    const link = /^<([^>]+)>; rel="next"$/.exec(first.headers.get('link') ?? '');
    assert.ok(link, `Link header: ${first.headers.get('link')}`);
    const second = await get(`${served.base}${link[1]}`);
    assert.deepEqual((second.body.items as { repository: string; witness: string }[]).map((item) => `${item.repository} ${item.witness}`), ['c entrypoint → /bin/app → ptrace']);
    assert.equal(second.body.next, undefined);
    assert.equal(second.headers.get('link'), null);
  });

  it('answers the tag, diff and stats queries', async () => {
    const tag = await get(`${served.base}/v1/tags?ref=${encodeURIComponent(`${REGISTRY}/a:1`)}`);
    assert.equal(tag.status, 200);
    assert.equal(tag.body.digest, tracer);
    assert.equal((tag.body.history as unknown[]).length, 1);
    const diff = await get(`${served.base}/v1/diff?from=${encodeURIComponent(`${REGISTRY}/d:1`)}&to=${encodeURIComponent(`${REGISTRY}/a:1`)}`);
    assert.equal(diff.status, 200);
    assert.deepEqual(diff.body.added, [{ name: 'ptrace', witness: 'entrypoint → /bin/app → ptrace' }]);
    assert.deepEqual(diff.body.removed, []);
    const stats = await get(`${served.base}/v1/stats?top=1`);
    assert.equal(stats.status, 200);
    assert.equal(stats.body.tags, 4);
    assert.deepEqual((stats.body.syscalls as { mostCommon: unknown[] }).mostCommon, [{ name: 'read', profiles: 2 }]);
  });

  it('answers bad parameters with 400 and a message, unknown names and routes with 404, writes with 405', async () => {
    const cases: [string, number, RegExp, RequestInit?][] = [
      ['/v1/syscalls/no_such_call/tags', 400, /not a syscall of any supported platform/],
      ['/v1/syscalls/ptrace/tags?limit=0', 400, /limit must be an integer from 1 to 10000/],
      ['/v1/syscalls/ptrace/tags?limit=abc', 400, /limit must be an integer/],
      ['/v1/syscalls/ptrace/tags?after=garbage', 400, /invalid page cursor/],
      ['/v1/tags', 400, /query parameter ref is required/],
      ['/v1/tags?ref=not%20a%20ref', 400, /invalid/],
      ['/v1/stats?top=-1', 400, /top must be an integer/],
      ['/v1/libraries/%E0%A4%A', 400, /not a valid URL path segment/],
      [`/v1/tags?ref=${encodeURIComponent(`${REGISTRY}/zzz:1`)}`, 404, /no such tag/],
      ['/v1/libraries/libnothing.so.9', 404, /no object named "libnothing.so.9"/],
      ['/v1/nothing', 404, /no route \/v1\/nothing/],
      ['/v1/stats', 405, /read-only/, { method: 'POST' }],
    ];
    for (const [route, status, message, init] of cases) {
      const answer = await get(`${served.base}${route}`, init);
      assert.equal(answer.status, status, `${route}: ${JSON.stringify(answer.body)}`);
      const error = answer.body.error as { code: string; message: string };
      assert.match(error.message, message, route);
      assert.ok(error.code);
    }
  });

  it('requires the bearer token when one is set, and refuses to listen beyond loopback without one', async () => {
    const token = randomBytes(16).toString('hex');
    const guarded = await serve(work, { DOCKERGATE_API_TOKEN: token });
    try {
      assert.equal((await get(`${guarded.base}/v1/stats`)).status, 401);
      assert.equal((await get(`${guarded.base}/v1/stats`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await get(`${guarded.base}/v1/stats`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      assert.equal((await get(`${guarded.base}/healthz`)).status, 200);
    } finally {
      await guarded.stop();
    }
    // Checked before anything listens: no socket is opened beyond loopback.
    await assert.rejects(cli(['serve', '--host', '0.0.0.0', '--port', '0', '--cache-dir', work], { DOCKERGATE_API_TOKEN: '' }), (err: { stderr: string }) =>
      /beyond loopback\) needs a bearer token/.test(err.stderr),
    );
  });
});
