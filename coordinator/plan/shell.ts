/**
 * What a shell script runs, found with a real shell parser (mvdan/sh, through mvdan-sh): every
 * simple command's program name when it is a literal, with wrapper programs stripped (`exec`,
 * `env`, `gosu user`, `su-exec user`, `nice`, `timeout N`, `tini --`, ...), and whether the script
 * runs its own arguments as a command (`exec "$@"`, `"$@"`), which makes the image's Cmd a program.
 * Commands inside functions, `case` branches, `if`, loops and `$(...)` all count: any may run.
 */
import type { ShNode } from 'mvdan-sh';
import { InvalidInputError, LimitExceededError } from '../../infra/errors.js';

type Syntax = (typeof import('mvdan-sh'))['syntax'];
let syntax: Syntax;

/** Loads the parser (a 2 MB GopherJS module) once, before the first `scriptCommands`. */
export async function loadShellParser(): Promise<void> {
  syntax ??= (await import('mvdan-sh')).default.syntax;
}

export interface ScriptCommands {
  /** Literal program names or paths, in order of first appearance. */
  readonly programs: readonly string[];
  /** The script runs "$@" (or $1...) as a command. */
  readonly runsArguments: boolean;
  /** Commands whose program is computed (`$CMD args`, `"$x"`): reported as unresolved. */
  readonly computed: readonly string[];
}

/** Builtins and keywords that are not programs. */
const BUILTINS = new Set([
  ':', '.', 'source', 'true', 'false', 'echo', 'printf', 'test', '[', '[[', 'cd', 'export', 'unset', 'set', 'shift', 'exit', 'return', 'read',
  'local', 'declare', 'typeset', 'readonly', 'eval', 'trap', 'wait', 'umask', 'ulimit', 'alias', 'unalias', 'getopts', 'command', 'type', 'hash',
  'break', 'continue', 'let', 'pwd', 'kill', 'shopt', 'builtin', 'mapfile', 'readarray', 'printenv_', 'times', 'jobs', 'fg', 'bg',
]);
/** Programs that run their arguments as a command; the number is how many leading arguments to skip. */
type ArgumentSkip = (args: readonly string[]) => number;
const WRAPPERS: ReadonlyMap<string, ArgumentSkip> = new Map<string, ArgumentSkip>([
  ['exec', () => 0],
  ['command', () => 0],
  ['env', (args) => args.findIndex((a) => !a.startsWith('-') && !a.includes('='))],
  ['nice', (args) => (args[0] === '-n' ? 2 : args[0]?.startsWith('-') ? 1 : 0)],
  ['nohup', () => 0],
  ['timeout', (args) => args.findIndex((a) => !a.startsWith('-')) + 1],
  ['gosu', () => 1],
  ['su-exec', () => 1],
  ['setpriv', (args) => args.findIndex((a) => !a.startsWith('-'))],
  ['chroot', () => 1],
  ['tini', (args) => Math.max(0, args.indexOf('--') + 1)],
  ['dumb-init', (args) => args.findIndex((a) => !a.startsWith('-'))],
  ['xargs', (args) => args.findIndex((a) => !a.startsWith('-'))],
  ['stdbuf', (args) => args.findIndex((a) => !a.startsWith('-'))],
  ['taskset', (args) => args.findIndex((a) => !a.startsWith('-')) + 1],
]);

interface Word {
  /** The literal text, when the word is a plain literal (quotes allowed). */
  readonly literal?: string;
  /** `"$@"`, `$@`, `"$*"`, `$1`: the script's arguments. */
  readonly isArguments: boolean;
}

function wordOf(node: ShNode): Word {
  const parts = (node.Parts as ShNode[] | undefined) ?? [];
  let literal = '';
  let isArguments = false;
  let computed = false;
  const visit = (part: ShNode): void => {
    const type = syntax.NodeType(part);
    if (type === 'Lit') literal += String(part.Value);
    else if (type === 'SglQuoted') literal += String(part.Value);
    else if (type === 'DblQuoted') for (const inner of (part.Parts as ShNode[] | undefined) ?? []) visit(inner);
    else if (type === 'ParamExp') {
      const name = String((part.Param as ShNode | undefined)?.Value ?? '');
      if (name === '@' || name === '*' || /^[1-9]$/.test(name)) isArguments = true;
      computed = true;
    } else computed = true;
  };
  for (const part of parts) visit(part);
  return { ...(computed ? {} : { literal }), isArguments };
}

/** Nodes visited between two looks at the clock while walking a syntax tree. */
const NODES_PER_CLOCK_CHECK = 512;

/**
 * What `source` runs. Parsing is bounded by the source's size (the caller's `maxShellScriptBytes`);
 * walking the tree by `timeoutMs` (`shellParseTimeoutMs`): past it, a `LimitExceededError`.
 */
export function scriptCommands(source: string, name: string, timeoutMs: number): ScriptCommands {
  if (!syntax) throw new Error('scriptCommands before loadShellParser()');
  const deadlineAt = performance.now() + timeoutMs;
  let file: ShNode;
  try {
    file = syntax.NewParser().Parse(source, name);
  } catch (err) {
    throw new InvalidInputError(`${name}: shell syntax error: ${String((err as { Error?: () => string }).Error?.() ?? err)}`);
  }
  const programs = new Set<string>();
  const computed: string[] = [];
  let runsArguments = false;
  let visited = 0;
  let overdue = false;
  syntax.Walk(file, (node) => {
    if (overdue) return false;
    if (++visited % NODES_PER_CLOCK_CHECK === 0 && performance.now() > deadlineAt) {
      overdue = true;
      return false;
    }
    if (!node || syntax.NodeType(node) !== 'CallExpr') return true;
    const words = ((node.Args as ShNode[] | undefined) ?? []).map(wordOf);
    let rest = words;
    // Strip wrappers: `exec gosu app "$@"` runs "$@".
    for (let guard = 0; guard < 8 && rest.length > 0; guard++) {
      const head = rest[0]!.literal;
      const skip = head === undefined ? undefined : WRAPPERS.get(head.split('/').pop()!);
      if (!skip) break;
      const args = rest.slice(1).map((w) => w.literal ?? '$');
      const count = skip(args);
      rest = rest.slice(1 + Math.max(0, count));
    }
    const head = rest[0];
    if (!head) return true;
    // `trap 'commands' EXIT`: the string is shell source that runs later (its own time budget is what remains).
    if (head.literal === 'trap' && rest[1]?.literal) {
      const inner = scriptCommands(rest[1].literal, `${name} (trap)`, Math.max(0, deadlineAt - performance.now()));
      for (const program of inner.programs) programs.add(program);
      computed.push(...inner.computed);
      return true;
    }
    if (head.isArguments) runsArguments = true;
    else if (head.literal === undefined) computed.push(`a computed command at line ${String((node.Pos as { Line?: () => number } | undefined)?.Line?.() ?? '?')}`);
    else if (head.literal !== '' && !BUILTINS.has(head.literal)) programs.add(head.literal);
    return true;
  });
  // Stopping the walk is how the deadline ends it: an exception thrown inside the callback would cross GopherJS.
  if (overdue) throw new LimitExceededError('shellParseTimeoutMs', timeoutMs, `walking the syntax tree of ${name}`);
  return { programs: [...programs], runsArguments, computed };
}
