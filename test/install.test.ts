/**
 * The README's install, as a user runs it: `npm pack` in the checkout, `npm install -g` of the
 * tarball into a temporary prefix, then the installed `dockergate` from a directory outside the
 * checkout: --version, --help, and the main job (`scan`) on an OCI layout of this machine's files.
 * Dependencies come from the npm registry (or npm's cache, filled by `npm ci`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type EntrySpec, gzipLayer, writeOciLayout } from './helpers/layers.js';

const run = promisify(execFile);
const CHECKOUT = path.resolve(import.meta.dirname, '..');

describe('installed with npm install -g from npm pack', () => {
  let work = '';
  let command = '';
  let elsewhere = '';

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-install-'));
    const { stdout } = await run('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: CHECKOUT, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
    const tarball = path.join(work, stdout.trim().split('\n').at(-1)!);
    const prefix = path.join(work, 'prefix');
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: work, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
    command = path.join(prefix, 'bin', 'dockergate');
    elsewhere = path.join(work, 'elsewhere');
    await fs.mkdir(elsewhere);
  });

  after(async () => {
    await fs.rm(work, { recursive: true, force: true });
  });

  it('holds what runs and nothing of the tests or benchmarks', async () => {
    const installed = path.join(work, 'prefix', 'lib', 'node_modules', 'dockergate');
    const top = (await fs.readdir(installed)).sort();
    assert.ok(top.includes('bin') && top.includes('dist') && top.includes('store'), top.join(' '));
    assert.deepEqual((await fs.readdir(path.join(installed, 'dist'))).sort(), ['coordinator', 'extractor', 'infra', 'store', 'worker']);
  });

  it('prints its version and those of the extractor, analysers and generator', { timeout: 60_000 }, async () => {
    const version = JSON.parse(await fs.readFile(path.join(CHECKOUT, 'package.json'), 'utf8')).version as string;
    const { stdout } = await run(command, ['--version'], { cwd: elsewhere });
    assert.match(stdout, new RegExp(`^dockergate ${version.replaceAll('.', '\\.')} \\(extractor \\d+, analysers: native \\d+, radare2 \\d+, generator \\d+\\)\\n$`));
    const help = await run(command, ['--help'], { cwd: elsewhere });
    assert.match(help.stdout, /scan \[options\] <ref>/);
  });

  it('scans an image outside the checkout and writes the profile', { timeout: 300_000 }, async () => {
    const hostFile = async (file: string): Promise<EntrySpec> => ({ name: file.slice(1), content: await fs.readFile(await fs.realpath(file)), mode: 0o755 });
    const layout = path.join(elsewhere, 'image');
    await writeOciLayout(layout, {
      layers: [await gzipLayer(await Promise.all(['/usr/bin/dash', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'].map(hostFile)))],
      config: { Entrypoint: ['/usr/bin/dash', '-c', 'exit 0'] },
    });
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: elsewhere };
    delete env.DOCKERGATE_CACHE_DIR;
    delete env.XDG_CACHE_HOME;
    const { stdout } = await run(command, ['scan', 'oci:image', '-o', 'profile.json', '--quiet'], { cwd: elsewhere, env });
    assert.match(stdout, /wrote profile\.json/);
    const profile = JSON.parse(await fs.readFile(path.join(elsewhere, 'profile.json'), 'utf8')) as { syscalls: { names: string[]; action: string }[] };
    const allowed = profile.syscalls.find((rule) => rule.action === 'SCMP_ACT_ALLOW')!.names;
    for (const name of ['execve', 'exit_group', 'mmap']) assert.ok(allowed.includes(name), name);
    // The default cache is under the user's home, not the checkout.
    await fs.access(path.join(elsewhere, '.cache', 'dockergate'));
  });
});
