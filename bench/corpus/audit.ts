/**
 * Cross-check of the strace ground truth with the kernel's seccomp audit log: run an image under
 * a profile that allows a given set (e.g. the traced one) and LOGs everything else
 * (SCMP_ACT_LOG: the call still succeeds, the kernel writes an audit record, type=1326, to the
 * kernel log); read the records back from `dmesg`, add their syscalls to the set and repeat until
 * a run logs nothing. The kernel rate-limits these messages ("kauditd_printk_skb: N callbacks
 * suppressed"), hence the rounds with a pause between them.
 *
 * Records from comm "runc:[2:INIT]" are runc's own syscalls after it installed the filter (not
 * part of the ground truth, but a profile must allow them); any other comm is a syscall of the
 * image that strace did not see in its run (usually run-to-run variation, e.g. Go's sched_yield).
 *
 *   node --import tsx bench/corpus/audit.ts [--traces DIR] [names...]
 *
 * --traces DIR reads the traced sets from DIR/<name>.json (trace.ts --out); else traces first.
 * Needs root, dmesg, and "log" in /proc/sys/kernel/seccomp/actions_logged. Records are matched by
 * time window only: other containers denied or logged by seccomp at the same time would show up.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { sleep } from './docker.js';
import { type CorpusImage, selectImages } from './images.js';
import { runWithProfile } from './run.js';
import { NEWER_SYSCALLS } from '../../test/helpers/strace.js';
import { traceSyscalls } from './trace.js';

const execFileP = promisify(execFile);
const UNISTD = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
const X86_64_AUDIT_ARCH = 'c000003e';

export interface AuditOptions {
  /** Stop after this many runs (default 12). */
  maxRounds?: number;
  /** Pause between runs so the kernel's printk rate limit recovers (default 6 s). */
  pauseMs?: number;
  log?: (message: string) => void;
}

export interface AuditResult {
  /** Syscalls logged outside the allowed set, by the logging process's comm. */
  outside: Map<string, Set<string>>;
  rounds: number;
  /** Every run passed its smoke test. */
  allPassed: boolean;
  /** The last run logged nothing (the closure is complete). */
  converged: boolean;
}

let syscallNames: Promise<Map<number, string>> | undefined;

/** x86_64 syscall number -> name, from the kernel headers (linux-libc-dev) and NEWER_SYSCALLS. */
function syscallTable(): Promise<Map<number, string>> {
  syscallNames ??= (async () => {
    const table = new Map<number, string>();
    const text = await fs.readFile(UNISTD, 'utf8').catch(() => '');
    for (const match of text.matchAll(/^#define __NR_(\w+)\s+(\d+)/gm)) table.set(Number(match[2]), match[1] ?? '');
    for (const [nr, name] of Object.entries(NEWER_SYSCALLS)) if (!table.has(Number(nr))) table.set(Number(nr), name);
    return table;
  })();
  return syscallNames;
}

interface AuditRecord {
  time: number;
  comm: string;
  syscall: number;
}

async function kernelLog(): Promise<AuditRecord[]> {
  const { stdout } = await execFileP('dmesg', [], { maxBuffer: 64 << 20 });
  const out: AuditRecord[] = [];
  for (const line of stdout.split('\n')) {
    const time = /^\[\s*(\d+\.\d+)\]/.exec(line)?.[1];
    if (time === undefined || !line.includes('type=1326')) continue;
    if (!line.includes(`arch=${X86_64_AUDIT_ARCH}`)) continue;
    const comm = /comm="([^"]*)"/.exec(line)?.[1] ?? '?';
    const syscall = /syscall=(\d+)/.exec(line)?.[1];
    if (syscall !== undefined) out.push({ time: Number(time), comm, syscall: Number(syscall) });
  }
  return out;
}

async function lastKernelLogTime(): Promise<number> {
  const { stdout } = await execFileP('dmesg', [], { maxBuffer: 64 << 20 });
  const lines = stdout.trimEnd().split('\n');
  return Number(/^\[\s*(\d+\.\d+)\]/.exec(lines[lines.length - 1] ?? '')?.[1] ?? 0);
}

async function checkPrerequisites(): Promise<void> {
  const logged = await fs.readFile('/proc/sys/kernel/seccomp/actions_logged', 'utf8').catch(() => '');
  if (!logged.split(/\s+/).includes('log')) {
    throw new Error(`/proc/sys/kernel/seccomp/actions_logged (${JSON.stringify(logged.trim())}) lacks "log"`);
  }
  await lastKernelLogTime().catch((error: unknown) => {
    throw new Error(`dmesg is not readable: ${error instanceof Error ? error.message : String(error)}`);
  });
}

/** Runs `image` under allow(`allowed`) + LOG(everything else) until no run logs anything new. */
export async function auditOutside(image: CorpusImage, allowed: Iterable<string>, options: AuditOptions = {}): Promise<AuditResult> {
  await checkPrerequisites();
  const table = await syscallTable();
  const allow = new Set(allowed);
  const outside = new Map<string, Set<string>>();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `dockergate-audit-${image.name}-`));
  let allPassed = true;
  let rounds = 0;
  let converged = false;
  try {
    while (rounds < (options.maxRounds ?? 12)) {
      if (rounds > 0) await sleep(options.pauseMs ?? 6000);
      rounds++;
      const profile = {
        defaultAction: 'SCMP_ACT_LOG',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [{ names: [...allow].sort(), action: 'SCMP_ACT_ALLOW' }],
      };
      const profilePath = path.join(dir, 'profile.json');
      await fs.writeFile(profilePath, JSON.stringify(profile));
      const since = await lastKernelLogTime();
      const run = await runWithProfile(image, profilePath);
      if (!run.passed) allPassed = false;
      let added = 0;
      for (const record of await kernelLog()) {
        if (record.time <= since) continue;
        const name = table.get(record.syscall) ?? `syscall_${record.syscall}`;
        if (allow.has(name)) continue;
        allow.add(name);
        added++;
        let set = outside.get(record.comm);
        if (set === undefined) outside.set(record.comm, (set = new Set()));
        set.add(name);
      }
      options.log?.(`round ${rounds}: ${run.passed ? 'pass' : 'FAIL'}, ${added} new`);
      if (added === 0) {
        converged = true;
        break;
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  return { outside, rounds, allPassed, converged };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { traces: { type: 'string' }, verbose: { type: 'boolean', default: false } },
  });
  const log = values.verbose ? (m: string) => console.error(`  ${m}`) : undefined;
  for (const image of selectImages(positionals)) {
    const traced =
      values.traces !== undefined
        ? new Set<string>((JSON.parse(await fs.readFile(path.join(values.traces, `${image.name}.json`), 'utf8')) as { syscalls: string[] }).syscalls)
        : await traceSyscalls(image, log === undefined ? {} : { log });
    const result = await auditOutside(image, traced, log === undefined ? {} : { log });
    const parts = [...result.outside].map(([comm, names]) => `${comm}: ${[...names].sort().join(' ')}`);
    console.log(
      `${image.name.padEnd(22)} traced ${String(traced.size).padStart(3)}, ${result.rounds} rounds` +
        `${result.converged ? '' : ' (not converged)'}${result.allPassed ? '' : ' (a run FAILED)'}` +
        (parts.length === 0 ? ', nothing outside' : `\n    ${parts.join('\n    ')}`),
    );
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
