import { LimitExceededError, UnsafePathError } from '../infra/errors.js';
import type { Limits } from '../infra/limits.js';

/**
 * Normalises a tar member name to an absolute image path (`./usr//bin/` → `/usr/bin`).
 * A leading `/` is dropped as Docker does; `..` that would climb above the root is refused
 * (Docker's `breakoutError`), so no later stage ever sees a path outside the image.
 */
export function normaliseEntryPath(name: string, limits: Limits): string {
  if (Buffer.byteLength(name) > limits.maxPathBytes) {
    throw new LimitExceededError('maxPathBytes', limits.maxPathBytes, `tar entry name of ${Buffer.byteLength(name)} bytes`);
  }
  if (name.includes('\0')) throw new UnsafePathError(name, 'contains a NUL byte');
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new UnsafePathError(name, 'climbs above the image root');
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  if (parts.length > limits.maxPathDepth) {
    throw new LimitExceededError('maxPathDepth', limits.maxPathDepth, `path ${JSON.stringify(name.slice(0, 200))}`);
  }
  return '/' + parts.join('/');
}

/** Splits an absolute normalised path into components (`/` → []). */
export function pathComponents(absolute: string): string[] {
  return absolute === '/' ? [] : absolute.slice(1).split('/');
}

export function parentOf(absolute: string): string {
  const cut = absolute.lastIndexOf('/');
  return cut <= 0 ? '/' : absolute.slice(0, cut);
}

export function baseName(absolute: string): string {
  return absolute.slice(absolute.lastIndexOf('/') + 1);
}
