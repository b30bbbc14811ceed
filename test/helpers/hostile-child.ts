/**
 * Runs one hostile case in this process, for `test/hostile-isolation.test.ts`:
 * `node --import tsx test/helpers/hostile-child.ts inspect|scan INDEX SANDBOX`. The case's input
 * and cache live in SANDBOX (the parent watches what is opened outside it). Prints one JSON line:
 * `{"ok":true,"maxRssKiB":N}` or `{"ok":false,"error":"...",...}`; exits 0 either way (a crash exits otherwise).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { type CaseMark, END_MARKER, runCase, runScanCase, START_MARKER } from './hostile-cases.js';
import { INSPECT_CASES, PLAN_CASES } from './hostile-suite.js';

const [kind, index, sandbox] = process.argv.slice(2);
const number = Number(index);
/** Creating these files marks, in the parent's strace log, where dockergate's own accesses begin and end. */
const mark: CaseMark = async (phase) => {
  await fs.writeFile(path.join(sandbox!, phase === 'start' ? START_MARKER : END_MARKER), '');
};
try {
  if (kind === 'inspect') await runCase(INSPECT_CASES[number]!, sandbox, mark);
  else if (kind === 'scan') await runScanCase(PLAN_CASES[number]!, sandbox, mark);
  else throw new Error(`unknown kind ${kind}`);
  report({ ok: true });
} catch (err) {
  report({ ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
}

/** The outcome and this process's peak RSS (worker threads included: they share the process). */
function report(outcome: { ok: boolean; error?: string }): void {
  process.stdout.write(`${JSON.stringify({ ...outcome, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
}
