/**
 * The package version, read once from `package.json` (beside `infra/` in the sources, two levels
 * up from `dist/infra/` when compiled). Component versions (extractor, analysers, generator) live
 * with their code; `dockergate --version` prints them together.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    const file = fileURLToPath(new URL(relative, import.meta.url));
    if (!existsSync(file)) continue;
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
    if (parsed.name === 'dockergate' && typeof parsed.version === 'string') return parsed.version;
  }
  return 'unknown';
}

export const PACKAGE_VERSION = packageVersion();
