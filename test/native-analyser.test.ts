/**
 * Ground truth for the native analyser: programs compiled in the test run (glibc dynamic and
 * static, musl static and dynamic, Go) are run under `strace -f`; the statically computed closure
 * of each (its facts linked with its libraries' facts like ld.so does) must contain every syscall
 * strace saw. Plus libc's resolution rate, expected summaries, golden facts and store-once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyzeFiles } from '../coordinator/plan/analyze.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import { DEFAULT_LIMITS, limitsWith } from '../infra/limits.js';
import { reachOf } from '../store/facts.js';
import { analyzeElf } from '../worker/native/analyser.js';
import { factsReader, programClosure } from './helpers/closure.js';
import { buildFixture, FIXTURE_MATRIX, FixtureDirs, fixtureLabel, straceRun } from './helpers/ground-truth.js';
import { buildElf, EXIT_0, SHF } from './helpers/elf-builder.js';
import { tempDir } from './helpers/layers.js';

const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';
const GOLDEN_DIR = path.join(import.meta.dirname, 'golden');
const UPDATE_GOLDEN = process.env.DOCKERGATE_UPDATE_GOLDEN === '1';

const factsOf = factsReader((bytes, sha) => analyzeElf(bytes, sha, DEFAULT_LIMITS));

let work: string;
const fixtureDirs = new FixtureDirs('dockergate-native-');
before(async () => {
  work = await tempDir('dockergate-native-');
});
after(async () => {
  await fs.rm(work, { recursive: true, force: true });
  await fixtureDirs.remove();
});

describe('ground truth: every syscall strace sees is in the static closure', () => {
  for (const entry of FIXTURE_MATRIX) {
    const { name, toolchain, root } = entry;
    it(fixtureLabel(entry), { timeout: 300_000 }, async () => {
      const executable = await buildFixture(name, toolchain, await fixtureDirs.for(root), root);
      const traced = await straceRun(executable, { root });
      const closure = (await programClosure(executable, factsOf, root)).linked;
      const missed = [...traced.ownSyscalls].filter((call) => !closure.syscalls.has(call)).sort();
      assert.deepEqual(missed, [], `${fixtureLabel(entry)}: strace saw ${missed.join(', ')} which the analysis did not find`);
      assert.ok(traced.ownSyscalls.size > 5, 'the program really ran');
    });
  }
});

describe('static Go', () => {
  it('follows the numbers Go keeps in variables and its per-thread syscalls: no unresolved site', { timeout: 300_000 }, async () => {
    const entry = FIXTURE_MATRIX.find((item) => item.toolchain === 'go');
    assert.ok(entry, 'the Go fixture builds here');
    const executable = await buildFixture(entry.name, entry.toolchain, await fixtureDirs.for(entry.root), entry.root);
    const facts = await factsOf(executable);
    assert.deepEqual(facts.unresolved, [], 'syscall.fcntl64Syscall, internal/syscall/unix.FcntlSyscall and runtime.runPerThreadSyscall are resolved');
    const closure = (await programClosure(executable, factsOf, entry.root)).linked;
    for (const name of ['fcntl', 'setuid', 'setgid']) assert.ok(closure.syscalls.has(name), `${name} in the closure`);
  });
});

describe('libc.so.6', () => {
  it('resolves at least 97 % of syscall sites and summarises well-known exports', async () => {
    const facts = await factsOf(LIBC);
    const { syscallSites, resolvedSites } = facts.stats;
    const rate = resolvedSites / syscallSites;
    console.log(`libc.so.6: ${resolvedSites}/${syscallSites} syscall sites resolved (${(100 * rate).toFixed(1)} %)`);
    assert.ok(syscallSites > 300, `libc has hundreds of syscall sites (${syscallSites})`);
    assert.ok(rate >= 0.97, `resolved ${(100 * rate).toFixed(1)} %`);
    const reach = (name: string): readonly string[] => {
      const found = facts.exports.find((item) => item.symbol.split('@')[0] === name && !item.symbol.includes('@') !== undefined);
      assert.ok(found, `libc exports ${name}`);
      return reachOf(facts, found).syscalls;
    };
    assert.ok(reach('printf').includes('write'));
    assert.ok(reach('fopen').includes('openat'));
    assert.ok(reach('malloc').includes('mmap') || reach('malloc').includes('brk'));
    assert.ok(reach('exit').includes('exit_group'));
    assert.ok(reach('read').includes('read'));
    assert.ok(!reach('getpid').includes('execve'), 'getpid does not reach execve');
  });

  it('is analysed in the same way twice (stable facts)', async () => {
    const bytes = await fs.readFile(LIBC);
    const first = JSON.stringify(analyzeElf(bytes, 'a', DEFAULT_LIMITS));
    const second = JSON.stringify(analyzeElf(bytes, 'a', DEFAULT_LIMITS));
    assert.equal(first, second);
  });
});

describe('golden facts', () => {
  for (const [name, toolchain] of [
    ['direct-syscall', 'glibc-static'],
    ['hello', 'musl-static'],
  ] as const) {
    it(`${name} (${toolchain})`, { timeout: 120_000 }, async () => {
      const facts = await factsOf(await buildFixture(name, toolchain, work));
      const pinned = {
        elfType: facts.elfType,
        flags: facts.flags,
        entry: facts.entry ? reachOf(facts, facts.entry) : null,
        initialisers: facts.initialisers.map((init) => ({ symbol: init.symbol, ...reachOf(facts, init) })),
        callbacks: facts.callbacks.length,
        dataRegions: facts.dataRegions.map((region) => ({ always: region.always, holds: region.holds.length, ...reachOf(facts, region.reach) })),
        unresolved: facts.unresolved.length,
      };
      const file = path.join(GOLDEN_DIR, `${name}.${toolchain}.json`);
      const text = `${JSON.stringify(pinned, null, 2)}\n`;
      if (UPDATE_GOLDEN) {
        await fs.mkdir(GOLDEN_DIR, { recursive: true });
        await fs.writeFile(file, text);
      }
      assert.equal(text, await fs.readFile(file, 'utf8'), `golden ${file} (DOCKERGATE_UPDATE_GOLDEN=1 rewrites it)`);
    });
  }
});

describe('knowledge base', () => {
  it('analyses a file once, however often it is asked for', { timeout: 120_000 }, async () => {
    const runtime = embeddedRuntime(DEFAULT_LIMITS, path.join(work, 'cache-once'));
    try {
      const target = await buildFixture('hello', 'glibc-dynamic', work);
      const first = await analyzeFiles(runtime, [target, target]);
      const second = await analyzeFiles(runtime, [target]);
      assert.equal(runtime.counters.analysed, 1);
      assert.equal(second[0]?.cached, true);
      assert.deepEqual(second[0]?.facts, first[0]?.facts);
      assert.ok(first[0]?.facts?.entry, 'facts were stored and read back');
    } finally {
      await runtime.close();
    }
  });

  it('holds the per-file time limit: a slow analysis is stopped and recorded as failed', { timeout: 120_000 }, async () => {
    const runtime = embeddedRuntime(limitsWith({ analysisTimeoutMs: 50 }), path.join(work, 'cache-slow'));
    try {
      const started = performance.now();
      const [result] = await analyzeFiles(runtime, [LIBC]);
      assert.equal(result?.failure?.code, 'limit-exceeded');
      assert.match(result?.failure?.message ?? '', /analysisTimeoutMs/);
      assert.ok(performance.now() - started < 30_000, 'the analysis thread was stopped, not waited for');
    } finally {
      await runtime.close();
    }
  });

  it('records a hostile file as failed with its reason, once', { timeout: 120_000 }, async () => {
    const runtime = embeddedRuntime(DEFAULT_LIMITS, path.join(work, 'cache-bad'));
    try {
      const bad = path.join(work, 'truncated.elf');
      await fs.writeFile(bad, (await fs.readFile(LIBC)).subarray(0, 100));
      const [result] = await analyzeFiles(runtime, [bad]);
      assert.equal(result?.failure?.code, 'invalid-input');
      const [again] = await analyzeFiles(runtime, [bad]);
      assert.equal(again?.cached, true);
      assert.equal(runtime.counters.failed, 1);
    } finally {
      await runtime.close();
    }
  });
});

describe('section headers that lie', () => {
  it('keeps the entry point when it lies in an executable segment but no section says executable', () => {
    // mov eax, 101 (ptrace); xor edi, edi; syscall; then exit(0). The kernel maps the RWX segment and runs it.
    const text = Uint8Array.from([0xb8, 0x65, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05, ...EXIT_0]);
    const honest = analyzeElf(buildElf({ text }), 'honest', DEFAULT_LIMITS);
    // .text not executable, .dynstr executable: the sections name code, but not the entry's.
    const lying = analyzeElf(buildElf({ text, soname: 'x', hostile: { sectionFlags: { '.text': SHF.ALLOC, '.dynstr': SHF.ALLOC | SHF.EXECINSTR } } }), 'lying', DEFAULT_LIMITS);
    for (const facts of [honest, lying]) {
      assert.ok(facts.entry, 'an entry point');
      assert.ok(reachOf(facts, facts.entry).syscalls.includes('ptrace'), JSON.stringify(reachOf(facts, facts.entry)));
    }
  });
});
