/**
 * Builds the benchmark corpus images (bench/corpus/<name>/Dockerfile -> dockergate-corpus/<name>:1)
 * with the classic builder and `--network host`, on top of dockergate-test/base:bookworm (made by
 * infra/setup/test-env.sh). An image is rebuilt only when the hash of its build context (and of
 * the base image ID) differs from its `dockergate.context-sha` label, as test-env.sh does for the
 * test images. One line per image is printed.
 *
 *   node --import tsx bench/corpus/build.ts [--force] [--no-cache] [names...]
 *
 * --force rebuilds even when the label matches (docker's layer cache still applies);
 * --no-cache also passes --no-cache to docker build (a from-scratch build).
 * Build logs go to /var/cache/dockergate/logs/corpus-<name>.log.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { docker, tail } from './docker.js';
import { type CorpusImage, selectImages } from './images.js';

export const BASE_IMAGE = 'dockergate-test/base:bookworm';
export const CONTEXT_LABEL = 'dockergate.context-sha';
export const CORPUS_DIR = path.dirname(fileURLToPath(import.meta.url));
export const LOG_DIR = '/var/cache/dockergate/logs';
/** A full build (apt-get update + install) must finish within this. */
const BUILD_TIMEOUT_MS = 30 * 60_000;

export interface BuildResult {
  image: CorpusImage;
  status: 'built' | 'cached' | 'failed';
  seconds: number;
  /** Image size in bytes (docker image inspect .Size), when the image exists. */
  sizeBytes?: number;
  imageId?: string;
  contextSha: string;
  logFile?: string;
  error?: string;
}

export interface BuildOptions {
  /** Rebuild even when the context label matches. */
  force?: boolean;
  /** Pass --no-cache to docker build (implies force). */
  noCache?: boolean;
}

/** Regular files under `dir`, as './relative/path', sorted bytewise (like `find | LC_ALL=C sort`). */
async function contextFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) out.push(`./${child}`);
    }
  };
  await walk('');
  return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/**
 * sha256 over the base image ID and the context: the same text as test-env.sh's context_sha
 * (`docker image inspect` ID line, then `sha256sum` lines of the sorted files), followed by one
 * `mode <octal> <path>` line per file, since an executable bit lost in the context breaks images.
 */
export async function contextSha(dir: string, baseId: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`${baseId}\n`);
  const files = await contextFiles(dir);
  for (const file of files) {
    const digest = createHash('sha256').update(await fs.readFile(path.join(dir, file))).digest('hex');
    hash.update(`${digest}  ${file}\n`);
  }
  for (const file of files) {
    const mode = (await fs.stat(path.join(dir, file))).mode & 0o7777;
    hash.update(`mode ${mode.toString(8)} ${file}\n`);
  }
  return hash.digest('hex');
}

async function inspectImage(tag: string): Promise<{ id: string; label: string; size: number } | undefined> {
  const result = await docker(['image', 'inspect', '-f', `{{.Id}} {{index .Config.Labels "${CONTEXT_LABEL}"}} {{.Size}}`, tag], {
    timeoutMs: 30_000,
  });
  if (result.code !== 0) return undefined;
  const [id = '', label = '', size = '0'] = result.stdout.trim().split(' ');
  return { id, label: label === '<no value>' ? '' : label, size: Number(size) };
}

export async function baseImageId(base = BASE_IMAGE): Promise<string> {
  const result = await docker(['image', 'inspect', '-f', '{{.Id}}', base], { timeoutMs: 30_000 });
  if (result.code !== 0) {
    throw new Error(`${base} is missing: run infra/setup/test-env.sh first (${result.stderr.trim()})`);
  }
  return result.stdout.trim();
}

/** The test base images (`dockergate-test/base:*`) a Dockerfile builds FROM. */
async function testBasesOf(dir: string): Promise<string[]> {
  const text = await fs.readFile(path.join(dir, 'Dockerfile'), 'utf8');
  return [...text.matchAll(/^FROM\s+(dockergate-test\/base:\S+)/gim)].map((match) => match[1]!);
}

/**
 * Builds one image unless its label says it is up to date. Never throws for a failed build.
 * `baseId` is the bookworm base's ID; images on another test base hash that base's ID instead.
 */
export async function buildImage(image: CorpusImage, baseId: string, options: BuildOptions = {}): Promise<BuildResult> {
  const started = performance.now();
  const seconds = (): number => Math.round((performance.now() - started) / 100) / 10;
  const dir = path.join(CORPUS_DIR, image.name);
  const contextDir = path.join(CORPUS_DIR, image.context ?? image.name);
  const dockerfile = path.join(dir, 'Dockerfile');
  const bases = await testBasesOf(dir);
  const baseIds = await Promise.all(bases.map((base) => (base === BASE_IMAGE ? baseId : baseImageId(base))));
  // A shared context hashes this image's own Dockerfile too (the context holds another one).
  const ownDockerfile = image.context ? `\n${createHash('sha256').update(await fs.readFile(dockerfile)).digest('hex')}` : '';
  const sha = await contextSha(contextDir, `${baseIds.length === 0 ? baseId : baseIds.join('\n')}${ownDockerfile}`);
  const before = await inspectImage(image.tag);
  if (before !== undefined && before.label === sha && !options.force && !options.noCache) {
    return { image, status: 'cached', seconds: seconds(), sizeBytes: before.size, imageId: before.id, contextSha: sha };
  }
  await fs.mkdir(LOG_DIR, { recursive: true });
  const logFile = path.join(LOG_DIR, `corpus-${image.name}.log`);
  await fs.writeFile(logFile, `==== ${new Date().toISOString()} docker build ${image.tag} from ${dir}\n`);
  const args = ['build', '--network', 'host', '--force-rm', '--label', `${CONTEXT_LABEL}=${sha}`, '-t', image.tag];
  if (options.noCache) args.push('--no-cache');
  if (image.context) args.push('-f', dockerfile);
  args.push(contextDir);
  const result = await docker(args, { logFile, timeoutMs: BUILD_TIMEOUT_MS });
  if (result.code !== 0) {
    const why = result.timedOut ? `timed out after ${BUILD_TIMEOUT_MS / 1000}s` : `exit ${result.code}`;
    return {
      image,
      status: 'failed',
      seconds: seconds(),
      contextSha: sha,
      logFile,
      error: `docker build ${why}:\n${tail(result.stdout + result.stderr, 20)}`,
    };
  }
  const after = await inspectImage(image.tag);
  // Drop the superseded image so rebuilds do not pile up (it may still be used: ignore errors).
  if (before !== undefined && after !== undefined && before.id !== after.id) {
    await docker(['rmi', before.id], { timeoutMs: 60_000 });
  }
  await replaceStageImages(image, stageImages(result.stdout));
  const out: BuildResult = { image, status: 'built', seconds: seconds(), contextSha: sha, logFile };
  if (after !== undefined) {
    out.sizeBytes = after.size;
    out.imageId = after.id;
  }
  return out;
}

/**
 * IDs of the images that end the builder stages of a multi-stage build (untagged: the classic
 * builder keeps them, they are the layer cache of the next build), from `docker build` output:
 * the last ` ---> <id>` before each later `Step n/m : FROM`.
 */
function stageImages(output: string): string[] {
  const ids: string[] = [];
  let last: string | undefined;
  let steps = 0;
  for (const line of output.split('\n')) {
    const from = /^Step \d+\/\d+ : FROM /i.test(line);
    if (from && steps > 0 && last !== undefined) ids.push(last);
    if (/^Step \d+\/\d+ : /.test(line)) steps++;
    const id = /^ ---> ([0-9a-f]{12,64})\s*$/.exec(line)?.[1];
    if (id !== undefined) last = id;
  }
  return ids;
}

/**
 * Records the builder-stage images of `image`'s latest build (under /var/cache/dockergate/corpus)
 * and removes those of the build before, so that rebuilds do not leave dangling images behind.
 */
async function replaceStageImages(image: CorpusImage, ids: string[]): Promise<void> {
  const dir = '/var/cache/dockergate/corpus';
  const file = path.join(dir, `${image.name}.stage-images`);
  const previous = (await fs.readFile(file, 'utf8').catch(() => '')).split('\n').filter((id) => id !== '');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(file, ids.map((id) => `${id}\n`).join(''));
  for (const id of previous) {
    if (ids.some((current) => current.startsWith(id) || id.startsWith(current))) continue;
    // Fails harmlessly if the image is gone or is still a parent of something.
    await docker(['rmi', id], { timeoutMs: 60_000 });
  }
}

export function formatBuildLine(result: BuildResult): string {
  const size = result.sizeBytes === undefined ? '-' : `${(result.sizeBytes / 1e6).toFixed(1)} MB`;
  const id = result.imageId === undefined ? '' : `  ${result.imageId.slice(7, 19)}`;
  return (
    `${result.image.name.padEnd(22)} ${result.status.padEnd(6)} ${`${result.seconds.toFixed(1)}s`.padStart(7)} ` +
    `${size.padStart(9)}  ${result.image.tag}${id}` +
    (result.status === 'failed' ? `  (log ${result.logFile})` : '')
  );
}

/** Builds the named images (all when empty), one after the other, calling `onResult` for each. */
export async function buildCorpus(
  names: readonly string[] = [],
  options: BuildOptions = {},
  onResult: (result: BuildResult) => void = () => {},
): Promise<BuildResult[]> {
  const images = selectImages(names);
  const baseId = await baseImageId();
  const results: BuildResult[] = [];
  for (const image of images) {
    const result = await buildImage(image, baseId, options);
    onResult(result);
    results.push(result);
  }
  return results;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { force: { type: 'boolean', default: false }, 'no-cache': { type: 'boolean', default: false } },
  });
  const started = performance.now();
  const results = await buildCorpus(positionals, { force: values.force, noCache: values['no-cache'] }, (result) => {
    console.log(formatBuildLine(result));
    if (result.error !== undefined) console.error(result.error.replace(/^/gm, '    '));
  });
  const failed = results.filter((r) => r.status === 'failed');
  console.log(
    `${results.length} images: ${results.filter((r) => r.status === 'built').length} built, ` +
      `${results.filter((r) => r.status === 'cached').length} cached, ${failed.length} failed ` +
      `in ${((performance.now() - started) / 1000).toFixed(1)}s`,
  );
  if (failed.length > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
