/**
 * Every failure of the command line is one line `dockergate: <kind>: <what>` on stderr, naming the
 * file, reference or flag at fault, with exit code 1 (2 for usage errors), and nothing half-done on
 * stdout. One row per bad input, across every command: references, files, profiles, flags. The
 * command runs as a process from sources (test/helpers/cli.ts), against this machine's real
 * services where a row needs one (the Docker daemon, the loopback registry of the test setup).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pLimit from 'p-limit';

interface Row {
  /** What the row feeds in. */
  readonly name: string;
  /** Arguments after `dockergate`; `$T` is the row's scratch directory. */
  readonly args: readonly string[];
  readonly kind: string;
  /** Text the message must contain (the file, reference or flag it is about); `$T` as in args. */
  readonly names: string;
  readonly exit?: number;
  /** Environment replacing the cluster settings (rows about a missing setting). */
  readonly env?: NodeJS.ProcessEnv;
  /** Whether stdout may carry results of the inputs that did work (analyze of several files). */
  readonly stdoutAllowed?: boolean;
}

const USAGE = 2;

const ROWS: readonly Row[] = [
  // References
  { name: 'a reference without a transport', args: ['inspect', 'bogus:ref'], kind: 'invalid-input', names: 'bogus:ref' },
  { name: 'docker:// with nothing after it', args: ['inspect', 'docker://'], kind: 'invalid-input', names: 'docker://' },
  { name: 'an invalid repository name', args: ['inspect', 'docker://127.0.0.1:5000/Upper/Case:1'], kind: 'invalid-input', names: 'Upper/Case' },
  { name: 'an invalid tag', args: ['inspect', 'docker://127.0.0.1:5000/app:-bad'], kind: 'invalid-input', names: '-bad' },
  { name: 'a digest that is not sha256:<64 hex>', args: ['inspect', 'docker://127.0.0.1:5000/app@sha256:abc'], kind: 'invalid-input', names: 'sha256' },
  { name: 'a repository the loopback registry does not have', args: ['inspect', 'docker://127.0.0.1:5000/dockergate-test/nosuch:1'], kind: 'not-found', names: 'dockergate-test/nosuch' },
  { name: 'a registry nobody listens on', args: ['inspect', 'docker://127.0.0.1:59999/app:1'], kind: 'unavailable', names: '127.0.0.1:59999' },
  { name: 'an image the Docker daemon does not have', args: ['inspect', 'docker-daemon:dockergate-test/nosuch:1'], kind: 'not-found', names: 'dockergate-test/nosuch:1' },
  { name: 'a missing OCI layout', args: ['inspect', 'oci:$T/nosuch'], kind: 'not-found', names: '$T/nosuch' },
  { name: 'an OCI layout without index.json', args: ['inspect', 'oci:$T/empty-dir'], kind: 'not-found', names: 'index.json' },
  { name: 'a missing docker save archive', args: ['scan', 'docker-archive:$T/nosuch.tar', '-o', '$T/p.json'], kind: 'not-found', names: '$T/nosuch.tar' },
  { name: 'a docker save archive that is a text file', args: ['inspect', 'docker-archive:$T/six'], kind: 'not-found', names: 'manifest.json' },
  { name: 'a missing dir: root', args: ['inspect', 'dir:$T/nosuch'], kind: 'not-found', names: '$T/nosuch' },
  // Files named by flags
  { name: 'an -o path in a missing directory (checked before the scan)', args: ['scan', 'dir:$T/root', '-o', '$T/nosuch/p.json'], kind: 'not-found', names: 'output $T/nosuch/p.json' },
  { name: 'an -o path that is a directory', args: ['scan', 'dir:$T/root', '-o', '$T/empty-dir'], kind: 'invalid-input', names: 'output $T/empty-dir' },
  { name: 'a --report path in a missing directory', args: ['scan', 'dir:$T/root', '-o', '$T/p.json', '--report', '$T/nosuch/r.json'], kind: 'not-found', names: 'report $T/nosuch/r.json' },
  { name: 'a --k8s path under a file', args: ['scan', 'dir:$T/root', '-o', '$T/p.json', '--k8s', '$T/six/p.yaml'], kind: 'not-found', names: 'Kubernetes profile $T/six/p.yaml' },
  { name: 'a missing verify profile', args: ['verify', 'dockergate-test/app:1', '--profile', '$T/nosuch.json'], kind: 'not-found', names: 'profile $T/nosuch.json' },
  { name: 'a verify profile that is not JSON', args: ['verify', 'dockergate-test/app:1', '--profile', '$T/broken.json'], kind: 'invalid-input', names: 'profile $T/broken.json is not JSON' },
  { name: 'a verify profile that is JSON but no seccomp profile', args: ['verify', 'dockergate-test/app:1', '--profile', '$T/other.json'], kind: 'invalid-input', names: 'not a Docker seccomp profile' },
  { name: 'a verify profile that is a directory', args: ['verify', 'dockergate-test/app:1', '--profile', '$T/empty-dir'], kind: 'invalid-input', names: 'profile $T/empty-dir is a directory' },
  { name: 'verify of an image the daemon does not have', args: ['verify', 'dockergate-test/nosuch:1', '--profile', '$T/good.json'], kind: 'not-found', names: 'dockergate-test/nosuch:1' },
  { name: 'a missing serve token file', args: ['serve', '--token-file', '$T/nosuch-token', '--cache-dir', '$T/cache'], kind: 'not-found', names: 'token file $T/nosuch-token' },
  // analyze
  { name: 'analyze of a missing file', args: ['analyze', '$T/nosuch'], kind: 'not-found', names: '$T/nosuch' },
  { name: 'analyze of a 6-byte text file', args: ['analyze', '$T/six'], kind: 'invalid-input', names: '$T/six: ELF: not an ELF file' },
  { name: 'analyze of a truncated ELF file', args: ['analyze', '$T/truncated'], kind: 'invalid-input', names: '$T/truncated' },
  { name: 'analyze of a directory', args: ['analyze', '$T/empty-dir'], kind: 'invalid-input', names: '$T/empty-dir is a directory' },
  { name: 'analyze --export of an export nobody has', args: ['analyze', '/bin/true', '--export', 'nosuch_export'], kind: 'not-found', names: '/bin/true has no export named nosuch_export', stdoutAllowed: true },
  { name: 'analyze of a good and a bad file: the bad one fails the command', args: ['analyze', '/bin/true', '$T/six'], kind: 'invalid-input', names: '$T/six', stdoutAllowed: true },
  // Usage: commands, options, flag values
  { name: 'an unknown command', args: ['frobnicate'], kind: 'usage', names: "unknown command 'frobnicate'", exit: USAGE },
  { name: 'a missing argument', args: ['scan'], kind: 'usage', names: "missing required argument 'ref'", exit: USAGE },
  { name: 'an unknown option', args: ['scan', '--bogus', 'dir:$T/root'], kind: 'usage', names: "unknown option '--bogus'", exit: USAGE },
  { name: 'a --platform that is not os/arch', args: ['inspect', '--platform', 'amd64', 'dir:$T/root'], kind: 'usage', names: '--platform', exit: USAGE },
  { name: 'an --entrypoint that is not JSON', args: ['inspect', 'dir:$T/root', '--entrypoint', '/bin/sh -c x'], kind: 'usage', names: '--entrypoint must be a JSON array', exit: USAGE },
  { name: 'an --entrypoint that is a JSON object', args: ['inspect', 'dir:$T/root', '--entrypoint', '{"a":1}'], kind: 'usage', names: '--entrypoint must be a JSON array', exit: USAGE },
  { name: 'an --errno that is not offered', args: ['scan', 'dir:$T/root', '--errno', 'EFOO'], kind: 'usage', names: 'EFOO', exit: USAGE },
  { name: 'an analyser that does not exist', args: ['analyze', '--analyser', 'ghidra', '/bin/true'], kind: 'usage', names: 'ghidra', exit: USAGE },
  { name: 'explain of a name that is no syscall', args: ['explain', 'dir:$T/root', 'notasyscall'], kind: 'invalid-input', names: '"notasyscall" is not a syscall of linux/amd64' },
  { name: 'kb syscall of a name that is no syscall', args: ['kb', 'syscall', 'notasyscall', '--cache-dir', '$T/cache'], kind: 'invalid-input', names: '"notasyscall" is not a syscall of any supported platform' },
  { name: 'verify with a bridge network', args: ['verify', 'dockergate-test/app:1', '--profile', '$T/good.json', '--network', 'bridge'], kind: 'usage', names: '--network', exit: USAGE },
  { name: 'verify with a timeout that is no number', args: ['verify', 'dockergate-test/app:1', '--profile', '$T/good.json', '--timeout', 'soon'], kind: 'usage', names: '--timeout', exit: USAGE },
  { name: 'crawl of a URL instead of a registry host', args: ['crawl', 'http://127.0.0.1:5000', '--cache-dir', '$T/cache'], kind: 'usage', names: 'expected a registry host', exit: USAGE },
  { name: 'crawl with --concurrency 0', args: ['crawl', '127.0.0.1:5000', '--concurrency', '0', '--cache-dir', '$T/cache'], kind: 'usage', names: '--concurrency', exit: USAGE },
  { name: 'worker with an unknown role', args: ['worker', '--roles', 'extract,cook'], kind: 'usage', names: 'cook', exit: USAGE },
  { name: 'serve on a port past 65535', args: ['serve', '--port', '70000', '--cache-dir', '$T/cache'], kind: 'usage', names: '--port', exit: USAGE },
  { name: 'serve beyond loopback without a token', args: ['serve', '--host', '0.0.0.0', '--cache-dir', '$T/cache'], kind: 'usage', names: 'bearer token', exit: USAGE },
  { name: 'fetch-profile of a source that is not a registry', args: ['fetch-profile', 'dir:$T/root'], kind: 'usage', names: 'needs a registry image', exit: USAGE },
  // Settings
  { name: 'scan --cluster without DATABASE_URL', args: ['scan', '--cluster', 'dir:$T/root', '-o', '$T/p.json'], kind: 'invalid-input', names: 'DATABASE_URL', env: { NATS_URL: '127.0.0.1:4222' } },
  { name: 'a coordinator without NATS_URL', args: ['coordinator'], kind: 'invalid-input', names: 'NATS_URL', env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres' } },
];

const CLUSTER_SETTINGS = ['NATS_URL', 'DATABASE_URL', 'S3_BUCKET', 'S3_ENDPOINT', 'DOCKERGATE_API_TOKEN'];

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'test/helpers/cli.ts', ...args], { env, timeout: 120_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('errors of the command line', () => {
  let scratch = '';
  const expand = (text: string): string => text.replaceAll('$T', scratch);

  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-cli-errors-'));
    await fs.mkdir(path.join(scratch, 'empty-dir'));
    await fs.mkdir(path.join(scratch, 'root', 'bin'), { recursive: true });
    await fs.copyFile('/bin/true', path.join(scratch, 'root', 'bin', 'true'));
    await fs.writeFile(path.join(scratch, 'six'), 'hello\n');
    await fs.writeFile(path.join(scratch, 'truncated'), (await fs.readFile('/bin/true')).subarray(0, 100));
    await fs.writeFile(path.join(scratch, 'broken.json'), '{"defaultAction": ');
    await fs.writeFile(path.join(scratch, 'other.json'), '{"name": "not a profile"}\n');
    await fs.writeFile(path.join(scratch, 'good.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] }));
  });

  after(async () => {
    await fs.rm(scratch, { recursive: true, force: true });
  });

  it(`has at least 30 rows (${ROWS.length})`, () => {
    assert.ok(ROWS.length >= 30);
  });

  it('prints one line naming the kind and the input, and exits 1 (usage: 2)', { timeout: 600_000 }, async () => {
    const base: NodeJS.ProcessEnv = { ...process.env, DOCKERGATE_CACHE_DIR: path.join(scratch, 'cache') };
    for (const name of CLUSTER_SETTINGS) delete base[name];
    const limit = pLimit(4);
    const outcomes = await Promise.all(ROWS.map((row) => limit(() => runCli(row.args.map(expand), { ...base, ...row.env }))));
    const wrong: string[] = [];
    ROWS.forEach((row, i) => {
      const { code, stdout, stderr } = outcomes[i]!;
      // Progress lines (`dockergate <phase>: …`, stderr is not a terminal here) are not failures.
      const lines = stderr.split('\n').filter((line) => line !== '' && !/^dockergate [a-z]+: /.test(line));
      const expected = `dockergate: ${row.kind}: `;
      const problems = [
        ...(code !== (row.exit ?? 1) ? [`exit ${code}, expected ${row.exit ?? 1}`] : []),
        ...(lines.length !== 1 ? [`${lines.length} lines on stderr`] : []),
        ...(!lines[0]?.startsWith(expected) ? [`does not start with ${JSON.stringify(expected)}`] : []),
        ...(!lines[0]?.includes(expand(row.names)) ? [`does not name ${JSON.stringify(expand(row.names))}`] : []),
        ...(!row.stdoutAllowed && stdout !== '' ? [`stdout: ${JSON.stringify(stdout.slice(0, 200))}`] : []),
      ];
      if (problems.length > 0) wrong.push(`${row.name} (dockergate ${row.args.join(' ')}): ${problems.join('; ')}\n    stderr: ${stderr.slice(0, 400)}`);
    });
    assert.deepEqual(wrong, []);
  });
});
