/**
 * A module a program dlopens by a path it reads from its configuration (Apache's LoadModule) is
 * in no object's strings: the planner loads the shared objects that text files under the
 * program's configuration directory name (coordinator/plan/scan.ts `configuredModules`), and
 * nothing another program's configuration names. Real compiled programs and glibc, in an OCI
 * layout; the module's own syscall (mlock) must be in the profile.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { scanImage } from '../coordinator/plan/scan.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { type EntrySpec, gzipLayer, tempDir, writeOciLayout } from './helpers/layers.js';

const run = promisify(execFile);

const PROGRAM = `#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  char line[512] = "";
  FILE *config = fopen("/etc/app/modules.conf", "r");
  if (!config || !fgets(line, sizeof line, config)) return 1;
  line[strcspn(line, "\\n")] = 0;
  void *module = dlopen(strchr(line, '/'), RTLD_NOW);
  void (*start)(void) = module ? (void (*)(void))dlsym(module, "module_start") : 0;
  if (start) start();
  return 0;
}
`;
const MODULE = `#include <sys/mman.h>
static char page[4096];
void module_start(void) { mlock(page, sizeof page); }
`;
const OTHER = `#include <sys/syscall.h>
#include <unistd.h>
void module_start(void) { syscall(SYS_ptrace, 0, 0, 0, 0); }
`;

describe('modules named by configuration files', { timeout: 300_000 }, () => {
  let work: string;
  let layout: string;
  before(async () => {
    work = await tempDir('dockergate-configured-');
    await fs.writeFile(path.join(work, 'app.c'), PROGRAM);
    await fs.writeFile(path.join(work, 'mod.c'), MODULE);
    await fs.writeFile(path.join(work, 'other.c'), OTHER);
    await run('gcc', ['-O2', '-o', path.join(work, 'app'), path.join(work, 'app.c')]);
    await run('gcc', ['-O2', '-shared', '-fPIC', '-o', path.join(work, 'mod.so'), path.join(work, 'mod.c')]);
    await run('gcc', ['-O2', '-shared', '-fPIC', '-o', path.join(work, 'other.so'), path.join(work, 'other.c')]);
    const file = async (name: string, from: string, mode = 0o755): Promise<EntrySpec> => ({ name, content: await fs.readFile(from), mode });
    const layer = await gzipLayer([
      await file('usr/bin/app', path.join(work, 'app')),
      await file('lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6'),
      await file('lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2'),
      await file('usr/lib/app/mod.so', path.join(work, 'mod.so')),
      await file('usr/lib/other/other.so', path.join(work, 'other.so')),
      { name: 'etc/app/modules.conf', content: 'LoadModule /usr/lib/app/mod.so\n' },
      // Another program's configuration: app names no /etc/other, so this module is not app's.
      { name: 'etc/other/modules.conf', content: 'LoadModule /usr/lib/other/other.so\n' },
    ]);
    layout = path.join(work, 'layout');
    await writeOciLayout(layout, { layers: [layer], config: { Entrypoint: ['/usr/bin/app'] } });
  });
  after(async () => {
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('loads the module app.conf names, with its reason, and not the other program\'s', async () => {
    const runtime = embeddedRuntime(DEFAULT_LIMITS, path.join(work, 'cache'));
    try {
      const result = await scanImage(runtime, `oci:${layout}`, { source: { platform: { os: 'linux', architecture: 'amd64' }, insecure: false } });
      const loaded = result.decisions.filter((decision) => decision.kind === 'dlopen').map((decision) => decision.detail);
      assert.ok(
        loaded.some((detail) => detail.includes('/usr/lib/app/mod.so') && detail.includes('/etc/app/modules.conf names')),
        loaded.join('\n'),
      );
      assert.ok(!loaded.some((detail) => detail.includes('other.so')), loaded.join('\n'));
      assert.ok(result.syscalls.has('mlock'), 'the configured module\'s syscall is allowed');
      assert.ok(!result.syscalls.has('ptrace'), 'the other program\'s module adds nothing');
      assert.equal(result.unsure, false);
    } finally {
      await runtime.close();
    }
  });
});
