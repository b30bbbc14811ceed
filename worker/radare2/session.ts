/**
 * One radare2 process driven through the npm package `r2pipe` (its `pipe` transport: commands on
 * stdin, NUL-terminated answers on stdout), bounded like every analysis: a wall-time deadline
 * (`limits.radare2TimeoutMs`), an address-space limit (`limits.radare2MemoryBytes`, via prlimit),
 * and cancellation. Whatever happens, `close()` leaves no radare2 process behind.
 *
 * Invariant: radare2 runs sandboxed (`-S`: no shell, no file writes, no network from commands) on a
 * private copy of the object, and only the commands this module sends are ever run.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { AbortedError, InvalidInputError, LimitExceededError } from '../../infra/errors.js';

/** The part of r2pipe's (untyped, callback-style) CommonJS API this module uses. */
interface R2PipeHandle {
  cmd(command: string, callback: (error: Error | null, output: string) => void): void;
  quit(): void;
}

interface R2PipeModule {
  r2bin: string;
  pipe(file: string, options: readonly string[], callback: (error: Error | null, r2: R2PipeHandle) => void): void;
}

const r2pipe = createRequire(import.meta.url)('r2pipe') as R2PipeModule;

/** `DOCKERGATE_TRACE_RADARE2=1`: every command's time and answer size on stderr. */
const TRACE = process.env.DOCKERGATE_TRACE_RADARE2 === '1';

/** Options every session starts with: quiet, no colours, relocations applied, sandboxed. */
const RADARE2_OPTIONS = ['-S', '-e', 'scr.color=0', '-e', 'scr.interactive=false', '-e', 'bin.relocs.apply=true', '-e', 'log.level=0'];

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
  private readonly liveness: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout | undefined;
  private readonly onAbort: () => void;
  private pid = 0;

  private constructor(
    private readonly r2: R2PipeHandle,
    private readonly options: SessionOptions,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.fail = (error) => {
        if (this.failure) return;
        this.failure = error;
        this.kill();
        reject(error);
      };
    });
    this.failed.catch(() => undefined);
    this.timer = setTimeout(
      () => this.fail(new LimitExceededError('radare2TimeoutMs', options.timeoutMs, `radare2 analysis of ${options.label}`)),
      options.timeoutMs,
    );
    // A radare2 that exits on its own (crash, out of memory) answers nothing more: notice it.
    this.liveness = setInterval(() => {
      if (this.pid !== 0 && !alive(this.pid)) this.fail(new InvalidInputError(`radare2 exited while analysing ${options.label}`));
    }, 500);
    this.heartbeat = options.working ? setInterval(options.working, HEARTBEAT_MS) : undefined;
    this.onAbort = () => this.fail(new AbortedError(`radare2 analysis of ${options.label} cancelled`));
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Starts radare2 on `file` and bounds it; rejects if it cannot start. */
  static async open(file: string, options: SessionOptions): Promise<Radare2Session> {
    options.signal?.throwIfAborted();
    const r2 = await new Promise<R2PipeHandle>((resolve, reject) => {
      let settled = false;
      // r2pipe spawns `r2bin` synchronously inside `pipe`; the callback may run again later with
      // the exit of the process (a signal or a non-zero code), which the liveness check handles.
      r2pipe.r2bin = options.binary;
      r2pipe.pipe(file, RADARE2_OPTIONS, (error, handle) => {
        if (settled) return;
        settled = true;
        if (error) reject(new InvalidInputError(`radare2 could not open ${options.label}: ${error.message.split('\n').slice(0, 3).join(' ')}`));
        else resolve(handle);
      });
    });
    const session = new Radare2Session(r2, options);
    try {
      session.pid = Number((await session.command('?vi $p')).trim());
      if (!Number.isSafeInteger(session.pid) || session.pid <= 0) throw new InvalidInputError(`radare2 did not report its pid for ${options.label}`);
      await limitAddressSpace(session.pid, options.memoryBytes);
    } catch (error) {
      await session.close();
      throw error;
    }
    return session;
  }

  /** Runs one command and returns its text output. */
  command(text: string): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    const started = performance.now();
    const answer = new Promise<string>((resolve, reject) => {
      this.r2.cmd(text, (error, output) => (error ? reject(new InvalidInputError(`radare2 ${text}: ${error.message}`)) : resolve(output)));
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

  /** Ends radare2 (quit, then SIGKILL if it lingers) and waits until it is gone. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.liveness);
    clearInterval(this.heartbeat);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    if (!this.failure) {
      try {
        this.r2.quit();
      } catch {
        // stdin already closed: the process is exiting anyway
      }
    }
    for (let waited = 0; this.pid !== 0 && alive(this.pid); waited += 50) {
      if (waited >= 2_000) this.kill();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private kill(): void {
    if (this.pid === 0) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** True while `pid` exists and is not a zombie (Node reaps its children soon after they exit). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `prlimit --pid P --as=N`: radare2 allocating beyond N fails inside radare2, not on the host. */
function limitAddressSpace(pid: number, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('prlimit', ['--pid', String(pid), `--as=${bytes}`], { timeout: 10_000 }, (error) => {
      if (!error || (error as NodeJS.ErrnoException).code === 'ENOENT') resolve(); // no util-linux: unbounded
      else reject(new InvalidInputError(`prlimit on radare2 (pid ${pid}) failed: ${error.message}`));
    });
  });
}
