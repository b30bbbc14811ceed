/**
 * Small helpers around the docker CLI shared by build.ts, run.ts and trace.ts.
 * The CLI (not the API) is used so that every step can be replayed by hand.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface CommandOptions {
  /** Kill the command (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
  /** Also append stdout and stderr to this file. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep at most this many bytes of each stream (the tail); default 1 MiB. */
  maxBytes?: number;
}

/** Runs a command without a shell and collects its output. Never rejects for a non-zero exit. */
export function runCommand(command: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const maxBytes = options.maxBytes ?? 1 << 20;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    const log = options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: 'a' });
    let stdout = '';
    let stderr = '';
    const keep = (text: string): string => (text.length > maxBytes ? text.slice(-maxBytes) : text);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout = keep(stdout + chunk.toString('utf8'));
      log?.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = keep(stderr + chunk.toString('utf8'));
      log?.write(chunk);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      log?.end();
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const done = (): void => resolve({ code, signal, stdout, stderr, timedOut });
      if (log === undefined) done();
      else log.end(done);
    });
  });
}

/** `docker ARGS`; the classic builder is forced (DOCKER_BUILDKIT=0), as in infra/setup/test-env.sh. */
export function docker(args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  return runCommand('docker', args, { ...options, env: { ...(options.env ?? process.env), DOCKER_BUILDKIT: '0' } });
}

/** `docker ARGS`, rejecting with the command's stderr unless it exits 0; returns stdout trimmed. */
export async function dockerOk(args: readonly string[], options: CommandOptions = {}): Promise<string> {
  const result = await docker(args, options);
  if (result.code !== 0) {
    const why = result.timedOut ? 'timed out' : `exit ${result.code ?? result.signal}`;
    throw new Error(`docker ${args.join(' ')}: ${why}: ${result.stderr.trim().slice(-2000)}`);
  }
  return result.stdout.trim();
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Last `lines` lines of a text, for error details. */
export function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
