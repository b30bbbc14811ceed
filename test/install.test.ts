/**
 * The README's install, as a user runs it: `npm pack` in the checkout, `npm install -g` of the
 * tarball into a temporary prefix, then the installed `dockergate` from a directory outside the
 * checkout: --version, --help, and the main job (`scan`) on an OCI layout of this machine's files.
 * And the README's quick start as written (`npm run example`), its image run under its profile.
 * Dependencies come from the npm registry (or npm's cache, filled by `npm ci`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { validateSeccompProfileCrd } from '../coordinator/output/policy.js';
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

describe("the README's quick start, as written", () => {
  it('npm run example writes the profile, the Kubernetes profile, the report and the graph, and the image runs under the profile', { timeout: 600_000 }, async () => {
    const outputs = ['example-profile.json', 'example-profile.yaml', 'example-report.json', 'example.dot'].map((name) => path.join(CHECKOUT, name));
    await Promise.all(outputs.map((file) => fs.rm(file, { force: true })));
    await run('npm', ['run', 'example', '--silent'], { cwd: CHECKOUT, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
    const [profileText, yamlText, reportText, dot] = await Promise.all(outputs.map((file) => fs.readFile(file, 'utf8')));
    const profile = JSON.parse(profileText!) as { defaultAction: string; syscalls: { names: string[]; action: string }[] };
    const allowed = profile.syscalls.find((rule) => rule.action === 'SCMP_ACT_ALLOW')!.names;
    const report = JSON.parse(reportText!) as { syscalls: Record<string, string[]> };
    assert.deepEqual([...allowed].sort(), Object.keys(report.syscalls).sort(), 'the report explains every allowed syscall');
    assert.deepEqual(validateSeccompProfileCrd(parseYaml(yamlText!)), []);
    assert.match(dot!, /^digraph /);
    // The example image, copied into the daemon, still does its job under the profile it got.
    const image = 'dockergate-test/example:quick-start';
    await run('skopeo', ['copy', '--quiet', `oci:${path.join(CHECKOUT, 'test/fixtures/example/hello-oci')}:latest`, `docker-daemon:${image}`], { timeout: 300_000 });
    const { stdout } = await run('docker', ['run', '--rm', '--network', 'none', '--security-opt', `seccomp=${outputs[0]}`, image], { timeout: 120_000 });
    assert.match(stdout, /^hello from the example image\n/);
    assert.match(stdout, /^PATH=\/usr\/local\/bin:\/usr\/bin:\/bin$/m);
  });
});
