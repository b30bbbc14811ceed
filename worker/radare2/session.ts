/**
 * One radare2 process driven through the npm package `r2pipe` (its `pipe` transport: commands on
 * stdin, NUL-terminated answers on stdout), bounded like every analysis: a wall-time deadline
 * (`limits.radare2TimeoutMs`), an address-space limit (`limits.radare2MemoryBytes`, via prlimit),
 * and cancellation. Whatever happens, `close()` leaves no radare2 process behind.
 *
 * Invariant: radare2 runs sandboxed (`-S`: no shell, no file writes, no network from commands) on a
 * private copy of the object, and only the commands this module sends are ever run.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { AbortedError, InvalidInputError, LimitExceededError, NotFoundError } from '../../infra/errors.js';

/** The part of r2pipe's (untyped, callback-style) CommonJS API this module uses. */
interface R2PipeHandle {
  cmd(command: string, callback: (error: Error | null, output: string) => void): void;
  quit(): void;
}

interface R2PipeModule {
  r2bin: string;
  pipe(file: string, options: readonly string[], callback: (error: Error | null, r2: R2PipeHandle) => void): void;
}

const require = createRequire(import.meta.url);
const r2pipe = require('r2pipe') as R2PipeModule;
/** The CommonJS `child_process` exports object: the one r2pipe calls `spawn` on. */
const childProcesses = require('child_process') as typeof import('node:child_process');

/** `DOCKERGATE_TRACE_RADARE2=1`: every command's time and answer size on stderr. */
const TRACE = process.env.DOCKERGATE_TRACE_RADARE2 === '1';

/** Options every session starts with: no user rc files or plugins (`-N`), sandboxed, quiet, no colours, relocations applied. */
const RADARE2_OPTIONS = ['-N', '-S', '-e', 'scr.color=0', '-e', 'scr.interactive=false', '-e', 'bin.relocs.apply=true', '-e', 'log.level=0'];

export interface SessionOptions {
  readonly binary: string;
  readonly timeoutMs: number;
  readonly memoryBytes: number;
  readonly signal?: AbortSignal;
  /** What is analysed, for error messages (`sha256:…`). */
  readonly label: string;
  /** Called every few seconds while radare2 works (cluster heartbeats: one `aaa` can take minutes). */
  readonly working?: () => void;
}

/** How often `working` is called while the session is open. */
const HEARTBEAT_MS = 5_000;

export class Radare2Session {
  private failure: Error | undefined;
  private readonly failed: Promise<never>;
  private fail!: (error: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout | undefined;
  private readonly onAbort: () => void;
  private readonly exited: Promise<void>;
  private r2: R2PipeHandle | undefined;

  /** Starts the bounds at once: they hold from the spawn on, radare2's loading of the file included. */
  private constructor(
    private readonly child: ChildProcess,
    private readonly options: SessionOptions,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.fail = (error) => {
        if (this.failure) return;
        this.failure = error;
        this.child.kill('SIGKILL');
        reject(error);
      };
    });
    this.failed.catch(() => undefined);
    this.exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    // A radare2 that exits on its own (crash, out of memory) answers nothing more.
    void this.exited.then(() => this.fail(new InvalidInputError(`radare2 exited while analysing ${options.label}`)));
    // Writing to a radare2 that just died must not take the process down (EPIPE).
    child.stdin?.on('error', (error) => this.fail(new InvalidInputError(`radare2 stopped reading commands (${error.message}) while analysing ${options.label}`)));
    this.timer = setTimeout(
      () => this.fail(new LimitExceededError('radare2TimeoutMs', options.timeoutMs, `radare2 analysis of ${options.label}`)),
      options.timeoutMs,
    );
    this.heartbeat = options.working ? setInterval(options.working, HEARTBEAT_MS) : undefined;
    this.onAbort = () => this.fail(new AbortedError(`radare2 analysis of ${options.label} cancelled`));
    if (options.signal?.aborted) this.onAbort();
    else options.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Starts radare2 on `file` and bounds it; rejects if it cannot start or is stopped while loading. */
  static async open(file: string, options: SessionOptions): Promise<Radare2Session> {
    options.signal?.throwIfAborted();
    let child: ChildProcess | undefined;
    const ready = new Promise<R2PipeHandle>((resolve, reject) => {
      let settled = false;
      r2pipe.r2bin = options.binary;
      // r2pipe spawns radare2 synchronously inside `pipe` and does not expose the process; it is
      // taken at the spawn, so that it can be bounded, watched and killed like any child.
      const spawn = childProcesses.spawn;
      childProcesses.spawn = ((...args: Parameters<typeof spawn>) => (child = spawn.apply(childProcesses, args))) as typeof spawn;
      try {
        r2pipe.pipe(file, RADARE2_OPTIONS, (error, handle) => {
          // Called on the first output, and again if the process exits badly (handled by `exited`).
          if (settled) return;
          settled = true;
          if (error) reject(new InvalidInputError(`radare2 could not open ${options.label}: ${error.message.split('\n').slice(0, 3).join(' ')}`));
          else resolve(handle);
        });
      } finally {
        childProcesses.spawn = spawn;
      }
    });
    ready.catch(() => undefined);
    if (!child?.pid) throw new NotFoundError(`radare2 (${options.binary}) could not be started`);
    const session = new Radare2Session(child, options);
    try {
      await limitAddressSpace(child.pid, options.memoryBytes).catch((error: unknown) => {
        throw child!.exitCode !== null || child!.signalCode !== null ? new InvalidInputError(`radare2 exited while loading ${options.label}`) : error;
      });
      session.r2 = await Promise.race([ready, session.failed]);
    } catch (error) {
      await session.close();
      throw error;
    }
    return session;
  }

  /** Runs one command and returns its text output. */
  command(text: string): Promise<string> {
    const r2 = this.r2;
    if (this.failure || !r2) return Promise.reject(this.failure ?? new InvalidInputError('radare2 is not ready'));
    const started = performance.now();
    const answer = new Promise<string>((resolve, reject) => {
      r2.cmd(text, (error, output) => (error ? reject(new InvalidInputError(`radare2 ${text}: ${error.message}`)) : resolve(output)));
    });
    if (TRACE) {
      void answer.then((output) => process.stderr.write(`radare2 ${this.options.label.slice(0, 19)} ${(performance.now() - started).toFixed(0).padStart(6)} ms ${String(output.length).padStart(9)} B  ${text.slice(0, 60)}\n`));
    }
    return Promise.race([answer, this.failed]);
  }

  /** Runs a command whose output is JSON (an empty answer is `undefined`). */
  async json(text: string): Promise<unknown> {
    const output = (await this.command(text)).trim();
    if (output === '') return undefined;
    try {
      return JSON.parse(output) as unknown;
    } catch {
      throw new InvalidInputError(`radare2 ${text}: output is not JSON (${output.slice(0, 120)})`);
    }
  }

  /** Ends radare2 (quit, then SIGKILL if it lingers) and waits until it has exited. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    if (!this.failure) {
      this.failure = new InvalidInputError(`radare2 session of ${this.options.label} closed`);
      try {
        this.r2?.quit();
        this.child.stdin?.end();
      } catch {
        // stdin already closed: the process is exiting anyway
      }
    }
    const lingering = setTimeout(() => this.child.kill('SIGKILL'), QUIT_GRACE_MS);
    await this.exited;
    clearTimeout(lingering);
  }
}

/** How long radare2 may take to exit after `q` before it is killed. */
const QUIT_GRACE_MS = 2_000;

/** `prlimit --pid P --as=N`: radare2 allocating beyond N fails inside radare2, not on the host. */
function limitAddressSpace(pid: number, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('prlimit', ['--pid', String(pid), `--as=${bytes}`], { timeout: 10_000 }, (error) => {
      if (!error || (error as NodeJS.ErrnoException).code === 'ENOENT') resolve(); // no util-linux: unbounded
      else reject(new InvalidInputError(`prlimit on radare2 (pid ${pid}) failed: ${error.message}`));
    });
  });
}
