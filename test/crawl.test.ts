/**
 * `crawl` against a real registry on loopback (Debian's docker-registry, a private instance with
 * its own storage), filled by the test: 20 repositories × 10 tags, 200 distinct images that share
 * their base layer (a static program), pushed with skopeo from OCI layouts written by the test.
 *
 * Issue 12, acceptance 1: the first crawl profiles all; a second crawl right after makes one
 * manifest HEAD per tag plus the listing pages and scans nothing; retagging one tag to a new image
 * rescans exactly that one and records the change; a new analysis state (here `--strict`) makes
 * every tag stale and the next crawl re-links them without extracting or analysing anything.
 * `rescan` (the nightly job) checks the known tags without listing, and posts its summary.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pLimit from 'p-limit';
import YAML from 'yaml';
import { crawlRegistry, type CrawlSummary, type RescanSummary } from '../coordinator/crawl/crawl.js';
import { allowedSyscalls, type DockerSeccompProfile, validateSeccompProfileCrd } from '../coordinator/output/policy.js';
import { analysisState } from '../coordinator/plan/analysis-state.js';
import { scanImage } from '../coordinator/plan/scan.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import type { Runtime } from '../coordinator/runtime/runtime.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { DEFAULT_ANALYSER } from '../worker/analysers.js';
import { cli } from './helpers/cluster.js';
import { gzipLayer, tempDir, writeOciLayout } from './helpers/layers.js';
import { type PrivateRegistry, startPrivateRegistry } from './helpers/private-servers.js';

const run = promisify(execFile);
const REPOSITORIES = Array.from({ length: 20 }, (_, i) => `team/r${String(i).padStart(2, '0')}`);
const TAGS = Array.from({ length: 10 }, (_, i) => `t${i}`);
const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;

let registry: PrivateRegistry;
let work: string;
let cacheDir: string;
let quiet: Buffer;
let networked: Buffer;

async function staticProgram(name: string, source: string): Promise<Buffer> {
  const file = path.join(work, `${name}.c`);
  await fs.writeFile(file, source);
  await run('gcc', ['-static', '-O2', '-o', path.join(work, name), file]);
  return fs.readFile(path.join(work, name));
}

/** An image whose base layer is the program (shared by every image with it) and whose top layer names it. */
async function pushImage(program: Buffer, repository: string, tag: string): Promise<void> {
  const layout = path.join(work, 'layouts', `${repository.replace('/', '_')}-${tag}`);
  const base = await gzipLayer([{ name: 'bin/app', content: program, mode: 0o755 }]);
  const top = await gzipLayer([{ name: 'etc/image-id', content: `${repository}:${tag}\n` }]);
  await writeOciLayout(layout, { layers: [base, top], config: { Entrypoint: ['/bin/app'] } });
  await registry.push(`oci:${layout}`, repository, tag);
  await fs.rm(layout, { recursive: true, force: true });
}

describe('the analysis state', () => {
  it('changes with the analyser, its version and the strict option, and only with what shapes a scan', () => {
    const state = analysisState(DEFAULT_ANALYSER, { strict: false });
    assert.match(state, /^s[0-9a-f]{16}$/);
    assert.equal(analysisState({ ...DEFAULT_ANALYSER }, { strict: false }), state);
    assert.notEqual(analysisState({ ...DEFAULT_ANALYSER, version: DEFAULT_ANALYSER.version + 1 }, { strict: false }), state, 'an analyser version bump makes every tag stale');
    assert.notEqual(analysisState({ ...DEFAULT_ANALYSER, name: 'radare2' }, { strict: false }), state);
    assert.notEqual(analysisState(DEFAULT_ANALYSER, { strict: true }), state);
  });
});

describe('crawl of a registry of 200 tags', { timeout: 1_200_000 }, () => {
  let runtime: Runtime;
  /** One crawl of the private registry on `runtime`, in the strict analysis state or not. */
  const crawlOn = async (strict = false): Promise<CrawlSummary> =>
    crawlRegistry({
      registry: registry.address,
      platform: PLATFORM,
      allPlatforms: false,
      concurrency: 4,
      insecure: false,
      limits: DEFAULT_LIMITS,
      state: analysisState(DEFAULT_ANALYSER, { strict }),
      kb: await runtime.kb(),
      scan: (reference, platform) => scanImage(runtime, reference, { source: { platform, insecure: false }, strict }),
    });

  before(async () => {
    work = await tempDir('dockergate-crawl-');
    cacheDir = path.join(work, 'cache');
    registry = await startPrivateRegistry();
    quiet = await staticProgram('quiet', 'int main(void) { return 0; }\n');
    networked = await staticProgram('networked', '#include <sys/socket.h>\nint main(void) { return socket(AF_INET, SOCK_STREAM, 0) < 0; }\n');
    const limit = pLimit(4);
    await Promise.all(REPOSITORIES.flatMap((repository) => TAGS.map((tag) => limit(() => pushImage(quiet, repository, tag)))));
    runtime = embeddedRuntime(DEFAULT_LIMITS, cacheDir);
  });

  after(async () => {
    await runtime?.close();
    await registry?.close();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('profiles every tag on the first crawl, each layer extracted once', async (t) => {
    const summary = await crawlOn();
    t.diagnostic(`first crawl: ${summary.tags} tags in ${summary.seconds} s, ${summary.requests} requests`);
    assert.deepEqual(summary.failures, []);
    assert.equal(summary.repositories, 20);
    assert.equal(summary.tags, 200);
    assert.equal(summary.scanned, 200);
    assert.equal(summary.changed.length, 200, 'every tag is new');
    // The shared base layer once, and each image's own top layer.
    assert.equal(runtime.counters.extracted, 201);
    assert.equal(runtime.counters.analysed, 1, 'the one program, analysed once for 200 images');
    const tag = await (await runtime.kb()).getTag(registry.address, 'team/r03', 't5');
    assert.ok(tag && tag.scans.length === 1 && tag.scans[0]!.syscalls.includes('exit_group'), JSON.stringify(tag));
  });

  it('checks each tag with one HEAD on the next crawl and scans nothing', async () => {
    const extracted = runtime.counters.extracted;
    const summary = await crawlOn();
    assert.equal(summary.skipped, 200);
    assert.equal(summary.scanned, 0);
    // The catalog page, one tags page per repository, one HEAD per tag.
    assert.equal(summary.requests, 1 + 20 + 200);
    assert.equal(runtime.counters.extracted, extracted);
  });

  it('rescans exactly the retagged tag and records what changed', async () => {
    await pushImage(networked, 'team/r03', 't5');
    const analysed = runtime.counters.analysed;
    const summary = await crawlOn();
    assert.equal(summary.scanned, 1);
    assert.equal(summary.skipped, 199);
    assert.equal(summary.changed.length, 1);
    const [move] = summary.changed;
    assert.equal(move!.reference, `${registry.address}/team/r03:t5`);
    assert.ok(move!.fromDigest && move!.fromDigest !== move!.toDigest);
    assert.ok(move!.added.includes('socket'), `socket added: ${move!.added.join(' ')}`);
    assert.equal(runtime.counters.analysed, analysed + 1, 'only the new program is analysed');
    const history = await (await runtime.kb()).tagHistory(registry.address, 'team/r03', 't5');
    assert.equal(history.length, 2);
    assert.deepEqual(history[1]!.added, move!.added);
    assert.deepEqual(history[1]!.removed, move!.removed);
  });

  it('re-links every tag in a new analysis state without extracting or analysing again', async () => {
    const { extracted, analysed } = runtime.counters;
    const summary = await crawlOn(true);
    assert.equal(summary.scanned, 200);
    assert.deepEqual(summary.failures, []);
    assert.equal(runtime.counters.extracted, extracted);
    assert.equal(runtime.counters.analysed, analysed);
    // Same images, same syscalls: nothing to record in the history.
    assert.deepEqual(summary.changed, []);
  });

  it('is the same through the command line, with globs and a JSON summary', async () => {
    await runtime.close();
    const outDir = path.join(work, 'profiles');
    const { stdout } = await cli(['crawl', registry.address, '--repo', 'team/r0*', '--tag', 't1', '--json', '--cache-dir', cacheDir, '--strict', '--out-dir', outDir]);
    runtime = embeddedRuntime(DEFAULT_LIMITS, cacheDir);
    const summary = JSON.parse(stdout) as CrawlSummary;
    assert.equal(summary.repositories, 10);
    assert.equal(summary.tags, 10);
    assert.equal(summary.skipped, 10);
    assert.equal(summary.requests, 1 + 10 + 10);
    // The profiles of current (skipped) tags are written too: one directory per repository and tag.
    const dirs = (await fs.readdir(path.join(outDir, registry.address, 'team'))).sort();
    assert.deepEqual(dirs, Array.from({ length: 10 }, (_, i) => `r0${i}`));
    const tagDir = path.join(outDir, registry.address, 'team', 'r03', 't1');
    assert.deepEqual((await fs.readdir(tagDir)).sort(), ['profile.json', 'profile.yaml']);
    const profile = JSON.parse(await fs.readFile(path.join(tagDir, 'profile.json'), 'utf8')) as DockerSeccompProfile;
    assert.ok(allowedSyscalls(profile).includes('exit_group'));
    assert.deepEqual(validateSeccompProfileCrd(YAML.parse(await fs.readFile(path.join(tagDir, 'profile.yaml'), 'utf8'))), []);
  });

  it('rescan checks every known tag, scans the one that moved, and posts the summary to a webhook', async () => {
    await pushImage(networked, 'team/r07', 't2');
    const received: string[] = [];
    const hook = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push(`${request.method} ${request.url} ${request.headers['content-type']}\n${body}`);
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const { port } = hook.address() as AddressInfo;
    await runtime.close();
    try {
      const { stdout } = await cli(['rescan', '--json', '--strict', '--cache-dir', cacheDir, '--webhook', `http://127.0.0.1:${port}/dockergate`]);
      const summary = JSON.parse(stdout) as RescanSummary;
      assert.deepEqual(summary.registries, [registry.address]);
      assert.equal(summary.tags, 200);
      assert.equal(summary.scanned, 1);
      assert.equal(summary.skipped, 199);
      assert.deepEqual(summary.changed.map((move) => move.reference), [`${registry.address}/team/r07:t2`]);
      assert.ok(summary.changed[0]!.added.includes('socket'));
      // No listing: one HEAD per known tag, and the scan's own requests for the one that moved.
      assert.ok(summary.requests >= 200 && summary.requests < 200 + 20, `${summary.requests} requests`);
      assert.equal(received.length, 1);
      const [head, body] = received[0]!.split('\n');
      assert.equal(head, 'POST /dockergate application/json');
      assert.deepEqual(JSON.parse(body!), summary);
    } finally {
      hook.close();
      runtime = embeddedRuntime(DEFAULT_LIMITS, cacheDir);
    }
  });

  it('answers kb queries about what the crawls found', async () => {
    const kb = (...args: string[]) => cli(['kb', ...args, '--json', '--cache-dir', cacheDir]);
    const needing = JSON.parse((await kb('syscall', 'socket', '--limit', '1')).stdout) as { items: { repository: string; tag: string; witness: string }[]; next?: string };
    assert.deepEqual(needing.items.map((item) => `${item.repository}:${item.tag}`), ['team/r03:t5']);
    assert.match(needing.items[0]!.witness, /^entrypoint → \/bin\/app/);
    const rest = JSON.parse((await kb('syscall', 'socket', '--after', needing.next!)).stdout) as { items: { repository: string; tag: string }[]; next?: string };
    assert.deepEqual(rest.items.map((item) => `${item.repository}:${item.tag}`), ['team/r07:t2']);
    assert.equal(rest.next, undefined);

    const image = JSON.parse((await kb('image', `${registry.address}/team/r03:t5`)).stdout) as { digest: string; history: { added: string[] }[] };
    assert.equal(image.history.length, 2);
    assert.ok(image.history[1]!.added.includes('socket'));

    const diff = JSON.parse((await kb('diff', `${registry.address}/team/r03:t4`, `${registry.address}/team/r03:t5`)).stdout) as { added: { name: string; witness: string }[]; removed: unknown[] };
    assert.ok(diff.added.some((entry) => entry.name === 'socket' && entry.witness.startsWith('entrypoint → /bin/app')), JSON.stringify(diff.added));

    const stats = JSON.parse((await kb('stats', '--top', '3')).stdout) as { tags: number; profiles: number; syscalls: { mostCommon: { name: string; profiles: number }[] } };
    assert.equal(stats.tags, 200);
    // 198 tags share the quiet image's profile; two point at the networked one.
    assert.ok(stats.profiles >= 2);
    assert.ok(stats.syscalls.mostCommon.every((entry) => entry.profiles >= 1));

    const program = JSON.parse((await kb('library', createHash('sha256').update(networked).digest('hex'))).stdout) as { versions: { exports: number }[] };
    assert.equal(program.versions.length, 1);

    await assert.rejects(kb('syscall', 'no_such_syscall'), (err: { stderr: string }) => /not a syscall of any supported platform/.test(err.stderr));
    await assert.rejects(kb('image', `${registry.address}/team/r99:t0`), (err: { stderr: string }) => /not-found: .*no such tag/.test(err.stderr));
  });
});

