/**
 * What `scan` writes besides the profile: a report (JSON, and a readable summary) that explains
 * every allowed syscall with one witness chain, and a DOT graph of programs and libraries.
 * Everything is sorted: the same scan gives the same bytes.
 */
import { formatPlatform } from '../../extractor/manifest.js';
import { RUNTIME_SYSCALLS } from '../plan/runtime-syscalls.js';
import { SYSCALL_ORIGINS, type ScanResult, type SyscallOrigin } from '../plan/scan.js';

export interface ScanReport {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly platform: string;
  readonly entrypoint: readonly string[];
  readonly unsure: boolean;
  readonly counts: { readonly syscalls: number; readonly programs: number; readonly objects: number };
  /**
   * How many allowed syscalls come from each origin, each counted once, by the most certain way it
   * is reached: direct calls, callbacks taken by reached code, pointers in reached data, lookups by
   * name, objects loaded at run time, the container runtime, the Docker-default fallback.
   */
  readonly breakdown: Readonly<Record<SyscallOrigin, number>>;
  readonly programs: ScanResult['programs'];
  readonly objects: ScanResult['objects'];
  readonly decisions: ScanResult['decisions'];
  readonly runtime: typeof RUNTIME_SYSCALLS;
  /** Syscall → witness chain, outermost first. */
  readonly syscalls: Readonly<Record<string, readonly string[]>>;
}

export function scanReport(result: ScanResult): ScanReport {
  return {
    reference: result.reference,
    manifestDigest: result.manifestDigest,
    configDigest: result.configDigest,
    platform: formatPlatform(result.platform),
    entrypoint: [...(result.config.entrypoint ?? []), ...(result.config.cmd ?? [])],
    unsure: result.unsure,
    counts: { syscalls: result.syscalls.size, programs: result.programs.length, objects: result.objects.length },
    breakdown: originCounts(result),
    programs: result.programs,
    objects: result.objects,
    decisions: result.decisions,
    runtime: RUNTIME_SYSCALLS,
    syscalls: Object.fromEntries(result.syscalls),
  };
}

/** Allowed syscalls per origin (every origin present, zeros included). */
export function originCounts(result: Pick<ScanResult, 'origins'>): Record<SyscallOrigin, number> {
  const counts = Object.fromEntries(SYSCALL_ORIGINS.map((origin) => [origin, 0])) as Record<SyscallOrigin, number>;
  for (const origin of Object.values(result.origins)) counts[origin]++;
  return counts;
}

/** The readable summary printed by `scan`. */
export function reportText(result: ScanResult): string {
  const lines = [
    `image     ${result.reference} (${formatPlatform(result.platform)})`,
    `digest    ${result.manifestDigest}`,
    `programs  ${result.programs.map((p) => p.path).join(', ') || 'none'}`,
    `objects   ${result.objects.length} (${result.analysed.fresh} analysed now, ${result.analysed.objects - result.analysed.fresh - result.analysed.failed} known, ${result.analysed.failed} failed)`,
    `syscalls  ${result.syscalls.size} allowed${result.unsure ? ' — UNSURE: fallbacks applied, see below' : ''}`,
    `from      ${Object.entries(originCounts(result)).filter(([, count]) => count > 0).map(([origin, count]) => `${origin} ${count}`).join(', ')}`,
    '',
  ];
  const byKind = new Map<string, ScanResult['decisions'][number][]>();
  for (const decision of result.decisions) {
    const group = byKind.get(decision.kind) ?? [];
    group.push(decision);
    byKind.set(decision.kind, group);
  }
  for (const [kind, decisions] of byKind) {
    lines.push(`${kind}${decisions.length > 1 ? ` (${decisions.length})` : ''}:`);
    const grouped = groupedDecisions(decisions);
    for (const line of grouped.slice(0, 20)) lines.push(`  ${line}`);
    if (grouped.length > 20) lines.push(`  … ${grouped.length - 20} more (see the JSON report)`);
  }
  lines.push('', [...result.syscalls.keys()].join(' '));
  return `${lines.join('\n')}\n`;
}

/**
 * Decisions of one kind as readable lines: those that say the same thing about different files
 * (230 gconv modules "loaded at run time by /usr/sbin/nginx: iconv_open is reached") become one
 * line with their count, the directory they share and a few names; the others stay as they are.
 */
export function groupedDecisions(decisions: readonly { detail: string; path?: string }[]): string[] {
  const groups = new Map<string, { paths: string[]; detail: string }>();
  for (const decision of decisions) {
    const at = decision.path ? decision.detail.indexOf(decision.path) : -1;
    const template = at === -1 ? decision.detail : `${decision.detail.slice(0, at)}\0${decision.detail.slice(at + decision.path!.length)}`;
    const group = groups.get(template) ?? { paths: [], detail: decision.detail };
    if (decision.path) group.paths.push(decision.path);
    groups.set(template, group);
  }
  const lines: string[] = [];
  for (const [template, { paths, detail }] of groups) {
    if (paths.length <= 3) {
      for (const path of paths.length > 0 ? paths : [undefined]) lines.push(path === undefined || !template.includes('\0') ? detail : template.replace('\0', path));
      continue;
    }
    const dir = commonDirectory(paths);
    const names = paths.map((path) => path.slice(dir.length));
    const examples = `${names.slice(0, 3).join(', ')}, …`;
    lines.push(template.replace('\0', `${paths.length} files under ${dir} (${examples})`));
  }
  return lines;
}

/** The longest directory prefix (ending in `/`) that every path shares. */
function commonDirectory(paths: readonly string[]): string {
  let prefix = paths[0] ?? '';
  for (const path of paths) while (!path.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix.slice(0, prefix.lastIndexOf('/') + 1) || '/';
}

/** One witness chain for `syscall`, as `explain` prints it. */
export function explainText(result: ScanResult, syscall: string): string {
  const witness = result.syscalls.get(syscall);
  if (!witness) return `${syscall} is not allowed for ${result.reference}: no code reachable from its entrypoint makes it.\n`;
  return `${syscall}\n${[...witness].reverse().map((step) => `  ← ${step}`).join('\n')}\n`;
}

/** DOT graph: programs (boxes) and libraries (ellipses), with runs / needs / loads edges. */
export function dotGraph(result: ScanResult): string {
  const quote = (text: string): string => JSON.stringify(text);
  const programs = new Set(result.programs.map((p) => p.path));
  const nodes = new Set<string>();
  for (const edge of result.edges) {
    nodes.add(edge.from);
    nodes.add(edge.to);
  }
  const lines = ['digraph dockergate {', '  rankdir=LR;'];
  for (const node of [...nodes].sort()) {
    const shape = programs.has(node) ? 'box' : node === 'entrypoint' || node === 'healthcheck' ? 'diamond' : 'ellipse';
    lines.push(`  ${quote(node)} [shape=${shape}];`);
  }
  const style: Record<string, string> = { runs: 'bold', needs: 'solid', interpreter: 'dashed', loads: 'dotted' };
  for (const edge of [...result.edges].sort((a, b) => `${a.from}${a.to}`.localeCompare(`${b.from}${b.to}`))) {
    lines.push(`  ${quote(edge.from)} -> ${quote(edge.to)} [label=${quote(edge.kind)}, style=${style[edge.kind]}];`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** What `diff` prints: syscalls only one image allows, each with the other side's witness. */
/** What changed between two scans (`diff`; `diff --json` prints it as is). */
export interface ScanDiff {
  readonly from: { readonly reference: string; readonly manifestDigest: string; readonly syscalls: number };
  readonly to: { readonly reference: string; readonly manifestDigest: string; readonly syscalls: number };
  readonly programs: { readonly added: readonly string[]; readonly removed: readonly string[] };
  /** Objects `to` loads that `from` does not load at that path, or loads with other bytes. */
  readonly objects: { readonly added: readonly string[]; readonly changed: readonly string[] };
  /** Allowed by `to` and not `from`, with `to`'s witness (outermost first); and the reverse, with `from`'s. */
  readonly added: readonly { readonly name: string; readonly witness: readonly string[] }[];
  readonly removed: readonly { readonly name: string; readonly witness: readonly string[] }[];
}

export function scanDiff(before: ScanResult, after: ScanResult): ScanDiff {
  const side = (result: ScanResult) => ({ reference: result.reference, manifestDigest: result.manifestDigest, syscalls: result.syscalls.size });
  const programsBefore = new Set(before.programs.map((p) => p.path));
  const programsAfter = new Set(after.programs.map((p) => p.path));
  const shaBefore = new Map(before.objects.map((o) => [o.path, o.sha256]));
  const only = (a: ScanResult, b: ScanResult) => [...a.syscalls].filter(([name]) => !b.syscalls.has(name)).map(([name, witness]) => ({ name, witness }));
  return {
    from: side(before),
    to: side(after),
    programs: { added: [...programsAfter].filter((path) => !programsBefore.has(path)), removed: [...programsBefore].filter((path) => !programsAfter.has(path)) },
    objects: {
      added: after.objects.filter((object) => !shaBefore.has(object.path)).map((object) => object.path),
      changed: after.objects.filter((object) => shaBefore.has(object.path) && shaBefore.get(object.path) !== object.sha256).map((object) => object.path),
    },
    added: only(after, before),
    removed: only(before, after),
  };
}

export function diffText(before: ScanResult, after: ScanResult): string {
  const diff = scanDiff(before, after);
  const lines = [`${diff.from.reference} → ${diff.to.reference}: ${diff.from.syscalls} → ${diff.to.syscalls} syscalls`];
  for (const path of diff.programs.added) lines.push(`+ program ${path}`);
  for (const path of diff.programs.removed) lines.push(`- program ${path}`);
  for (const path of diff.objects.added) lines.push(`+ object ${path}`);
  for (const path of diff.objects.changed) lines.push(`~ object ${path} (changed)`);
  for (const { name, witness } of diff.added) lines.push(`+ ${name}: ${[...witness].reverse().join(' ← ')}`);
  for (const { name, witness } of diff.removed) lines.push(`- ${name}: was ${[...witness].reverse().join(' ← ')}`);
  if (diff.added.length === 0 && diff.removed.length === 0) lines.push('same syscalls');
  return `${lines.join('\n')}\n`;
}
