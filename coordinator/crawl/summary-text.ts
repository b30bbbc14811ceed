/** The text `crawl` and `rescan` print (their `--json` is the summary object itself). */
import type { CrawlSummary, RescanSummary } from './crawl.js';

/** Changes and failures listed in full up to this many each; the rest are counted. */
const LISTED = 20;

export function crawlSummaryText(summary: CrawlSummary | RescanSummary): string {
  const what = 'registry' in summary ? `crawled ${summary.registry}` : `rescanned ${summary.registries.join(', ') || 'no known registry'}`;
  const lines = [
    `${what}: ${summary.repositories} repositories, ${summary.tags} tags: ${summary.scanned} scanned, ${summary.skipped} current (skipped), ${summary.failed} failed; ${summary.requests} registry requests in ${summary.seconds.toFixed(1)} s`,
  ];
  if (summary.changed.length > 0) lines.push(`changed (${summary.changed.length}):`);
  for (const move of summary.changed.slice(0, LISTED)) {
    const syscalls = [...move.added.map((name) => `+${name}`), ...move.removed.map((name) => `-${name}`)];
    const shown = syscalls.length > 12 ? `${syscalls.slice(0, 12).join(' ')} … (${syscalls.length})` : syscalls.join(' ');
    lines.push(`  ${move.reference}: ${move.fromDigest ? `${short(move.fromDigest)} → ` : 'new, '}${short(move.toDigest)}${shown ? `: ${shown}` : ''}`);
  }
  if (summary.changed.length > LISTED) lines.push(`  … and ${summary.changed.length - LISTED} more (--json lists every one)`);
  if (summary.failures.length > 0) lines.push(`failed (${summary.failures.length}), tried again next time:`);
  for (const failure of summary.failures.slice(0, LISTED)) lines.push(`  ${failure.reference}: ${failure.error}`);
  if (summary.failures.length > LISTED) lines.push(`  … and ${summary.failures.length - LISTED} more (--json lists every one)`);
  if (summary.invalidNames.length > 0) lines.push(`skipped ${summary.invalidNames.length} invalid names: ${summary.invalidNames.slice(0, 5).map((n) => JSON.stringify(n)).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

const short = (digest: string): string => digest.slice(0, 'sha256:'.length + 12);
