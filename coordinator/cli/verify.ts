/**
 * Runs an image of the local Docker daemon under a generated seccomp profile and says whether it
 * still works: a one-shot container must exit 0; a service must still be running after a settle time,
 * and a smoke command, run in a *sidecar* container, must exit 0.
 *
 * The sidecar is a second container of the same image that joins only the service's network
 * namespace (`--network container:<id>`, and optionally its PID namespace) and runs under Docker's
 * default profile. `docker exec` is not used on purpose: an exec'd process inherits the tested
 * container's seccomp filter, so a smoke test run that way would fail for its own syscalls, not the
 * service's.
 *
 * The profile travels as `SecurityOpt: ["seccomp=<profile JSON>"]`: the Engine API takes the profile's
 * content there; a file path is a CLI convenience (the docker CLI reads the file and sends its
 * content). Measured on Docker 20.10.24: a path is accepted at create and fails at start with HTTP 500
 * "Decoding seccomp profile failed: invalid character '/' looking for beginning of value".
 */
import Docker from 'dockerode';
import { AbortedError, InvalidInputError, NotFoundError, UnavailableError } from '../../infra/errors.js';
import type { DockerSeccompProfile } from '../output/policy.js';

export interface VerifyOptions {
  /** argv of a smoke test run in a sidecar container; makes the image be judged as a service. */
  smoke?: string[];
  /** Overrides the image's Cmd (`docker run image <cmd...>`). */
  cmd?: string[];
  /** Overrides the image's Entrypoint. */
  entrypoint?: string[];
  /** `--user` of the tested container. */
  user?: string;
  /** Bind mounts of the tested container, as `HostConfig.Binds` (`/host/path:/container/path:ro`). */
  binds?: string[];
  /** Budget for the whole verification (start, settle, smoke); default 60 s. */
  timeoutMs?: number;
  /** How long a service must stay up before the smoke test runs; default 3 s. */
  settleMs?: number;
  /** Default `none`: only loopback. `host` when a smoke client must reach a host service. */
  network?: 'none' | 'host';
  /**
   * `oneshot`: must exit 0 within the timeout. `service`: must stay up. `auto`: a container that
   * exits within the settle time is a command (it must exit 0), one still running then a service.
   * Default: `service` iff smoke, else `oneshot`.
   */
  mode?: 'oneshot' | 'service' | 'auto';
  /** The sidecar also joins the service's PID namespace (so `/proc/1` is the service). */
  smokeSharesPid?: boolean;
  signal?: AbortSignal;
  /** A dockerode client; default: `new Docker()` (DOCKER_HOST or the local socket). */
  docker?: Docker;
}

export interface VerifyResult {
  passed: boolean;
  exitCode?: number;
  /** stdout and stderr of the tested container, interleaved, at most `MAX_LOG_BYTES` (the tail). */
  logs: string;
  smoke?: { exitCode: number; output: string };
  /** Why it failed (or, for a passing service without smoke test, what was checked). */
  reason?: string;
}

const MAX_LOG_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_SETTLE_MS = 3_000;
const LABEL = 'dockergate.verify';
/**
 * Start errors that mean "this profile is malformed" (Docker's decoder, runc's libseccomp compiler),
 * as opposed to runc failing under a well-formed profile ("... operation not permitted").
 */
const INVALID_PROFILE =
  /decoding seccomp profile|is not a valid (action|architecture|operator) for seccomp|error adding seccomp (filter )?rule|unknown seccomp|invalid seccomp/i;

function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err ? Number(err.statusCode) : undefined;
}

/** The daemon's own message (`json.message`), without dockerode's "(HTTP code 500) server error - " prefix. */
function daemonMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'json' in err) {
    const json = (err as { json?: unknown }).json;
    if (typeof json === 'object' && json !== null && 'message' in json) return String((json as { message: unknown }).message).trim();
  }
  return err instanceof Error ? err.message : String(err);
}

/** Errors without an HTTP status never reached the daemon: retryable infrastructure trouble. */
function infrastructure(err: unknown, what: string): Error {
  return new UnavailableError(`${what}: Docker daemon not reachable (${err instanceof Error ? err.message : String(err)})`, { cause: err });
}

/**
 * Docker's log stream of a container without TTY: frames of an 8-byte header (stream type, 3 zero
 * bytes, big-endian payload size) and the payload (Engine API, "Attach to a container", stream format).
 */
export function demuxDockerLogs(buffer: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    const start = offset + 8;
    const end = Math.min(start + size, buffer.length);
    parts.push(buffer.subarray(start, end));
    offset = end;
  }
  const text = Buffer.concat(parts);
  const tail = text.length > MAX_LOG_BYTES ? text.subarray(text.length - MAX_LOG_BYTES) : text;
  return tail.toString('utf8');
}

async function readLogs(container: Docker.Container): Promise<string> {
  try {
    return demuxDockerLogs(await container.logs({ stdout: true, stderr: true, follow: false }));
  } catch {
    return '';
  }
}

type Raced<T> = { done: true; value: T } | { done: false };

/** `promise` if it settles within `ms`; the caller still owns whatever keeps it pending. */
async function within<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<Raced<T>> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise.then((value) => ({ done: true as const, value })),
      new Promise<Raced<T>>((resolve) => {
        timer = setTimeout(() => resolve({ done: false }), Math.max(0, ms));
      }),
      new Promise<never>((_, reject) => {
        if (!signal) return;
        onAbort = () => reject(new AbortedError('verification aborted'));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/** Waits for the container to stop; `StatusCode` is its exit code. */
function waitExit(container: Docker.Container): Promise<number> {
  return container.wait().then((result: { StatusCode?: number }) => Number(result.StatusCode ?? -1));
}

export async function verifyImage(image: string, profile: DockerSeccompProfile, options: VerifyOptions = {}): Promise<VerifyResult> {
  const docker = options.docker ?? new Docker();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  const mode = options.mode ?? (options.smoke ? 'service' : 'oneshot');
  const deadline = Date.now() + timeoutMs;
  const remaining = () => deadline - Date.now();
  const signal = options.signal;
  const created: Docker.Container[] = [];

  try {
    try {
      await docker.getImage(image).inspect();
    } catch (err) {
      if (statusOf(err) === 404) throw new NotFoundError(`${image}: no such image in the local daemon`, { cause: err });
      throw infrastructure(err, image);
    }
    if (signal?.aborted) throw new AbortedError('verification aborted');

    const create = async (config: Docker.ContainerCreateOptions, what: string): Promise<Docker.Container> => {
      try {
        const container = await docker.createContainer(config);
        created.push(container);
        return container;
      } catch (err) {
        if (statusOf(err) === undefined) throw infrastructure(err, what);
        // The daemon refused the configuration (a malformed profile, a bad option): bad input, not a verdict.
        throw new InvalidInputError(`${what}: the daemon refused to create the container: ${daemonMessage(err)}`, { cause: err });
      }
    };

    const tested = await create(
      {
        Image: image,
        ...(options.cmd ? { Cmd: options.cmd } : {}),
        ...(options.entrypoint ? { Entrypoint: options.entrypoint } : {}),
        ...(options.user ? { User: options.user } : {}),
        Labels: { [LABEL]: 'tested' },
        HostConfig: {
          NetworkMode: options.network ?? 'none',
          ...(options.binds ? { Binds: options.binds } : {}),
          SecurityOpt: [`seccomp=${JSON.stringify(profile)}`],
        },
      },
      `${image} (tested)`,
    );

    try {
      const started = await within(tested.start(), remaining(), signal);
      if (!started.done) return { passed: false, logs: await readLogs(tested), reason: `container did not start within ${timeoutMs} ms` };
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      if (statusOf(err) === undefined) throw infrastructure(err, image);
      const message = daemonMessage(err);
      // Docker decodes the profile and runc compiles it only at start: a profile either refuses is bad
      // input, not a verdict on the image.
      if (INVALID_PROFILE.test(message)) {
        throw new InvalidInputError(`${image}: the daemon refused the seccomp profile: ${message}`, { cause: err });
      }
      // runc fails here when the profile denies a syscall it needs after loading the filter.
      return { passed: false, logs: await readLogs(tested), reason: `container did not start: ${message}` };
    }
    const exit = waitExit(tested);
    exit.catch(() => undefined); // removal in `finally` may end the wait with an error

    if (mode === 'oneshot') {
      const result = await within(exit, remaining(), signal);
      const logs = await readLogs(tested);
      if (!result.done) return { passed: false, logs, reason: `still running after ${timeoutMs} ms` };
      const exitCode = result.value;
      return exitCode === 0 ? { passed: true, exitCode, logs } : { passed: false, exitCode, logs, reason: `exited with code ${exitCode}` };
    }

    const early = await within(exit, Math.min(settleMs, remaining()), signal);
    if (early.done && mode === 'auto') {
      const logs = await readLogs(tested);
      return early.value === 0
        ? { passed: true, exitCode: 0, logs, reason: `exited 0 within ${settleMs} ms: judged as a command (--service to require it to stay up)` }
        : { passed: false, exitCode: early.value, logs, reason: `exited with code ${early.value} within ${settleMs} ms` };
    }
    if (early.done) {
      return { passed: false, exitCode: early.value, logs: await readLogs(tested), reason: `service exited with code ${early.value} within ${settleMs} ms` };
    }

    let smoke: VerifyResult['smoke'];
    let smokeFailure: string | undefined;
    if (options.smoke && options.smoke.length > 0) {
      const [command, ...args] = options.smoke;
      const sidecar = await create(
        {
          Image: image,
          Entrypoint: [command!],
          Cmd: args,
          Labels: { [LABEL]: 'smoke' },
          HostConfig: {
            NetworkMode: `container:${tested.id}`,
            ...(options.smokeSharesPid ? { PidMode: `container:${tested.id}` } : {}),
          },
        },
        `${image} (smoke sidecar)`,
      );
      try {
        await sidecar.start();
      } catch (err) {
        if (statusOf(err) === undefined) throw infrastructure(err, image);
        throw new InvalidInputError(`smoke sidecar did not start: ${daemonMessage(err)}`, { cause: err });
      }
      const sidecarExit = waitExit(sidecar);
      sidecarExit.catch(() => undefined);
      const result = await within(sidecarExit, remaining(), signal);
      const output = await readLogs(sidecar);
      if (!result.done) {
        smoke = { exitCode: -1, output };
        smokeFailure = `smoke test still running after ${timeoutMs} ms`;
      } else {
        smoke = { exitCode: result.value, output };
        if (result.value !== 0) smokeFailure = `smoke test exited with code ${result.value}`;
      }
    }

    // The service must have survived the smoke test too.
    const state = (
      await tested.inspect().catch((err: unknown) => {
        throw statusOf(err) === undefined ? infrastructure(err, image) : err;
      })
    ).State;
    const logs = await readLogs(tested);
    if (!state.Running) {
      const reason = `service stopped (exit code ${state.ExitCode})${smokeFailure ? `; ${smokeFailure}` : ''}`;
      return { passed: false, exitCode: state.ExitCode, logs, ...(smoke ? { smoke } : {}), reason };
    }
    if (smokeFailure) return { passed: false, logs, ...(smoke ? { smoke } : {}), reason: smokeFailure };
    return {
      passed: true,
      logs,
      ...(smoke ? { smoke } : {}),
      ...(smoke ? {} : { reason: `running after ${settleMs} ms; no smoke test given` }),
    };
  } finally {
    // Always clean up, also after errors, timeouts and aborts; a container already gone is fine.
    await Promise.all(created.map((container) => container.remove({ force: true, v: true }).catch(() => undefined)));
  }
}
