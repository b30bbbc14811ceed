/**
 * One error class per failure kind. The class decides what happens to a work unit that throws it:
 * `retryable` errors (a registry that timed out, a daemon that is restarting) are retried with
 * backoff; every other error is final for that input and is recorded with its reason, never retried.
 */

export type ErrorCode =
  | 'invalid-input'
  | 'unsafe-path'
  | 'limit-exceeded'
  | 'digest-mismatch'
  | 'unsupported'
  | 'not-found'
  | 'auth'
  | 'unavailable'
  | 'aborted'
  | 'poisoned'
  | 'permission-denied'
  | 'io-error'
  | 'usage';

export abstract class DockergateError extends Error {
  abstract readonly code: ErrorCode;
  /** True when the same input may succeed later (network, daemon restart); false for bad input. */
  readonly retryable: boolean = false;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Malformed input: a manifest that is not JSON, a truncated tar or gzip stream, a bad header. */
export class InvalidInputError extends DockergateError {
  readonly code = 'invalid-input';
}

/** An archive entry or link that would leave the image root (`../`, link escapes). */
export class UnsafePathError extends DockergateError {
  readonly code = 'unsafe-path';
  constructor(
    readonly entryPath: string,
    reason: string,
  ) {
    super(`unsafe path ${JSON.stringify(entryPath)}: ${reason}`);
  }
}

/** A bound from `infra/limits.ts` was reached; `limit` names the field. */
export class LimitExceededError extends DockergateError {
  readonly code = 'limit-exceeded';
  constructor(
    readonly limit: string,
    readonly max: number,
    what: string,
  ) {
    super(`${what} exceeds limit ${limit} (${max})`);
  }
}

/** Bytes whose digest or size differs from the descriptor that named them. */
export class DigestMismatchError extends DockergateError {
  readonly code = 'digest-mismatch';
  constructor(
    readonly expected: string,
    readonly actual: string,
    what: string,
  ) {
    super(`${what}: expected ${expected}, got ${actual}`);
  }
}

/** Valid input that dockergate does not handle (a media type, a platform, a credential helper). */
export class UnsupportedError extends DockergateError {
  readonly code = 'unsupported';
}

export class NotFoundError extends DockergateError {
  readonly code = 'not-found';
}

export class AuthError extends DockergateError {
  readonly code = 'auth';
}

/** A service did not answer or failed transiently: the only kind that is retried. */
export class UnavailableError extends DockergateError {
  readonly code = 'unavailable';
  override readonly retryable = true;
}

export class AbortedError extends DockergateError {
  readonly code = 'aborted';
}

/** A work unit that was delivered its maximum number of times without an answer (its worker died or hung). */
export class PoisonedUnitError extends DockergateError {
  readonly code = 'poisoned';
}

/** The operating system refused access to a file the user named (EACCES, EPERM, EROFS). */
export class PermissionDeniedError extends DockergateError {
  readonly code = 'permission-denied';
}

/** A file could not be read or written for another reason of the operating system (ENOSPC, EIO, ...). */
export class IoError extends DockergateError {
  readonly code = 'io-error';
}

/** A command line that cannot be run as given: an unknown command or option, a malformed flag value. Exit code 2. */
export class UsageError extends DockergateError {
  readonly code = 'usage';
}

/**
 * A Node.js file-system error as a typed error that names the file and what it was for, e.g.
 * `not-found: profile /tmp/p.json: no such file or directory` instead of a bare `ENOENT: ...`.
 * `what` says what the file is ("profile", "output"); errors that are not errno errors pass through.
 */
export function fileError(err: unknown, file: string, what: string): unknown {
  if (err instanceof DockergateError || !(err instanceof Error) || typeof (err as NodeJS.ErrnoException).code !== 'string') return err;
  const code = (err as NodeJS.ErrnoException).code!;
  const subject = `${what} ${file}`;
  switch (code) {
    case 'ENOENT':
      return new NotFoundError(`${subject}: no such file or directory`, { cause: err });
    case 'ENOTDIR':
      return new NotFoundError(`${subject}: a component of the path is not a directory`, { cause: err });
    case 'EISDIR':
      return new InvalidInputError(`${subject} is a directory`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new PermissionDeniedError(`${subject}: permission denied`, { cause: err });
    case 'EROFS':
      return new PermissionDeniedError(`${subject}: read-only file system`, { cause: err });
    case 'ENOSPC':
      return new IoError(`${subject}: no space left on device`, { cause: err });
    default:
      return new IoError(`${subject}: ${code}`, { cause: err });
  }
}

/** An error as it crosses the bus: its code and message, enough to act on it as the sender would. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof DockergateError) return { code: err.code, message: err.message };
  // A bug, not bad input: still final for this unit, and still reported with its message.
  return { code: 'invalid-input', message: `unexpected error: ${err instanceof Error ? err.message : String(err)}` };
}

/** The error a remote worker reported, with the same code (and so the same handling) as at its source. */
export class RemoteUnitError extends DockergateError {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Wraps anything thrown by a library while reading untrusted bytes into `InvalidInputError`. */
export function asInputError(err: unknown, context: string): DockergateError {
  if (err instanceof DockergateError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InvalidInputError(`${context}: ${message}`, { cause: err });
}
