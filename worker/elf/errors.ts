/**
 * The ELF reader's error contract. Malformed bytes throw `ElfFormatError`; a count or size that is
 * well-formed but above a bound of `infra/limits.ts` throws `ElfLimitError`. Both name the byte
 * offset in the file where the offending field (or table) sits. Nothing else escapes the reader:
 * the fuzz test (`test/elf-fuzz.test.ts`) asserts exactly these two classes.
 *
 * `ElfLimitError` extends the project's `LimitExceededError` (code `limit-exceeded`) rather than
 * being folded into `ElfFormatError`, so a report can tell "this file is broken" from "this file is
 * bigger than we agreed to read" — both are final, neither is retried.
 */
import { InvalidInputError, LimitExceededError } from '../../infra/errors.js';
import type { Limits } from '../../infra/limits.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

export class ElfFormatError extends InvalidInputError {
  constructor(
    message: string,
    /** Byte offset in the file of the field or table that is malformed. */
    readonly offset: number,
    options?: ErrorOptions,
  ) {
    super(`ELF: ${message} (at file offset ${hex(offset)})`, options);
  }
}

export class ElfLimitError extends LimitExceededError {
  constructor(
    limit: keyof Limits,
    max: number,
    what: string,
    /** Byte offset in the file of the header or table whose claim exceeds the limit. */
    readonly offset: number,
  ) {
    super(limit, max, `ELF ${what} at file offset ${hex(offset)}`);
  }
}

/** Throws `ElfLimitError` when `count` exceeds `limits[limit]`. */
export function checkLimit(limits: Limits, limit: keyof Limits, count: number, what: string, offset: number): void {
  const max = limits[limit] as number;
  if (count > max) throw new ElfLimitError(limit, max, `${what} ${count}`, offset);
}

export { hex };
