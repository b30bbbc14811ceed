/**
 * Extraction benchmark: `dockergate inspect` on one large gzip layer against the same machine's
 * `gzip -dc layer | sha256sum` (the least work any reader of that layer must do), measured in the
 * same run; and dockergate's peak RSS while it extracts the ≥ 1 GiB layer.
 *
 *   npm run bench:extract [-- --size-gib 1 --runs 3]
 *
 * The layer is built once from this machine's /usr (real binaries and libraries, repeated under
 * numbered prefixes until the tar reaches the size) and cached under /var/cache/dockergate/bench.
 */
import { execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { GiB, MiB } from '../infra/limits.js';
import { writeOciLayout } from '../test/helpers/layers.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    'size-gib': { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    'cache-root': { type: 'string', default: '/var/cache/dockergate/bench' },
  },
});
const targetBytes = Number(values['size-gib']) * GiB;
const runs = Number(values.runs);
const cacheRoot = values['cache-root'];
const repoRoot = path.resolve(import.meta.dirname, '..');

/** Regular files of /usr, sorted, without following symlinks. */
async function sourceFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) out.push(full);
    }
  };
  await walk(root);
  return out;
}

async function buildLayer(tarPath: string): Promise<void> {
  const files = await sourceFiles('/usr');
  const pack = tar.pack();
  const done = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(tarPath));
  let written = 0;
  for (let copy = 0; written < targetBytes; copy++) {
    for (const file of files) {
      const content = await fs.readFile(file).catch(() => undefined);
      if (!content) continue;
      await new Promise<void>((resolve, reject) =>
        pack.entry({ name: `copy${copy}${file}`, mode: 0o755, mtime: new Date(0) }, content, (err) => (err ? reject(err) : resolve())),
      );
      written += 512 + Math.ceil(content.length / 512) * 512;
      if (written >= targetBytes) break;
    }
  }
  pack.finalize();
  await done;
}

async function ensureLayer(): Promise<{ gzPath: string; tarBytes: number }> {
  await fs.mkdir(cacheRoot, { recursive: true });
  const base = path.join(cacheRoot, `usr-${values['size-gib']}gib`);
  const gzPath = `${base}.tar.gz`;
  const sizeFile = `${base}.tar-bytes`;
  try {
    return { gzPath, tarBytes: Number(await fs.readFile(sizeFile, 'utf8')) };
  } catch {
    process.stderr.write(`building a ${values['size-gib']} GiB layer from /usr into ${gzPath} (once)...\n`);
    const tarPath = `${base}.tar`;
    await buildLayer(tarPath);
    const tarBytes = (await fs.stat(tarPath)).size;
    await run('sh', ['-c', `gzip -6 -c '${tarPath}' > '${gzPath}.tmp' && mv '${gzPath}.tmp' '${gzPath}'`]);
    await fs.rm(tarPath);
    await fs.writeFile(sizeFile, String(tarBytes));
    return { gzPath, tarBytes };
  }
}

/** Wall seconds and peak RSS (KiB) of a command, from GNU time. */
async function measure(command: string, args: string[]): Promise<{ seconds: number; peakKiB: number }> {
  const started = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%M', command, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${code}): ${stderr}`);
  const peakKiB = Number(stderr.trim().split('\n').pop());
  return { seconds, peakKiB };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const { gzPath, tarBytes } = await ensureLayer();
  const gzBytes = (await fs.stat(gzPath)).size;
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-bench-'));
  try {
    // An OCI layout whose one layer is the cached blob (hard-linked, not copied): the layout is
    // written with an empty placeholder blob under the real digest, which is then replaced.
    const layout = path.join(work, 'layout');
    const digest = (await run('sha256sum', [gzPath], { maxBuffer: 1024 })).stdout.split(' ')[0]!;
    const diffId = (await run('bash', ['-o', 'pipefail', '-c', `gzip -dc '${gzPath}' | sha256sum`])).stdout.split(' ')[0]!;
    await writeOciLayout(layout, {
      layers: [{ blob: Buffer.alloc(0), tar: Buffer.alloc(0), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', declaredDigest: `sha256:${digest}`, declaredSize: gzBytes, diffId: `sha256:${diffId}` }],
    });
    const blobPath = path.join(layout, 'blobs', 'sha256', digest);
    await fs.rm(blobPath);
    await fs.link(gzPath, blobPath).catch(() => fs.copyFile(gzPath, blobPath));

    const baseline: number[] = [];
    const ours: number[] = [];
    const peaks: number[] = [];
    for (let i = 0; i < runs; i++) {
      baseline.push((await measure('bash', ['-o', 'pipefail', '-c', `gzip -dc '${gzPath}' | sha256sum > /dev/null`])).seconds);
      const cacheDir = path.join(work, `cache-${i}`);
      const result = await measure(process.execPath, [path.join(repoRoot, 'bin/dockergate.js'), 'inspect', '--cache-dir', cacheDir, `oci:${layout}`]);
      ours.push(result.seconds);
      peaks.push(result.peakKiB);
      await fs.rm(cacheDir, { recursive: true, force: true });
    }
    const mb = tarBytes / 1e6;
    const baseRate = mb / median(baseline);
    const ourRate = mb / median(ours);
    console.log(`layer: ${(tarBytes / GiB).toFixed(2)} GiB uncompressed, ${(gzBytes / MiB).toFixed(0)} MiB gzip; ${os.cpus().length} cores; median of ${runs} runs`);
    console.log(`gzip -dc | sha256sum   ${median(baseline).toFixed(2)} s   ${baseRate.toFixed(0)} MB/s (uncompressed)`);
    console.log(`dockergate inspect     ${median(ours).toFixed(2)} s   ${ourRate.toFixed(0)} MB/s (uncompressed)`);
    console.log(`ratio                  ${(ourRate / baseRate).toFixed(2)}x of the baseline (target >= 0.6x)`);
    console.log(`peak RSS               ${(Math.max(...peaks) / 1024).toFixed(0)} MiB (target < 300 MiB)`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
