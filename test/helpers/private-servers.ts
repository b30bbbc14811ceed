/**
 * Private servers for fault tests: a nats-server (JetStream, its own store directory) and a
 * PostgreSQL cluster (initdb in a temporary directory), each on a free loopback port, so a test may
 * stop and restart them without touching the machine's shared NATS (4222) or PostgreSQL (5432).
 * PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres` user.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const NATS_SERVER = process.env.DOCKERGATE_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';
const PG_BIN = process.env.DOCKERGATE_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A TCP port on 127.0.0.1 that nobody listened on a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface PrivateNats {
  /** `127.0.0.1:<port>`, the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM; SIGKILL when `kill`), keeping its store directory. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same port with the same store directory. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
  /** What the server wrote, for failure messages. */
  log(): string;
}

export async function startPrivateNats(): Promise<PrivateNats> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'dgtest-nats-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';
  const start = async (): Promise<void> => {
    const started = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', directory], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`private nats-server on ${port} not ready within 15 s:\n${output.slice(-2000)}`)), 15_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      started.stdout!.on('data', onData);
      started.stderr!.on('data', onData);
      started.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`private nats-server exited (${code ?? signal}):\n${output.slice(-2000)}`));
      });
    });
    output = '';
    await ready;
  };
  const stop = async (options: { kill?: boolean } = {}): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill(options.kill ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    url: `127.0.0.1:${port}`,
    port,
    stop,
    start,
    async close() {
      await stop();
      await fs.rm(directory, { recursive: true, force: true });
    },
    log: () => output,
  };
}

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  readonly adminUrl: string;
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<database>`. */
  urlOf(database: string): string;
  /** `pg_ctl stop -m fast`: open sessions are terminated, new ones refused. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'dgtest-pg-'));
  const data = path.join(root, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const pgRun = async (command: string, args: readonly string[]): Promise<void> => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(PG_BIN, command), ...args]] : [path.join(PG_BIN, command), [...args]];
    await run(file as string, argv as string[], { timeout: 60_000 });
  };
  if (asRoot) await run('chown', ['postgres:', root]);
  await pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const start = async (): Promise<void> => {
    // -w: pg_ctl returns once the server accepts connections.
    await pgRun('pg_ctl', ['-D', data, '-l', path.join(root, 'server.log'), '-w', '-t', '30', '-o', `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  };
  const stop = async (): Promise<void> => {
    await pgRun('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
  };
  await start();
  const urlOf = (database: string): string => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    adminUrl: urlOf('postgres'),
    port,
    urlOf,
    stop,
    start,
    async close() {
      await stop().catch(() => {});
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

export interface PrivateRegistry {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** Copies an image (any skopeo source, e.g. `oci:<layout>`) to `<repository>:<tag>` of this registry. */
  push(source: string, repository: string, tag: string): Promise<void>;
  /** Stops the registry and removes its storage. */
  close(): Promise<void>;
  log(): string;
}

/** Debian's docker-registry (distribution 2.8) on a free loopback port, with its own storage directory. */
export async function startPrivateRegistry(): Promise<PrivateRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dockergate-registry-'));
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  await fs.writeFile(
    config,
    ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${dir}/data`, '  delete:', '    enabled: true', 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'),
  );
  let output = '';
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitForPort(port, 15_000, 'docker-registry');
  const address = `127.0.0.1:${port}`;
  return {
    address,
    async push(source, repository, tag) {
      await run('skopeo', ['copy', '-q', '--dest-tls-verify=false', source, `docker://${address}/${repository}:${tag}`]);
    },
    async close() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
      await fs.rm(dir, { recursive: true, force: true });
    },
    log: () => output,
  };
}
