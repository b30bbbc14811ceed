/**
 * A program with a command table (openssl's `functions[]`, git's `commands[]`: records pairing a
 * command's name with its function, searched for the first argument) runs the command its first
 * argument names (worker/native/command-tables.ts, coordinator/plan/link.ts). A compiled PIE
 * program and glibc, in OCI layouts: `app lock` is allowed what `lock` does (and strace's ground
 * truth of that run), not what the other commands do; `app` without a known command keeps them all.
 * Like a real subcommand dispatcher's, the table lists a `help` command (command-tables.ts).
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
import { findCommandTable } from '../worker/native/command-tables.js';
import { straceSyscalls } from './helpers/ground-truth.js';
import { type EntrySpec, gzipLayer, tempDir, writeOciLayout } from './helpers/layers.js';

const run = promisify(execFile);

/** Each command makes a syscall no other part of the program makes. */
const COMMANDS: readonly (readonly [string, string, string])[] = [
  ['lock', 'mlock', 'static char page[4096]; return mlock(page, sizeof page);'],
  ['unlock', 'munlockall', 'return munlockall();'],
  ['flush', 'sync', 'sync(); return 0;'],
  ['jail', 'chroot', 'return chroot("/nonexistent");'],
  ['account', 'acct', 'return acct(0);'],
  ['swap', 'swapoff', 'return swapoff("/nonexistent");'],
  ['host', 'sethostname', 'return sethostname("x", 1);'],
  ['domain', 'setdomainname', 'return setdomainname("x", 1);'],
  ['nice', 'setpriority', 'return setpriority(PRIO_PROCESS, 0, 1);'],
  ['help', 'fsync', 'return fsync(1);'],
];

const PROGRAM = `#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/swap.h>
${COMMANDS.map(([name, , body]) => `static int cmd_${name}(int argc, char **argv) { (void)argc; (void)argv; ${body} }`).join('\n')}
static const struct command { const char *name; int (*run)(int, char **); unsigned flags; } commands[] = {
${COMMANDS.map(([name]) => `  { "${name}", cmd_${name}, 1 },`).join('\n')}
};
int main(int argc, char **argv) {
  if (argc < 2) { for (unsigned i = 0; i < sizeof commands / sizeof *commands; i++) puts(commands[i].name); return 0; }
  for (unsigned i = 0; i < sizeof commands / sizeof *commands; i++)
    if (strcmp(commands[i].name, argv[1]) == 0) { commands[i].run(argc - 1, argv + 1); return 0; }
  return 2;
}
`;

describe('command tables: the command the first argument names runs', { timeout: 300_000 }, () => {
  let work: string;
  const layouts = new Map<string, string>();
  before(async () => {
    work = await tempDir('dockergate-commands-');
    await fs.writeFile(path.join(work, 'app.c'), PROGRAM);
    await run('gcc', ['-O2', '-fPIE', '-pie', '-o', path.join(work, 'app'), path.join(work, 'app.c')]);
    const file = async (name: string, from: string, mode = 0o755): Promise<EntrySpec> => ({ name, content: await fs.readFile(from), mode });
    const layer = await gzipLayer([
      await file('usr/bin/app', path.join(work, 'app')),
      await file('lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6'),
      await file('lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2'),
    ]);
    for (const [label, entrypoint] of [
      ['lock', ['/usr/bin/app', 'lock']],
      ['none', ['/usr/bin/app']],
      ['unknown', ['/usr/bin/app', 'nosuchcommand']],
    ] as const) {
      const layout = path.join(work, label);
      await writeOciLayout(layout, { layers: [layer], config: { Entrypoint: [...entrypoint] } });
      layouts.set(label, layout);
    }
  });
  after(async () => {
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  const scan = async (label: string): Promise<Awaited<ReturnType<typeof scanImage>>> => {
    const runtime = embeddedRuntime(DEFAULT_LIMITS, path.join(work, `cache-${label}`));
    try {
      return await scanImage(runtime, `oci:${layouts.get(label)!}`, { source: { platform: { os: 'linux', architecture: 'amd64' }, insecure: false } });
    } finally {
      await runtime.close();
    }
  };

  it('allows what `app lock` does, strace\'s ground truth included, and not the other commands', async () => {
    const result = await scan('lock');
    assert.ok(result.syscalls.has('mlock'), 'the invoked command\'s syscall is allowed');
    for (const [name, syscall] of COMMANDS.slice(1)) assert.ok(!result.syscalls.has(syscall), `${name}'s ${syscall} is not allowed`);
    assert.ok(result.decisions.some((decision) => decision.kind === 'program' && decision.detail.includes('runs its lock command')));
    const seen = await straceSyscalls(path.join(work, 'app'), ['lock']);
    const missed = [...seen].filter((name) => !result.syscalls.has(name));
    assert.deepEqual(missed, [], `seen by strace but not allowed: ${missed.join(' ')}`);
    assert.equal(result.unsure, false);
  });

  for (const label of ['none', 'unknown']) {
    it(`keeps every command when the first argument names none (${label})`, async () => {
      const result = await scan(label);
      for (const [name, syscall] of COMMANDS) assert.ok(result.syscalls.has(syscall), `${name}'s ${syscall} is allowed`);
    });
  }

  it('finds the table from relocations: one function per record, at the offset most records share', () => {
    // Records of 24 bytes at 0x1000: name at +0, function at +8; one record without a function.
    const names: [number, string][] = [];
    const code: [number, number][] = [];
    for (let k = 0; k < 10; k++) {
      names.push([0x1000 + 24 * k, k === 9 ? 'help' : `cmd${k}`]);
      if (k !== 4) code.push([0x1008 + 24 * k, 0x500 + 16 * k]);
    }
    const table = findCommandTable(code, names, [[0x1010, 0x9000]], 8);
    assert.deepEqual(
      table.commands.map((command) => command.name),
      names.filter((_, k) => k !== 4).map(([, name]) => name),
    );
    assert.equal(table.commands.find((command) => command.name === 'cmd3')?.address, 0x530);
    assert.equal(table.functionSlots.size, 9);
    // The record's other pointer (at +16 of cmd0) is cmd0's data, not the table's.
    assert.deepEqual(table.recordData, [[0x500, 0x9000]]);
    assert.deepEqual([...table.dataSlots], [0x1010]);
    // No help command (make's functions, a server's protocol commands): no dispatcher's table.
    assert.equal(findCommandTable(code, names.map(([slot, name]) => [slot, name === 'help' ? 'cmd9' : name] as [number, string]), [], 8).commands.length, 0);
    // Fewer than eight records, or names that are not command words: no table.
    assert.equal(findCommandTable(code.slice(0, 5), names.slice(0, 5), [], 8).commands.length, 0);
    assert.equal(findCommandTable(code, names.map(([slot, name]) => [slot, `Not A Command ${name}`] as [number, string]), [], 8).commands.length, 0);
  });
});
