/**
 * Policy writers (Docker/OCI JSON, Kubernetes SeccompProfile) as unit tests, and `verifyImage` against
 * the real Docker daemon: a profile cut to what strace sees for /bin/true plus the runtime's measured
 * syscalls keeps the container working, one without execve or a runtime syscall breaks it, a smoke
 * test runs in a sidecar outside the tested profile, and the ENOSYS rule keeps glibc's clone3
 * fallback alive. The integration part needs what `infra/setup/test-env.sh` prepares.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { parse } from 'yaml';
import {
  buildDockerProfile,
  type DockerSeccompProfile,
  dockerProfile,
  ENOSYS,
  EPERM,
  kubernetesProfile,
  validateSeccompProfileCrd,
} from '../coordinator/output/policy.js';
import { DEFAULT_PROFILE_SYSCALLS, DOCKER_DEFAULT_FALLBACK_SYSCALLS } from '../coordinator/plan/platforms.js';
import { RUNTIME_SYSCALLS } from '../coordinator/plan/runtime-syscalls.js';
import { demuxDockerLogs, verifyImage } from '../coordinator/cli/verify.js';
import type { Platform } from '../extractor/types.js';
import { UnsupportedError } from '../infra/errors.js';
import { syscallTable } from '../worker/syscalls/index.js';

const run = promisify(execFile);
const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64' };
const BASE_IMAGE = 'dockergate-test/base:bookworm';
const APP_IMAGE = 'dockergate-test/app:1';

const enosysRule = (profile: DockerSeccompProfile) => profile.syscalls.find((rule) => rule.action === 'SCMP_ACT_ERRNO');
const allowRule = (profile: DockerSeccompProfile) => profile.syscalls.find((rule) => rule.action === 'SCMP_ACT_ALLOW');

describe('dockerProfile', () => {
  it('allows the names sorted and unique in one rule, denies with EPERM by default', () => {
    const profile = dockerProfile(['write', 'read', 'write', 'exit_group', 'read'], AMD64);
    assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(profile.defaultErrnoRet, EPERM);
    assert.deepEqual(allowRule(profile), { names: ['exit_group', 'read', 'write'], action: 'SCMP_ACT_ALLOW' });
    assert.equal(profile.syscalls.filter((rule) => rule.action === 'SCMP_ACT_ALLOW').length, 1);
  });

  it('is deterministic whatever the input order', () => {
    const names = ['openat', 'close', 'mmap', 'brk', 'execve'];
    assert.equal(JSON.stringify(dockerProfile(names, AMD64)), JSON.stringify(dockerProfile([...names].reverse(), AMD64)));
  });

  const architectures: [string, Platform, string[]][] = [
    ['linux/amd64 lists x86 and x32 as Docker does', AMD64, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']],
    ['linux/arm64 lists arm', ARM64, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }, ['SCMP_ARCH_ARM']],
    ['linux/386', { os: 'linux', architecture: '386' }, ['SCMP_ARCH_X86']],
    ['linux/riscv64', { os: 'linux', architecture: 'riscv64' }, ['SCMP_ARCH_RISCV64']],
  ];
  for (const [name, platform, expected] of architectures) {
    it(`architectures: ${name}`, () => assert.deepEqual(dockerProfile(['read'], platform).architectures, expected));
  }

  it('refuses platforms without a syscall table', () => {
    assert.throws(() => dockerProfile(['read'], { os: 'linux', architecture: 's390x' }), UnsupportedError);
    assert.throws(() => dockerProfile(['read'], { os: 'windows', architecture: 'amd64' }), UnsupportedError);
  });

  it("drops and reports names that are not in the platform's table", () => {
    const amd = buildDockerProfile(['read', 'not_a_syscall', 'arch_prctl', 'syscall_999', 'clock_gettime64'], AMD64);
    assert.deepEqual(amd.dropped, ['clock_gettime64', 'not_a_syscall', 'syscall_999']);
    assert.deepEqual(allowRule(amd.profile)?.names, ['arch_prctl', 'read']);
    const arm = buildDockerProfile(['read', 'arch_prctl', 'open'], ARM64);
    assert.deepEqual(arm.dropped, ['arch_prctl', 'open'], 'aarch64 has neither arch_prctl nor open');
    assert.deepEqual(allowRule(arm.profile)?.names, ['read']);
  });

  it('returns probed syscalls that are not allowed with ENOSYS, not EPERM', () => {
    const { profile, enosys } = buildDockerProfile(['read', 'statx'], AMD64);
    const rule = enosysRule(profile);
    assert.ok(rule);
    assert.equal(rule.errnoRet, ENOSYS);
    assert.deepEqual(rule.names, enosys);
    for (const name of ['clone3', 'faccessat2', 'close_range', 'openat2', 'fchmodat2', 'getrandom']) assert.ok(enosys.includes(name), name);
    assert.ok(!enosys.includes('statx'), 'an allowed name never gets the ENOSYS rule');
    assert.ok(!enosys.includes('rseq'), 'glibc ignores any error of rseq');
    assert.ok(!enosys.includes('clock_gettime64'), 'no 32-bit names on x86_64');
    assert.deepEqual(enosys, [...enosys].sort());
  });

  it('adds the 64-bit-time probes on 32-bit ABIs', () => {
    const { enosys } = buildDockerProfile(['read', 'clock_gettime'], { os: 'linux', architecture: 'arm' });
    for (const name of ['clock_gettime64', 'futex_time64', 'ppoll_time64', 'timerfd_settime64']) assert.ok(enosys.includes(name), name);
  });

  it('writes no ENOSYS rule when every probed syscall is allowed', () => {
    const all = ['clone3', 'close_range', 'faccessat2', 'fchmodat2', 'getrandom', 'openat2', 'statx', 'read'];
    assert.equal(enosysRule(dockerProfile(all, AMD64)), undefined);
  });

  it("errno 'ENOSYS' lists every other table name in an explicit ENOSYS rule (Docker 20.10 drops defaultErrnoRet)", () => {
    const { profile, enosys } = buildDockerProfile(['read', 'write'], AMD64, { errno: 'ENOSYS' });
    assert.equal(profile.defaultErrnoRet, ENOSYS);
    const table = new Set(syscallTable('x86_64').values());
    assert.equal(enosys.length, table.size - 2);
    assert.ok(!enosys.includes('read') && enosys.includes('clone3') && enosys.includes('ptrace'));
  });
});

describe('DEFAULT_PROFILE_SYSCALLS', () => {
  it("is Docker's unconditional list for the arch", () => {
    const amd = DEFAULT_PROFILE_SYSCALLS(AMD64);
    assert.equal(amd.length, 302, '300 of the main rule + arch_prctl + modify_ldt');
    assert.deepEqual(amd, [...new Set(amd)].sort());
    for (const name of ['read', 'execve', 'arch_prctl', 'modify_ldt', 'faccessat2']) assert.ok(amd.includes(name), name);
    for (const name of ['clone', 'clone3', 'socket', 'personality', 'ptrace', 'mount', 'bpf']) assert.ok(!amd.includes(name), `${name} is conditional`);
    const table = new Set(syscallTable('x86_64').values());
    assert.ok(amd.every((name) => table.has(name)));
    const arm = DEFAULT_PROFILE_SYSCALLS(ARM64);
    assert.ok(!arm.includes('arch_prctl') && !arm.includes('open') && arm.includes('openat'));
  });

  it("as a fallback, adds what Docker allows for some arguments, below some capabilities or from kernel 4.8", () => {
    const fallback = DOCKER_DEFAULT_FALLBACK_SYSCALLS(AMD64);
    const strict = new Set(DEFAULT_PROFILE_SYSCALLS(AMD64));
    assert.ok([...strict].every((name) => fallback.includes(name)));
    assert.deepEqual(fallback.filter((name) => !strict.has(name)), ['clone', 'personality', 'process_vm_readv', 'process_vm_writev', 'ptrace', 'socket']);
    for (const name of ['clone3', 'mount', 'bpf', 'unshare']) assert.ok(!fallback.includes(name), `${name} needs a capability or is refused`);
  });
});

describe('kubernetesProfile', () => {
  const profile = dockerProfile(['read', 'write', 'exit_group'], AMD64);

  it('writes a SeccompProfile that parses and validates', () => {
    const text = kubernetesProfile(profile, 'web-frontend', 'apps');
    const doc = parse(text) as Record<string, any>;
    assert.deepEqual(validateSeccompProfileCrd(doc), []);
    assert.equal(doc.apiVersion, 'security-profiles-operator.x-k8s.io/v1beta1');
    assert.equal(doc.kind, 'SeccompProfile');
    assert.deepEqual(doc.metadata, { name: 'web-frontend', namespace: 'apps' });
    assert.equal(doc.spec.defaultAction, 'SCMP_ACT_ERRNO');
    assert.deepEqual(doc.spec.architectures, profile.architectures);
    assert.deepEqual(doc.spec.syscalls[0], { action: 'SCMP_ACT_ALLOW', names: ['exit_group', 'read', 'write'] });
    assert.equal(doc.spec.syscalls[1].errnoRet, ENOSYS);
    assert.equal(doc.spec.defaultErrnoRet, undefined, 'not in the CRD');
    assert.ok(!('namespace' in (parse(kubernetesProfile(profile, 'x')) as { metadata: object }).metadata));
  });

  it('refuses names the API server would refuse', () => {
    assert.throws(() => kubernetesProfile(profile, 'Not_A_Name'), UnsupportedError);
  });

  it('refuses a non-EPERM default that no rule carries, accepts the explicit ENOSYS profile', () => {
    assert.throws(() => kubernetesProfile({ ...profile, defaultErrnoRet: ENOSYS }, 'x'), UnsupportedError);
    const doc = parse(kubernetesProfile(dockerProfile(['read'], AMD64, { errno: 'ENOSYS' }), 'x'));
    assert.deepEqual(validateSeccompProfileCrd(doc), []);
  });

  const valid = () => parse(kubernetesProfile(profile, 'ok', 'default')) as Record<string, any>;
  const broken: [string, (doc: Record<string, any>) => void, RegExp][] = [
    ['wrong kind', (doc) => (doc.kind = 'Seccomp'), /kind/],
    ['wrong apiVersion', (doc) => (doc.apiVersion = 'security-profiles-operator.x-k8s.io/v1alpha1'), /apiVersion/],
    ['no metadata.name', (doc) => delete doc.metadata.name, /metadata\.name/],
    ['no spec', (doc) => delete doc.spec, /spec is required/],
    ['no defaultAction', (doc) => delete doc.spec.defaultAction, /defaultAction is required/],
    ['action outside the enum', (doc) => (doc.spec.syscalls[0].action = 'ALLOW'), /syscalls\[0\]\.action/],
    ['architecture outside the enum', (doc) => (doc.spec.architectures = ['x86_64']), /architectures\[0\]/],
    ['names missing', (doc) => delete doc.spec.syscalls[0].names, /names is required/],
    ['names not strings', (doc) => (doc.spec.syscalls[0].names = [1, 2]), /names must be an array of strings/],
    ['errnoRet negative', (doc) => (doc.spec.syscalls[1].errnoRet = -1), /errnoRet/],
    ['seven args', (doc) => (doc.spec.syscalls[0].args = Array.from({ length: 7 }, (_, index) => ({ index, op: 'SCMP_CMP_EQ' }))), /at most 6/],
    ['arg op outside the enum', (doc) => (doc.spec.syscalls[0].args = [{ index: 0, op: 'EQ' }]), /args\[0\]\.op/],
    ['a field the API server prunes', (doc) => (doc.spec.defaultErrnoRet = 38), /defaultErrnoRet is not in the CRD schema/],
    ['flag outside the enum', (doc) => (doc.spec.flags = ['TSYNC']), /flags\[0\]/],
  ];
  for (const [name, mutate, expected] of broken) {
    it(`validation fails: ${name}`, () => {
      const doc = valid();
      mutate(doc);
      const problems = validateSeccompProfileCrd(doc);
      assert.ok(problems.some((problem) => expected.test(problem)), `${expected} not in ${JSON.stringify(problems)}`);
    });
  }
  it('validation fails: not an object', () => assert.deepEqual(validateSeccompProfileCrd('spec: {}'), ['document is not an object']));
});

describe('demuxDockerLogs', () => {
  it('joins the payloads of stdout and stderr frames in order', () => {
    const frame = (stream: number, text: string) => {
      const payload = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(payload.length, 4);
      return Buffer.concat([header, payload]);
    };
    assert.equal(demuxDockerLogs(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'more')])), 'out\nerr\nmore');
    assert.equal(demuxDockerLogs(Buffer.alloc(0)), '');
  });
});

// ---------------------------------------------------------------- integration with the real dockerd

/** Syscall names strace sees for `argv` on this host (all threads, all children). */
async function straceNames(argv: string[], dir: string): Promise<string[]> {
  const out = path.join(dir, `strace-${path.basename(argv[0]!)}.txt`);
  await run('strace', ['-f', '-qq', '-o', out, ...argv]);
  const names = new Set<string>();
  for (const line of (await fs.readFile(out, 'utf8')).split('\n')) {
    const match = /^(?:\d+\s+)?(?:<\.\.\. )?([a-z0-9_]+)\(/.exec(line);
    if (match) names.add(match[1]!);
  }
  return [...names].sort();
}

const runtimeNames = () => RUNTIME_SYSCALLS.map((syscall) => syscall.name);

describe('verifyImage with the real Docker daemon', { timeout: 300_000 }, () => {
  let work: string;
  let trueSyscalls: string[];

  before(async () => {
    await new Docker().ping().catch((err: unknown) => {
      throw new Error(`Docker daemon not reachable; run infra/setup/test-env.sh first (${String(err)})`);
    });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-policy-'));
    trueSyscalls = await straceNames(['/bin/true'], work);
  });

  after(async () => {
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('knows the runtime syscalls it measured', () => {
    assert.ok(RUNTIME_SYSCALLS.length > 0, 'coordinator/plan/runtime-syscalls.ts is empty');
    for (const { name, reason } of RUNTIME_SYSCALLS) {
      assert.ok(syscallTable('x86_64').size > 0 && [...syscallTable('x86_64').values()].includes(name), name);
      assert.ok(reason.length > 10, `${name} has a reason`);
    }
  });

  it('(a) /bin/true passes under strace(/bin/true) + the runtime syscalls', async () => {
    const profile = dockerProfile([...trueSyscalls, ...runtimeNames()], AMD64);
    const result = await verifyImage(BASE_IMAGE, profile, { cmd: ['/bin/true'], timeoutMs: 60_000 });
    assert.equal(result.passed, true, `${result.reason}\n${result.logs}`);
    assert.equal(result.exitCode, 0);
    // The tight profile is much smaller than Docker's default.
    assert.ok(allowRule(profile)!.names.length < DEFAULT_PROFILE_SYSCALLS(AMD64).length / 5);
  });

  it('auto mode: a command that exits 0 passes as a command, one that keeps running as a service, one that fails fails', async () => {
    const profile = dockerProfile(DEFAULT_PROFILE_SYSCALLS(AMD64), AMD64);
    const command = await verifyImage(BASE_IMAGE, profile, { cmd: ['/bin/true'], mode: 'auto', timeoutMs: 60_000 });
    assert.equal(command.passed, true, `${command.reason}\n${command.logs}`);
    assert.match(command.reason ?? '', /judged as a command/);
    const service = await verifyImage(BASE_IMAGE, profile, { cmd: ['/bin/sleep', '30'], mode: 'auto', settleMs: 1_000, timeoutMs: 60_000 });
    assert.equal(service.passed, true, `${service.reason}\n${service.logs}`);
    assert.match(service.reason ?? '', /running after 1000 ms/);
    const failing = await verifyImage(BASE_IMAGE, profile, { cmd: ['/bin/false'], mode: 'auto', timeoutMs: 60_000 });
    assert.equal(failing.passed, false);
    assert.equal(failing.exitCode, 1);
  });

  it('verify --json prints the verdict as JSON and keeps the exit status', async () => {
    const cli = (profileFile: string) =>
      run(process.execPath, ['--import', 'tsx', 'test/helpers/cli.ts', 'verify', APP_IMAGE, '--profile', profileFile, '--json', '--timeout', '60']).then(
        ({ stdout }) => ({ code: 0, stdout }),
        (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
      );
    const good = path.join(work, 'verify-default.json');
    await fs.writeFile(good, JSON.stringify(dockerProfile(DEFAULT_PROFILE_SYSCALLS(AMD64), AMD64)));
    const passed = await cli(good);
    const verdict = JSON.parse(passed.stdout) as { image: string; profile: string; mode: string; passed: boolean; reason?: string; logs: string };
    assert.equal(passed.code, 0);
    assert.deepEqual([verdict.image, verdict.profile, verdict.mode, verdict.passed], [APP_IMAGE, good, 'auto', true]);
    assert.match(verdict.reason ?? '', /running after/);
    const bad = path.join(work, 'verify-no-execve.json');
    await fs.writeFile(bad, JSON.stringify(dockerProfile([...trueSyscalls, ...runtimeNames()].filter((name) => name !== 'execve'), AMD64)));
    const failed = await cli(bad);
    assert.equal(failed.code, 1);
    const refusal = JSON.parse(failed.stdout) as { passed: boolean; reason?: string; logs: string };
    assert.equal(refusal.passed, false);
    assert.match(`${refusal.reason} ${refusal.logs}`, /operation not permitted/);
  });

  it('(b) fails without execve', async () => {
    const names = [...trueSyscalls, ...runtimeNames()].filter((name) => name !== 'execve');
    const result = await verifyImage(BASE_IMAGE, dockerProfile(names, AMD64), { cmd: ['/bin/true'] });
    assert.equal(result.passed, false);
    assert.match(`${result.reason} ${result.logs}`, /operation not permitted/);
  });

  it('(b) fails without a syscall runc needs after the filter (capset)', async () => {
    const names = [...trueSyscalls, ...runtimeNames()].filter((name) => name !== 'capset');
    const result = await verifyImage(BASE_IMAGE, dockerProfile(names, AMD64), { cmd: ['/bin/true'] });
    assert.equal(result.passed, false);
    assert.match(result.reason ?? '', /did not start: .*unable to apply caps: operation not permitted/);
  });

  it('(b) fails when the program itself is denied a syscall, with its exit code', async () => {
    const names = [...trueSyscalls, ...runtimeNames()].filter((name) => name !== 'mmap');
    const result = await verifyImage(BASE_IMAGE, dockerProfile(names, AMD64), { cmd: ['/bin/true'] });
    assert.equal(result.passed, false);
    assert.notEqual(result.exitCode, 0);
  });

  it('(c) a service passes when a smoke test in a sidecar (outside the tested profile) exits 0', async () => {
    // The app image runs `docker-entrypoint.sh sleep infinity`. The tested profile is Docker's
    // unconditional list without `uname`: the sidecar's `uname` works only because the sidecar runs
    // under Docker's default profile, not the tested one; it shares the PID namespace to see PID 1.
    const names = DEFAULT_PROFILE_SYSCALLS(AMD64).filter((name) => name !== 'uname');
    const result = await verifyImage(APP_IMAGE, dockerProfile([...names, ...runtimeNames()], AMD64), {
      smoke: ['sh', '-c', 'uname -s && grep -E "^(Name|Seccomp):" /proc/1/status'],
      smokeSharesPid: true,
      settleMs: 2_000,
    });
    assert.equal(result.passed, true, `${result.reason}\n${result.smoke?.output}`);
    assert.equal(result.smoke?.exitCode, 0);
    assert.match(result.smoke!.output, /^Linux$/m);
    assert.match(result.smoke!.output, /^Name:\s+sleep$/m);
    assert.match(result.smoke!.output, /^Seccomp:\s+2$/m, 'PID 1 runs under a filter');
  });

  it('(c) a failing smoke test fails the service, and a dying service is caught', async () => {
    const profile = dockerProfile([...DEFAULT_PROFILE_SYSCALLS(AMD64), ...runtimeNames()], AMD64);
    const smoke = await verifyImage(APP_IMAGE, profile, { smoke: ['sh', '-c', 'echo nope; exit 3'], settleMs: 1_000 });
    assert.equal(smoke.passed, false);
    assert.deepEqual(smoke.smoke, { exitCode: 3, output: 'nope\n' });
    const died = await verifyImage(APP_IMAGE, profile, { cmd: ['sh', '-c', 'exit 4'], mode: 'service', settleMs: 2_000 });
    assert.equal(died.passed, false);
    assert.equal(died.exitCode, 4);
  });

  it('times out a one-shot container that does not exit', async () => {
    const profile = dockerProfile([...DEFAULT_PROFILE_SYSCALLS(AMD64), ...runtimeNames()], AMD64);
    const started = Date.now();
    const result = await verifyImage(APP_IMAGE, profile, { timeoutMs: 3_000 });
    assert.equal(result.passed, false);
    assert.match(result.reason ?? '', /still running after 3000 ms/);
    assert.ok(Date.now() - started < 30_000);
  });

  it('the ENOSYS rule keeps glibc threads working without clone3 (moby#42680)', async (t) => {
    const gcc = await run('gcc', ['--version']).then(
      () => true,
      () => false,
    );
    if (!gcc) return t.skip('gcc not installed');
    const source = path.join(work, 'thread.c');
    const binary = path.join(work, 'thread');
    await fs.writeFile(
      source,
      '#include <pthread.h>\n#include <stdio.h>\nstatic void *f(void *a) { return a; }\n' +
        'int main(void) { pthread_t t; int r = pthread_create(&t, 0, f, 0); if (r) { printf("pthread_create: %d\\n", r); return 1; }\n' +
        '  pthread_join(t, 0); puts("thread ok"); return 0; }\n',
    );
    await run('gcc', ['-static', '-O2', '-pthread', '-o', binary, source]);
    // What the program needs on this host, without clone3: glibc must fall back to clone.
    const names = [...(await straceNames([binary], work)), 'clone', ...runtimeNames()].filter((name) => name !== 'clone3');
    const options = { entrypoint: ['/thread'], binds: [`${binary}:/thread:ro`] };
    const withRule = dockerProfile(names, AMD64);
    assert.ok(enosysRule(withRule)?.names.includes('clone3'));
    const passed = await verifyImage(BASE_IMAGE, withRule, options);
    assert.equal(passed.passed, true, `${passed.reason}\n${passed.logs}`);
    assert.match(passed.logs, /thread ok/);
    // The same profile without the ENOSYS rule: clone3 gets EPERM (runc's own ENOSYS for numbers above
    // the highest named one does not reach it: faccessat2, 439, is a runtime syscall) and glibc gives up.
    const withoutRule: DockerSeccompProfile = { ...withRule, syscalls: withRule.syscalls.filter((rule) => rule.action === 'SCMP_ACT_ALLOW') };
    const failed = await verifyImage(BASE_IMAGE, withoutRule, options);
    assert.equal(failed.passed, false);
    assert.match(failed.logs, /pthread_create: 1\b/, 'EPERM');
  });

  it('refuses a profile Docker or runc cannot read as bad input, not as a verdict', async () => {
    const good = dockerProfile(['read'], AMD64);
    const undecodable = { ...good, architectures: 'SCMP_ARCH_X86_64' } as unknown as DockerSeccompProfile;
    const badAction = { ...good, syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOPE' }] } as unknown as DockerSeccompProfile;
    for (const profile of [undecodable, badAction]) {
      await assert.rejects(verifyImage(BASE_IMAGE, profile, { cmd: ['/bin/true'] }), (err: Error) => err.name === 'InvalidInputError');
    }
  });

  it('leaves no container behind', async () => {
    const left = await new Docker().listContainers({ all: true, filters: { label: ['dockergate.verify'] } });
    assert.deepEqual(left.map((container) => container.Id), []);
  });
});
