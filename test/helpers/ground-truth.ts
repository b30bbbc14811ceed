/**
 * Dynamic ground truth for the static syscall analyser.
 *
 * Builds the small programs of test/fixtures/programs/ with several
 * toolchains, runs them under `strace -f` and reports which syscalls they
 * really made, plus the loader and shared libraries they load. The analyser's
 * tests require its static result to include every syscall seen here.
 *
 * Builds are cached by content hash (sources, toolchain, flags, compiler and
 * libc versions) under /var/cache/dockergate/fixtures/ (override with
 * DOCKERGATE_FIXTURE_CACHE), so reruns only copy a file.
 *
 * Needs, on the host: gcc, musl-tools (musl-gcc, /lib/ld-musl-x86_64.so.1),
 * golang-go, strace and a kernel that lets us ptrace our own children.
 *
 * The C fixtures are also built and traced inside other Debian roots (the
 * trixie chroot that infra/setup/test-env.sh builds: glibc 2.41, musl 1.2.5),
 * with that root's compiler, libcs, loader and strace, through chroot(8).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseStrace } from './strace.js';

const execFileP = promisify(execFile);

export type Toolchain = 'glibc-dynamic' | 'glibc-static' | 'musl-static' | 'musl-dynamic' | 'go';

/** A Debian root whose toolchain and libcs build and run fixtures: the host (`/`) or a chroot. */
export interface LibcRoot {
  /** Suite name, used in test names: `bookworm` (the host) or `trixie`. */
  readonly name: string;
  /** Absolute path of the root on the host; `/` is the host itself. */
  readonly path: string;
}

export const HOST_ROOT: LibcRoot = { name: 'bookworm', path: '/' };
/** Debian 13 (glibc 2.41, musl 1.2.5, gcc 14), built by infra/setup/test-env.sh step 7. */
export const TRIXIE_ROOT: LibcRoot = { name: 'trixie', path: '/var/cache/dockergate/rootfs/trixie' };

/** `command args` run inside `root` (through chroot unless it is the host). */
function inRoot(root: LibcRoot, command: string, args: readonly string[]): [string, string[]] {
  return root.path === '/' ? [command, [...args]] : ['chroot', [root.path, command, ...args]];
}

/** The path a process inside `root` sees for host path `file` (which must lie inside the root). */
export function pathInRoot(root: LibcRoot, file: string): string {
  if (root.path === '/') return file;
  const relative = path.relative(root.path, file);
  if (relative.startsWith('..') || path.isAbsolute(relative)) throw new Error(`${file} is outside the root ${root.path}`);
  return `/${relative}`;
}

/** The host path of `inside`, a path as processes in `root` see it. */
export function hostPath(root: LibcRoot, inside: string): string {
  return root.path === '/' ? inside : path.join(root.path, inside);
}

export const TOOLCHAINS: readonly Toolchain[] = ['glibc-dynamic', 'glibc-static', 'musl-dynamic', 'musl-static', 'go'];

/** Directory of the fixture sources. */
export const PROGRAMS_DIR = fileURLToPath(new URL('../fixtures/programs/', import.meta.url));

/** Names of the C fixtures (`<name>.c`) and of the Go fixture (directory `go/`). */
export const C_FIXTURES = ['hello', 'direct-syscall', 'function-pointers', 'threads', 'cancellable', 'spawn'] as const;
export const GO_FIXTURES = ['go'] as const;
export type FixtureName = (typeof C_FIXTURES)[number] | (typeof GO_FIXTURES)[number];

export interface FixtureEntry {
  readonly name: FixtureName;
  readonly toolchain: Toolchain;
  readonly root: LibcRoot;
}

const C_TOOLCHAINS = ['glibc-dynamic', 'glibc-static', 'musl-dynamic', 'musl-static'] as const;

/**
 * Every (fixture, toolchain, root) that builds and runs (exit 0, also under strace -f): on the
 * host (Debian 12: gcc 12, glibc 2.36, musl 1.2.3, Go 1.19) every C program with every C
 * toolchain and the Go program with `go`; in the trixie root (gcc 14, glibc 2.41, musl 1.2.5) every
 * C program with every C toolchain.
 */
export const FIXTURE_MATRIX: readonly FixtureEntry[] = [
  ...C_FIXTURES.flatMap((name) => C_TOOLCHAINS.map((toolchain) => ({ name, toolchain, root: HOST_ROOT }))),
  ...GO_FIXTURES.map((name) => ({ name, toolchain: 'go' as const, root: HOST_ROOT })),
  ...C_FIXTURES.flatMap((name) => C_TOOLCHAINS.map((toolchain) => ({ name, toolchain, root: TRIXIE_ROOT }))),
];

/** Fixture directories per root (inside the root, where its programs run), removed by `removeFixtureDirs`. */
export class FixtureDirs {
  private readonly dirs = new Map<LibcRoot, Promise<string>>();

  constructor(private readonly prefix: string) {}

  for(root: LibcRoot): Promise<string> {
    let dir = this.dirs.get(root);
    if (!dir) {
      dir = fs.mkdtemp(path.join(root === HOST_ROOT ? os.tmpdir() : hostPath(root, '/tmp'), this.prefix));
      this.dirs.set(root, dir);
    }
    return dir;
  }

  async remove(): Promise<void> {
    for (const dir of this.dirs.values()) await fs.rm(await dir, { recursive: true, force: true });
    this.dirs.clear();
  }
}

/** `name/toolchain` for the host, `name/toolchain@root` elsewhere: a test name per entry. */
export function fixtureLabel(entry: FixtureEntry): string {
  return `${entry.name}/${entry.toolchain}${entry.root === HOST_ROOT ? '' : `@${entry.root.name}`}`;
}

export const MUSL_LOADER = '/lib/ld-musl-x86_64.so.1';
export const CACHE_ROOT = '/var/cache/dockergate';
/** Bump to invalidate every cached build (e.g. when flags change meaning). */
const CACHE_FORMAT = 1;

function fixtureCacheDir(): string {
  return process.env.DOCKERGATE_FIXTURE_CACHE ?? path.join(CACHE_ROOT, 'fixtures');
}

function goCacheBase(): string {
  return process.env.DOCKERGATE_GO_CACHE ?? path.join(CACHE_ROOT, 'go-cache');
}

// ------------------------------------------------------------------ building

interface BuildPlan {
  /** Files (absolute paths) whose content defines the build. */
  readonly inputs: string[];
  /** Command and arguments, with OUT standing for the output path. */
  readonly command: string;
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
  /** Working directory: a fresh copy of the sources for Go, else undefined. */
  readonly copySourcesFrom?: string;
}

const OUT = '\0OUT\0';

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p, fsConstants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function listFilesRecursive(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFilesRecursive(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}

const toolIdentities = new Map<string, Promise<string>>();

/** Version strings of the tools a toolchain uses in a root (memoised), part of the cache key. */
function toolIdentity(toolchain: Toolchain, root: LibcRoot): Promise<string> {
  const key = `${toolchain}@${root.path}`;
  let identity = toolIdentities.get(key);
  if (identity === undefined) {
    identity = computeToolIdentity(toolchain, root);
    toolIdentities.set(key, identity);
  }
  return identity;
}

async function outputOf(root: LibcRoot, command: string, args: string[]): Promise<string> {
  // The musl loader prints its version on stderr and exits 1: take both.
  const [file, argv] = inRoot(root, command, args);
  return new Promise((resolve) => {
    execFile(file, argv, { encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve(`${stdout}${stderr}${error && !stdout && !stderr ? String(error) : ''}`.trim());
    });
  });
}

async function computeToolIdentity(toolchain: Toolchain, root: LibcRoot): Promise<string> {
  switch (toolchain) {
    case 'glibc-dynamic':
    case 'glibc-static':
      return [await outputOf(root, 'gcc', ['--version']), (await outputOf(root, 'ldd', ['--version'])).split('\n')[0]].join('\n');
    case 'musl-dynamic':
    case 'musl-static':
      return [await outputOf(root, 'gcc', ['--version']), await outputOf(root, MUSL_LOADER, [])].join('\n');
    case 'go':
      return outputOf(root, 'go', ['version']);
  }
}

async function planBuild(name: string, toolchain: Toolchain, workDir: string, root: LibcRoot): Promise<BuildPlan> {
  if (toolchain === 'go') {
    if (root !== HOST_ROOT) throw new Error(`fixture ${name}: Go fixtures build on the host only`);
    const dir = path.join(PROGRAMS_DIR, name);
    if (!(await exists(path.join(dir, 'go.mod')))) {
      throw new Error(`fixture ${name}: no Go module at ${dir} (toolchain go builds Go fixtures only)`);
    }
    const base = goCacheBase();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: workDir,
      GOCACHE: path.join(base, 'build'),
      GOPATH: path.join(base, 'gopath'),
      GOMODCACHE: path.join(base, 'gopath', 'pkg', 'mod'),
      GOFLAGS: '-mod=mod',
      GOPROXY: 'off',
      GOSUMDB: 'off',
      GOTOOLCHAIN: 'local',
      GOENV: 'off',
      GOTELEMETRY: 'off',
      GO111MODULE: 'on',
      CGO_ENABLED: '0',
      GOOS: 'linux',
      GOARCH: 'amd64',
    };
    return {
      inputs: await listFilesRecursive(dir),
      command: 'go',
      args: ['build', '-trimpath', '-o', OUT, '.'],
      env,
      copySourcesFrom: dir,
    };
  }
  const source = path.join(PROGRAMS_DIR, `${name}.c`);
  if (!(await exists(source))) {
    throw new Error(`fixture ${name}: no C source at ${source} (toolchain ${toolchain} builds C fixtures only)`);
  }
  const compiler = toolchain.startsWith('musl-') ? 'musl-gcc' : 'gcc';
  if (toolchain === 'musl-dynamic' && !(await exists(hostPath(root, MUSL_LOADER)))) {
    throw new Error(`musl-dynamic needs the musl loader ${MUSL_LOADER} in ${root.path} (apt-get install musl)`);
  }
  // The compiler inside a chroot sees only the root: the source is copied into the work dir there.
  const inside = path.join(workDir, `${name}.c`);
  await fs.copyFile(source, inside);
  const text = await fs.readFile(source, 'utf8');
  const args = ['-O2', '-Wall', '-Wextra'];
  if (toolchain.endsWith('-static')) args.push('-static');
  if (text.includes('<pthread.h>')) args.push('-pthread');
  args.push('-o', OUT, pathInRoot(root, inside));
  return { inputs: [source], command: compiler, args, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...process.env } };
}

function run(root: LibcRoot, command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<void> {
  const [file, argv] = inRoot(root, command, args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { ...options, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${file} ${argv.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      } else {
        resolve();
      }
    });
  });
}

/**
 * Builds fixture `name` (a `<name>.c` or a Go module directory `<name>/` in
 * test/fixtures/programs) with `toolchain` of `root` and copies the executable to
 * `outDir/<name>-<toolchain>`, whose absolute path is returned. Uses the
 * content-addressed build cache when possible. For a root other than the host, `outDir` must lie
 * inside it (the program runs there).
 */
export async function buildFixture(name: string, toolchain: Toolchain, outDir: string, root: LibcRoot = HOST_ROOT): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`bad fixture name ${JSON.stringify(name)}`);
  pathInRoot(root, path.resolve(outDir));
  const cacheDir = fixtureCacheDir();
  await fs.mkdir(cacheDir, { recursive: true });
  const scratch = root === HOST_ROOT ? cacheDir : hostPath(root, '/tmp');
  await fs.mkdir(scratch, { recursive: true });
  const workDir = await fs.mkdtemp(path.join(scratch, '.build-'));
  try {
    const plan = await planBuild(name, toolchain, workDir, root);
    const hash = createHash('sha256');
    hash.update(JSON.stringify({ format: CACHE_FORMAT, name, toolchain, command: plan.command, args: plan.args.map((arg) => (arg.startsWith(pathInRoot(root, workDir)) ? path.basename(arg) : arg)) }));
    hash.update(await toolIdentity(toolchain, root));
    for (const input of plan.inputs) {
      hash.update(`\0${path.relative(PROGRAMS_DIR, input)}\0`);
      hash.update(await fs.readFile(input));
    }
    const key = hash.digest('hex').slice(0, 32);
    const cached = path.join(cacheDir, key, name);

    if (!(await exists(cached))) {
      let cwd: string | undefined;
      if (plan.copySourcesFrom !== undefined) {
        cwd = path.join(workDir, 'src');
        await fs.cp(plan.copySourcesFrom, cwd, { recursive: true });
        await fs.mkdir(path.join(goCacheBase(), 'build'), { recursive: true });
      }
      const stage = path.join(workDir, 'out');
      await fs.mkdir(stage);
      const built = path.join(stage, name);
      await run(
        root,
        plan.command,
        plan.args.map((arg) => (arg === OUT ? pathInRoot(root, built) : arg)),
        cwd === undefined ? { env: plan.env } : { cwd, env: plan.env },
      );
      await fs.chmod(built, 0o755);
      // Publish atomically; a concurrent builder may have won the race.
      const publish = await fs.mkdtemp(path.join(cacheDir, '.publish-'));
      await fs.copyFile(built, path.join(publish, name));
      try {
        await fs.rename(publish, path.join(cacheDir, key));
      } catch (error) {
        await fs.rm(publish, { recursive: true, force: true });
        if (!(await exists(cached))) throw error;
      }
    }

    await fs.mkdir(outDir, { recursive: true });
    const target = path.resolve(outDir, `${name}-${toolchain}`);
    await fs.copyFile(cached, target);
    await fs.chmod(target, 0o755);
    return target;
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------- strace

export interface StraceOptions {
  readonly args?: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill strace and the program after this long (default 30 s). */
  readonly timeoutMs?: number;
  /** Run inside this root (its strace, loader and libcs); the executable must lie inside it. */
  readonly root?: LibcRoot;
}

export interface StraceResult {
  /** Every syscall name seen, in every process and thread, minus the initial execve. */
  readonly syscalls: Set<string>;
  /**
   * Syscalls made while running the traced executable's own image: its
   * threads and forked children up to (and including) any execve they make,
   * but not what a spawned program (e.g. /bin/true) does after its execve.
   */
  readonly ownSyscalls: Set<string>;
  /** Syscalls per executable image (execve path; the root is `executable` resolved). */
  readonly byImage: Map<string, Set<string>>;
  /** The first line of the trace: the execve that started the program (dropped from the sets). */
  readonly initialExecve: string | undefined;
  /** Trace lines that matched no known shape (expected empty). */
  readonly unparsed: string[];
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `executable` under `strace -f` and returns the set of syscall names it
 * made (kernel / libseccomp names, as strace prints them), in the program and
 * all its threads and child processes, except the initial execve of the
 * program itself. Rejects unless the program exits with code 0.
 */
export async function straceSyscalls(executable: string, args: string[] = []): Promise<Set<string>> {
  return (await straceRun(executable, { args })).syscalls;
}

/** Like straceSyscalls, with per-image attribution and the program's output. */
export async function straceRun(executable: string, options: StraceOptions = {}): Promise<StraceResult> {
  const root = options.root ?? HOST_ROOT;
  const exe = path.resolve(executable);
  const inside = pathInRoot(root, exe);
  const traceDir = await fs.mkdtemp(path.join(root === HOST_ROOT ? os.tmpdir() : hostPath(root, '/tmp'), 'dockergate-strace-'));
  const traceFile = path.join(traceDir, 'trace');
  try {
    const [command, args] = inRoot(root, 'strace', ['-f', '-qq', '-e', 'trace=all', '-o', pathInRoot(root, traceFile), '--', inside, ...(options.args ?? [])]);
    const { code, signal, stdout, stderr } = await runCapture(command, args, {
      cwd: options.cwd,
      env: options.env ?? { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...process.env },
      timeoutMs: options.timeoutMs ?? 30_000,
    });
    if (code !== 0) {
      const why = signal !== null ? `signal ${signal}` : `exit code ${code}`;
      throw new Error(`strace of ${exe} ended with ${why}\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`);
    }
    const text = await fs.readFile(traceFile, 'utf8');
    const parsed = parseStrace(text, inside);
    // The traced program is named by its host path; programs it ran keep their path in the root.
    const byImage = new Map([...parsed.byImage].map(([image, calls]) => [image === inside ? exe : image, calls] as const));
    return { ...parsed, byImage, stdout, stderr };
  } finally {
    await fs.rm(traceDir, { recursive: true, force: true });
  }
}

interface Captured {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runCapture(
  command: string,
  args: string[],
  options: { cwd: string | undefined; env: NodeJS.ProcessEnv | undefined; timeoutMs: number },
): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout kills the whole tree
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) reject(new Error(`${command} timed out after ${options.timeoutMs} ms\n${stderr.slice(-2000)}`));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------- ldd

/** PT_INTERP of an ELF file, or undefined for a static executable (or a non-ELF file). */
export async function elfInterpreter(file: string): Promise<string | undefined> {
  const handle = await fs.open(file, 'r');
  try {
    const header = Buffer.alloc(64);
    await handle.read(header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const is64 = header[4] === 2;
    const le = header[5] === 1;
    const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number): number => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const phoff = is64 ? u64(header, 0x20) : u32(header, 0x1c);
    const phentsize = u16(header, is64 ? 0x36 : 0x2a);
    const phnum = u16(header, is64 ? 0x38 : 0x2c);
    if (phentsize === 0 || phnum === 0) return undefined;
    const table = Buffer.alloc(phentsize * phnum);
    await handle.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const ph = table.subarray(i * phentsize);
      if (u32(ph, 0) !== 3 /* PT_INTERP */) continue;
      const offset = is64 ? u64(ph, 8) : u32(ph, 4);
      const size = is64 ? u64(ph, 32) : u32(ph, 16);
      const buf = Buffer.alloc(size);
      await handle.read(buf, 0, size, offset);
      return buf.toString('latin1').replace(/\0.*$/s, '');
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * The loader (PT_INTERP) and shared libraries `executable` loads in `root` (the host by default),
 * as absolute host paths resolved inside the root. glibc programs are listed with the root's
 * `ldd`, musl ones with its musl loader's `--list`; static executables have none. `libraries`
 * does not repeat the interpreter (for musl, libc.so *is* the loader).
 */
export async function lddClosure(executable: string, root: LibcRoot = HOST_ROOT): Promise<{ interpreter?: string; libraries: string[] }> {
  const exe = path.resolve(executable);
  const interpreter = await elfInterpreter(exe);
  if (interpreter === undefined) return { libraries: [] };

  const isMusl = path.basename(interpreter).startsWith('ld-musl');
  const [command, args] = isMusl ? inRoot(root, interpreter, ['--list', pathInRoot(root, exe)]) : inRoot(root, 'ldd', [pathInRoot(root, exe)]);
  const { stdout } = await execFileP(command, args, { encoding: 'utf8' });

  // Symbolic links are resolved as the root's processes see them (absolute targets stay inside).
  const realInRoot = async (file: string): Promise<string> => {
    if (root === HOST_ROOT) return fs.realpath(file).catch(() => file);
    const [readlink, readlinkArgs] = inRoot(root, 'readlink', ['-f', file]);
    const { stdout: resolved } = await execFileP(readlink, readlinkArgs, { encoding: 'utf8' });
    return hostPath(root, resolved.trim());
  };
  const interpreterReal = await realInRoot(interpreter);
  const seen = new Set<string>([interpreterReal]);
  const libraries: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (/=>\s*not found/.test(line)) throw new Error(`${exe}: missing library: ${line}`);
    // "name => /path (0x...)" or "/path (0x...)"; "linux-vdso.so.1 (0x...)" has no file.
    const arrow = /=>\s*(\S+)/.exec(line);
    const candidate = arrow?.[1] ?? line.split(/\s+/)[0] ?? '';
    if (!candidate.startsWith('/')) continue;
    const real = await realInRoot(candidate);
    if (seen.has(real)) continue;
    seen.add(real);
    libraries.push(root === HOST_ROOT ? candidate : real);
  }
  return { interpreter: root === HOST_ROOT ? interpreter : interpreterReal, libraries };
}
