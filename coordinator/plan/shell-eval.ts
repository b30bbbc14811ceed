/**
 * What a shell script runs, evaluated with what is known before the container starts: its
 * arguments (the image's Cmd, or a wrapper's), `$0`, the image's ENV. The script is parsed with a
 * real shell parser (mvdan/sh, through mvdan-sh) and executed abstractly:
 *
 * - values are known strings or unknown (`null`): a variable the script does not set and the image
 *   does not define may be set from outside (`docker run -e`), so it is unknown, never empty;
 * - every path through the script is followed as its own "world" (variables, positional
 *   parameters, functions); a condition over known values takes only the branch that runs
 *   (`[`/`test`, `[[ ]]`, `case`, `&&`/`||`, `true`/`false`), an unknown one takes both;
 * - `exec` and `exit` end a world, `return` ends a function call, `set --`/`shift` change the
 *   positional parameters, `.`/`source` run a file of the image in the same world, `eval` and `trap`
 *   strings are parsed and run when known, `$(...)` runs in a copy of its world (its value unknown);
 * - loops over a known finite list run once per item; other loops run their body once from a world
 *   where everything the body assigns is unknown (which covers every iteration).
 *
 * Invariant (soundness): every external command some run of the script can start is in `runs`, with
 * each argument either its exact text or unknown; a command whose program name cannot be known is in
 * `computed` with its line. Imprecision only ever adds runs or unknowns. When worlds multiply past
 * `MAX_WORLDS` they are joined into one (values that differ become unknown), which keeps that invariant.
 */
import type { ShNode } from 'mvdan-sh';
import { InvalidInputError, LimitExceededError } from '../../infra/errors.js';
import { DEFAULT_PATH } from './entrypoint.js';

type Syntax = (typeof import('mvdan-sh'))['syntax'];
let syntax: Syntax;
/** Operator codes of the parser's tokens (Go constants of mvdan.cc/sh/v3/syntax), read from the parser itself. */
let ops: Operators;

interface Operators {
  readonly and: number;
  readonly or: number;
  readonly pipe: number;
  readonly pipeAll: number;
  readonly expansion: ReadonlyMap<number, string>;
  readonly caseFallThrough: ReadonlySet<number>;
  readonly test: ReadonlyMap<number, string>;
}

/** Loads the parser (a 2 MB GopherJS module) once, before the first evaluation. */
export async function loadShellParser(): Promise<void> {
  if (syntax) return;
  syntax = (await import('mvdan-sh')).default.syntax;
  ops = calibrate();
}

function parse(source: string, name: string): ShNode {
  try {
    return syntax.NewParser().Parse(source, name);
  } catch (err) {
    throw new InvalidInputError(`${name}: shell syntax error: ${String((err as { Error?: () => string }).Error?.() ?? err)}`);
  }
}

function calibrate(): Operators {
  const command = (source: string): ShNode => (parse(source, 'calibration').Stmts as ShNode[])[0]!.Cmd as ShNode;
  const opOf = (node: ShNode): number => node.Op as number;
  const expansion = new Map<number, string>();
  for (const op of [':-', '-', ':=', '=', ':+', '+', ':?', '?', '##', '#', '%%', '%', '^^', '^', ',,', ',']) {
    const call = command(`echo \${x${op}y}`);
    const part = ((call.Args as ShNode[])[1]!.Parts as ShNode[])[0]!;
    expansion.set(opOf(part.Exp as ShNode), op);
  }
  const fallThrough = new Set<number>();
  const items = command('case x in a) ;& b) ;;& c) ;; esac').Items as ShNode[];
  fallThrough.add(opOf(items[0]!)).add(opOf(items[1]!));
  const test = new Map<number, string>();
  const binary = (source: string): number => opOf(command(`[[ ${source} ]]`).X as ShNode);
  for (const op of ['==', '=', '!=', '=~', '-eq', '-ne', '-lt', '-le', '-gt', '-ge', '<', '>', '&&', '||', '-nt', '-ot', '-ef']) test.set(binary(`a ${op} b`), op);
  for (const op of ['-z', '-n', '!']) test.set(binary(`${op} a`), op);
  return {
    and: opOf(command('a && b')),
    or: opOf(command('a || b')),
    pipe: opOf(command('a | b')),
    pipeAll: opOf(command('a |& b')),
    expansion,
    caseFallThrough: fallThrough,
    test,
  };
}

/** A list of fields: each a known text or unknown (`null`); `more`: any number of unknown fields may follow. */
export interface ArgList {
  readonly items: readonly (string | null)[];
  readonly more: boolean;
}

export function knownArgs(items: readonly string[]): ArgList {
  return { items, more: false };
}

/** An external command the script may start (its name is known: `argv.items[0]` is a string). */
export interface ShellRun {
  readonly argv: ArgList;
  readonly line: number;
  /** `PATH` and `LD_LIBRARY_PATH` as the script set them for it (prefix assignments included; null: unknown); absent: as given. */
  readonly searchPaths: { readonly PATH?: string | null; readonly LD_LIBRARY_PATH?: string | null };
}

export interface ShellInput {
  readonly source: string;
  /** For messages: the script's path, or `<shell> -c`. */
  readonly name: string;
  /** `$0`. */
  readonly arg0: string;
  readonly args: ArgList;
  /** The image's ENV (`NAME=value`), the known environment. */
  readonly env: readonly string[];
  /** Finds the file `.`/`source` reads (a name without `/` is looked up in PATH); null when the image has none. */
  readonly findSourced: (name: string, path: string | null) => string | null;
  /** Contents of sourced files read so far (an Error: why a file cannot be read). */
  readonly sourced: ReadonlyMap<string, string | Error>;
  readonly timeoutMs: number;
  /** Deepest nesting of function calls, `.` and `eval` (`maxShellCallDepth`). */
  readonly maxCallDepth: number;
}

export interface ShellEvaluation {
  readonly runs: readonly ShellRun[];
  /** Commands whose program cannot be known statically, with their line (each makes the caller fall back). */
  readonly computed: readonly string[];
  /** Files `.`/`source` read that are not in `sourced` yet: read them and evaluate again. */
  readonly wanted: readonly string[];
  /**
   * Variables some run of the script assigns (`all`: a name that is not known): what the programs
   * it starts inherit of them is not the image's ENV.
   */
  readonly assigned: readonly string[] | 'all';
}

/** More worlds than this are joined into one. */
const MAX_WORLDS = 32;
/** A loop over a known list runs its body once per item up to this many items, else as an unknown loop. */
const MAX_KNOWN_ITERATIONS = 64;
const STEPS_PER_CLOCK_CHECK = 256;

/** What a variable holds: `set` false is known-unset; `value` null is unknown. */
interface VarValue {
  readonly set: boolean | null;
  readonly value: string | null;
}
const UNKNOWN: VarValue = { set: null, value: null };
const UNSET: VarValue = { set: false, value: '' };

type Flow = 'normal' | 'return' | 'break' | 'continue';

interface World {
  vars: Map<string, VarValue>;
  positional: ArgList;
  functions: Map<string, ShNode>;
  /** Exit status of the last command: true = 0, false = non-zero, null = unknown. */
  status: boolean | null;
  flow: Flow;
  /** A variable whose name was computed was assigned: the image's ENV values are no longer known. */
  envUnknown: boolean;
  /** Saved values of `local` variables, one map per active function call. */
  frames: Map<string, VarValue | undefined>[];
  depth: number;
}

function cloneWorld(world: World): World {
  return {
    vars: new Map(world.vars),
    positional: world.positional,
    functions: new Map(world.functions),
    status: world.status,
    flow: world.flow,
    envUnknown: world.envUnknown,
    frames: world.frames.map((frame) => new Map(frame)),
    depth: world.depth,
  };
}

const BUILTINS_WITHOUT_EFFECT = new Set([
  'echo', 'printf', 'cd', 'pwd', 'umask', 'ulimit', 'wait', 'kill', 'unalias', 'hash', 'type', 'times', 'jobs', 'fg', 'bg',
  'shopt', 'let', 'enable', 'help', 'history', 'disown', 'suspend', 'logout', 'dirs', 'pushd', 'popd', 'caller', 'compgen', 'complete', 'bind',
]);

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function evaluateScript(input: ShellInput): ShellEvaluation {
  if (!syntax) throw new Error('evaluateScript before loadShellParser()');
  return new Evaluator(input).run();
}

class Evaluator {
  private readonly runs = new Map<string, ShellRun>();
  private readonly computed: string[] = [];
  private readonly wanted = new Set<string>();
  private readonly env = new Map<string, string>();
  private readonly deadlineAt: number;
  private steps = 0;
  private readonly name: string;
  private readonly assignedNames = new Set<string>();
  private anyNameAssigned = false;
  /** Prefix assignments (`PATH=x cmd`) of the simple command being run. */
  private prefix: ReadonlyMap<string, VarValue> = new Map();
  /** The script, then each file being sourced: `$BASH_SOURCE` is the last. */
  private readonly files: string[];

  constructor(private readonly input: ShellInput) {
    for (const entry of input.env) {
      const at = entry.indexOf('=');
      if (at > 0) this.env.set(entry.slice(0, at), entry.slice(at + 1));
    }
    this.deadlineAt = performance.now() + input.timeoutMs;
    this.name = input.name;
    this.files = [input.arg0];
  }

  run(): ShellEvaluation {
    const file = parse(this.input.source, this.name);
    const world: World = { vars: new Map(), positional: this.input.args, functions: new Map(), status: true, flow: 'normal', envUnknown: false, frames: [], depth: 0 };
    this.stmts(file.Stmts as ShNode[], [world]);
    return { runs: [...this.runs.values()], computed: this.computed, wanted: [...this.wanted], assigned: this.anyNameAssigned ? 'all' : [...this.assignedNames].sort() };
  }

  private tick(): void {
    if (++this.steps % STEPS_PER_CLOCK_CHECK === 0 && performance.now() > this.deadlineAt) {
      throw new LimitExceededError('shellParseTimeoutMs', this.input.timeoutMs, `evaluating ${this.name}`);
    }
  }

  private record(argv: ArgList, line: number, searchPaths: ShellRun['searchPaths']): void {
    const key = JSON.stringify([argv, searchPaths]);
    if (!this.runs.has(key)) this.runs.set(key, { argv, line, searchPaths });
  }

  /**
   * PATH and LD_LIBRARY_PATH as the script set them for a command started now (`prefix`: its
   * `VAR=x cmd` assignments); absent when the script did not set them (the command inherits
   * what the script was given).
   */
  private searchPathsOf(world: World, prefix: ReadonlyMap<string, VarValue>): ShellRun['searchPaths'] {
    const out: { PATH?: string | null; LD_LIBRARY_PATH?: string | null } = {};
    for (const name of ['PATH', 'LD_LIBRARY_PATH'] as const) {
      const value = prefix.get(name) ?? world.vars.get(name) ?? (world.envUnknown ? UNKNOWN : undefined);
      if (value && value.set !== false) out[name] = value.set === null ? null : value.value;
    }
    return out;
  }

  private unknownCommand(what: string, line: number): void {
    const text = `${what} at line ${line}`;
    if (!this.computed.includes(text)) this.computed.push(text);
  }

  // ---- statements ------------------------------------------------------------------------

  /** Runs statements in each world; worlds that exit or exec are gone from the result. */
  private stmts(list: readonly ShNode[], worlds: World[]): World[] {
    let current = worlds;
    for (const stmt of list) {
      const live = current.filter((w) => w.flow === 'normal');
      const held = current.filter((w) => w.flow !== 'normal');
      current = [...held, ...this.limit(this.stmt(stmt, live))];
      if (current.length === 0) break;
    }
    return current;
  }

  private stmt(stmt: ShNode, worlds: World[]): World[] {
    if (worlds.length === 0) return worlds;
    this.tick();
    const line = lineOf(stmt);
    for (const redirect of (stmt.Redirs as ShNode[] | undefined) ?? []) {
      for (const world of worlds) {
        if (redirect.Word) this.expandString(redirect.Word as ShNode, world, line);
        if (redirect.Hdoc) this.expandString(redirect.Hdoc as ShNode, world, line);
      }
    }
    if (stmt.Background) {
      for (const world of worlds) this.command(stmt.Cmd as ShNode, [cloneWorld(world)], line);
      for (const world of worlds) world.status = true;
      return worlds;
    }
    const after = stmt.Cmd ? this.command(stmt.Cmd as ShNode, worlds, line) : worlds;
    if (stmt.Negated) for (const world of after) world.status = world.status === null ? null : !world.status;
    return after;
  }

  private command(node: ShNode, worlds: World[], line: number): World[] {
    const type = syntax.NodeType(node);
    switch (type) {
      case 'CallExpr':
        return worlds.flatMap((world) => this.call(node, world, line));
      case 'BinaryCmd':
        return this.binary(node, worlds, line);
      case 'Block':
        return this.stmts(node.Stmts as ShNode[], worlds);
      case 'Subshell':
        for (const world of worlds) {
          this.stmts(node.Stmts as ShNode[], [cloneWorld(world)]);
          world.status = null;
        }
        return worlds;
      case 'IfClause':
        return this.ifClause(node, worlds);
      case 'CaseClause':
        return worlds.flatMap((world) => this.caseClause(node, world, line));
      case 'WhileClause':
        return this.whileClause(node, worlds);
      case 'ForClause':
        return worlds.flatMap((world) => this.forClause(node, world, line));
      case 'FuncDecl':
        for (const world of worlds) {
          world.functions.set(String((node.Name as ShNode).Value), node.Body as ShNode);
          world.status = true;
        }
        return worlds;
      case 'DeclClause':
        for (const world of worlds) this.declare(node, world, line);
        return worlds;
      case 'TestClause':
        for (const world of worlds) world.status = this.testExpr(node.X as ShNode, world, line);
        return worlds;
      case 'ArithmCmd':
      case 'LetClause':
        for (const world of worlds) world.status = null;
        return worlds;
      case 'TimeClause':
      case 'CoprocClause':
        return node.Stmt ? this.stmt(node.Stmt as ShNode, worlds) : worlds;
      default:
        this.unknownCommand(`a shell construct (${type}) the evaluator does not follow`, line);
        for (const world of worlds) world.status = null;
        return worlds;
    }
  }

  private binary(node: ShNode, worlds: World[], line: number): World[] {
    const op = node.Op as number;
    if (op === ops.pipe || op === ops.pipeAll) {
      // Each part of a pipeline runs in a subshell: its commands count, its assignments do not.
      for (const world of worlds) {
        this.stmt(node.X as ShNode, [cloneWorld(world)]);
        this.stmt(node.Y as ShNode, [cloneWorld(world)]);
        world.status = null;
      }
      return worlds;
    }
    const left = this.stmt(node.X as ShNode, worlds);
    const out: World[] = [];
    const next: World[] = [];
    for (const world of left) {
      if (world.flow !== 'normal') out.push(world);
      else if (world.status === null) {
        out.push(world);
        next.push(cloneWorld(world));
      } else if (world.status === (op === ops.and)) next.push(world);
      else out.push(world);
    }
    if (op !== ops.and && op !== ops.or) this.unknownCommand('an operator the evaluator does not know', line);
    return [...out, ...this.stmt(node.Y as ShNode, next)];
  }

  private ifClause(node: ShNode, worlds: World[]): World[] {
    const cond = (node.Cond as ShNode[] | undefined) ?? [];
    // A plain `else` is an IfClause without a condition.
    if (cond.length === 0) return this.stmts(node.Then as ShNode[], worlds);
    const tested = this.stmts(cond, worlds);
    const then: World[] = [];
    const otherwise: World[] = [];
    const out: World[] = [];
    for (const world of tested) {
      if (world.flow !== 'normal') out.push(world);
      else if (world.status === true) then.push(world);
      else if (world.status === false) otherwise.push(world);
      else {
        then.push(world);
        otherwise.push(cloneWorld(world));
      }
    }
    out.push(...this.stmts(node.Then as ShNode[], then));
    if (node.Else) out.push(...this.ifClause(node.Else as ShNode, otherwise));
    else {
      for (const world of otherwise) world.status = true;
      out.push(...otherwise);
    }
    return out;
  }

  private caseClause(node: ShNode, world: World, line: number): World[] {
    const subject = this.expandString(node.Word as ShNode, world, line);
    let waiting: World[] = [world];
    const out: World[] = [];
    let fallingThrough: World[] = [];
    for (const item of (node.Items as ShNode[] | undefined) ?? []) {
      const matched: World[] = [...fallingThrough];
      const unmatched: World[] = [];
      for (const candidate of waiting) {
        const verdict = this.caseMatches(subject, item.Patterns as ShNode[], candidate, line);
        if (verdict === true) matched.push(candidate);
        else if (verdict === false) unmatched.push(candidate);
        else {
          matched.push(candidate);
          unmatched.push(cloneWorld(candidate));
        }
      }
      waiting = unmatched;
      const ran = this.stmts(item.Stmts as ShNode[], matched);
      if (ops.caseFallThrough.has(item.Op as number)) fallingThrough = ran.filter((w) => w.flow === 'normal');
      else {
        fallingThrough = [];
        out.push(...ran);
      }
    }
    for (const rest of waiting) rest.status = true;
    return [...out, ...fallingThrough, ...waiting];
  }

  private caseMatches(subject: string | null, patterns: readonly ShNode[], world: World, line: number): boolean | null {
    let verdict: boolean | null = false;
    for (const word of patterns) {
      const pattern = this.expandPattern(word, world, line);
      if (pattern === null || subject === null) verdict = null;
      else if (pattern.test(subject)) return true;
    }
    return verdict;
  }

  private whileClause(node: ShNode, worlds: World[]): World[] {
    const cond = node.Cond as ShNode[];
    const body = node.Do as ShNode[];
    const until = node.Until === true;
    // Known conditions first (`while [ $# -gt 0 ]; do case $1 in ...; esac; shift; done` over known arguments).
    if (!containsDeepLoopControl(body)) {
      let current = worlds.map(cloneWorld);
      const done: World[] = [];
      for (let i = 0; i < MAX_KNOWN_ITERATIONS && current.length > 0; i++) {
        const tested = this.stmts(cond, current);
        if (tested.some((w) => w.flow === 'normal' && w.status === null)) break;
        const goOn = tested.filter((w) => w.flow === 'normal' && w.status === !until);
        done.push(...tested.filter((w) => w.flow !== 'normal' || w.status === until));
        current = this.afterIteration(this.stmts(body, goOn), done);
        if (current.length === 0) {
          for (const w of done) if (w.flow === 'normal') w.status = true;
          return done;
        }
      }
    }
    return this.unknownLoop([...cond, ...body], worlds, () => null);
  }

  /**
   * Worlds after one run of a loop body: `break` leaves the loop (into `done`), `continue` and the
   * normal end go on to the next iteration, `return` leaves it too.
   */
  private afterIteration(worlds: World[], done: World[]): World[] {
    const next: World[] = [];
    for (const w of worlds) {
      if (w.flow === 'break') {
        w.flow = 'normal';
        done.push(w);
      } else if (w.flow === 'continue') {
        w.flow = 'normal';
        next.push(w);
      } else if (w.flow === 'normal') next.push(w);
      else done.push(w);
    }
    return next;
  }

  private forClause(node: ShNode, world: World, line: number): World[] {
    const loop = node.Loop as ShNode;
    const body = node.Do as ShNode[];
    if (syntax.NodeType(loop) !== 'WordIter') return this.unknownLoop(body, [world], () => null);
    const variable = String((loop.Name as ShNode).Value);
    const inGiven = (loop.InPos as { IsValid(): boolean }).IsValid();
    const items: ArgList = inGiven ? this.expandFields(loop.Items as ShNode[], world, line) : world.positional;
    if (!items.more && items.items.length <= MAX_KNOWN_ITERATIONS && !containsDeepLoopControl(body)) {
      let current = [world];
      const done: World[] = [];
      for (const item of items.items) {
        for (const w of current) this.assign(w, variable, item === null ? UNKNOWN : { set: true, value: item });
        current = this.afterIteration(this.stmts(body, current), done);
        if (current.length === 0) break;
      }
      return [...done, ...current];
    }
    return this.unknownLoop(body, [world], (w) => w.vars.set(variable, UNKNOWN));
  }

  /**
   * A loop whose iterations are not known: the body runs once from a world where everything the
   * body (or any function) assigns is unknown; that world also stands for the state after the loop.
   */
  private unknownLoop(body: readonly ShNode[], worlds: World[], prepare: (world: World) => void): World[] {
    const out: World[] = [];
    for (const world of worlds) {
      const havoc = assignedIn(body, world.functions);
      for (const name of havoc.names) this.assign(world, name, UNKNOWN);
      if (havoc.positional) world.positional = { items: [], more: true };
      world.status = null;
      prepare(world);
      for (const w of this.stmts(body, [cloneWorld(world)])) if (w.flow === 'return') out.push(w);
      out.push(world);
    }
    return out;
  }

  private declare(node: ShNode, world: World, line: number): void {
    const variant = String((node.Variant as ShNode | undefined)?.Value ?? '');
    for (const assign of (node.Args as ShNode[] | undefined) ?? []) {
      const name = assign.Name ? String((assign.Name as ShNode).Value) : undefined;
      if (!name) {
        // `export "$var"="$val"`, or a flag word (`-g`): a name that is not known may be any variable.
        const assignment = assign.Value ? this.assignmentWord(assign.Value as ShNode, world, line) : undefined;
        if (assignment?.name === null) this.havocAll(world);
        else if (assignment && NAME.test(assignment.name)) this.assign(world, assignment.name, assignment.value);
        continue;
      }
      if (variant === 'local' || ((variant === 'declare' || variant === 'typeset') && world.frames.length > 0)) {
        const frame = world.frames[world.frames.length - 1];
        if (frame && !frame.has(name)) frame.set(name, world.vars.get(name));
      }
      if (assign.Naked) {
        if (variant === 'local' || variant === 'declare' || variant === 'typeset') this.assign(world, name, UNKNOWN);
        continue;
      }
      this.assign(world, name, this.assignedValue(assign, world, line));
    }
    world.status = true;
  }

  private assignedValue(assign: ShNode, world: World, line: number): VarValue {
    if (assign.Array || assign.Index || assign.Append) return UNKNOWN;
    const value = assign.Value ? this.expandString(assign.Value as ShNode, world, line) : '';
    return value === null ? UNKNOWN : { set: true, value };
  }

  private assign(world: World, name: string, value: VarValue): void {
    world.vars.set(name, value);
    this.assignedNames.add(name);
  }

  // ---- simple commands -------------------------------------------------------------------

  private call(node: ShNode, world: World, line: number): World[] {
    const assigns = (node.Assigns as ShNode[] | undefined) ?? [];
    const words = (node.Args as ShNode[] | undefined) ?? [];
    world.status = true;
    if (words.length === 0) {
      for (const assign of assigns) this.assign(world, String((assign.Name as ShNode).Value), this.assignedValue(assign, world, line));
      return [world];
    }
    // Prefix assignments (`VAR=x cmd`) only reach cmd's environment.
    const prefix = new Map<string, VarValue>();
    for (const assign of assigns) prefix.set(String((assign.Name as ShNode).Value), this.assignedValue(assign, world, line));
    const argv = this.expandFields(words, world, line);
    const outer = this.prefix;
    this.prefix = prefix;
    try {
      return this.runCommand(argv, world, line, true);
    } finally {
      this.prefix = outer;
    }
  }

  private runCommand(argv: ArgList, world: World, line: number, functions: boolean): World[] {
    const name = argv.items[0];
    if (name === undefined) {
      // Every word expanded to nothing (an unknown unquoted expansion may still give a command).
      if (argv.more) this.unknownCommand('a computed command', line);
      return [world];
    }
    if (name === null) {
      this.unknownCommand('a computed command', line);
      world.status = null;
      return [world];
    }
    const args: ArgList = { items: argv.items.slice(1), more: argv.more };
    const fn = functions ? world.functions.get(name) : undefined;
    if (fn) return this.callFunction(fn, args, world, line);
    switch (name) {
      case ':':
      case 'true':
        world.status = true;
        return [world];
      case 'false':
        world.status = false;
        return [world];
      case 'exit':
        return [];
      case 'return': {
        // `return N` is the call's status; plain `return` keeps the last command's.
        const code = args.items[0];
        if (code !== undefined || args.more) world.status = typeof code === 'string' && /^\d+$/.test(code) ? Number(code) % 256 === 0 : null;
        world.flow = 'return';
        return [world];
      }
      case 'break':
        world.flow = 'break';
        return [world];
      case 'continue':
        world.flow = 'continue';
        return [world];
      case 'exec': {
        const rest = skipOptions(args, new Set(['-a']));
        if (rest.items.length === 0 && !rest.more) return [world];
        this.external(rest, line, world);
        return [];
      }
      case 'command': {
        if (args.items.some((a) => a === '-v' || a === '-V')) {
          world.status = null;
          return [world];
        }
        return this.runCommand(skipOptions(args, new Set()), world, line, false);
      }
      case 'builtin':
        return this.runCommand(args, world, line, false);
      case 'set':
        this.set(args, world);
        return [world];
      case 'shift':
        this.shift(args, world);
        return [world];
      case '.':
      case 'source':
        return this.source(args, world, line);
      case 'eval':
        return this.evalString(args, world, line, 'eval');
      case 'trap':
        this.trap(args, world, line);
        return [world];
      case 'test':
        world.status = args.more ? null : testArgs(args.items);
        return [world];
      case '[':
        world.status = args.more || args.items[args.items.length - 1] !== ']' ? null : testArgs(args.items.slice(0, -1));
        return [world];
      case 'export':
      case 'readonly':
      case 'local':
      case 'declare':
      case 'typeset':
        // The POSIX form of these (in bash's grammar they are DeclClause nodes).
        for (const word of args.items) {
          if (word === null) continue;
          const at = word.indexOf('=');
          const variable = at > 0 ? word.slice(0, at) : word;
          if (!NAME.test(variable)) continue;
          if (name === 'local') {
            const frame = world.frames[world.frames.length - 1];
            if (frame && !frame.has(variable)) frame.set(variable, world.vars.get(variable));
          }
          if (at > 0) this.assign(world, variable, { set: true, value: word.slice(at + 1) });
          else if (name === 'local') this.assign(world, variable, UNKNOWN);
        }
        if (args.more) this.havocAll(world);
        world.status = true;
        return [world];
      case 'unset':
        if (args.items[0] === '-f') {
          for (const word of args.items.slice(1)) if (word !== null) world.functions.delete(word);
          world.status = true;
          return [world];
        }
        for (const word of args.items) if (word !== null && NAME.test(word)) this.assign(world, word, UNSET);
        if (args.more) this.havocAll(world);
        world.status = true;
        return [world];
      case 'read':
      case 'getopts':
      case 'mapfile':
      case 'readarray':
        for (const word of args.items) if (word !== null && NAME.test(word)) this.assign(world, word, UNKNOWN);
        this.assign(world, 'REPLY', UNKNOWN);
        if (name === 'getopts') for (const v of ['OPTARG', 'OPTIND']) this.assign(world, v, UNKNOWN);
        if (args.more) this.havocAll(world);
        world.status = null;
        return [world];
      case 'alias':
        // dash expands aliases in scripts too: what an alias runs is not followed.
        if (args.more || args.items.some((word) => word === null || word.includes('='))) this.unknownCommand('an alias definition', line);
        world.status = true;
        return [world];
      default:
        if (BUILTINS_WITHOUT_EFFECT.has(name)) {
          if (name === 'printf' && args.items[0] === '-v' && typeof args.items[1] === 'string') this.assign(world, args.items[1], UNKNOWN);
          if (name === 'cd') this.assign(world, 'PWD', UNKNOWN);
          world.status = null;
          return [world];
        }
        this.external(argv, line, world);
        world.status = null;
        return [world];
    }
  }

  private external(argv: ArgList, line: number, world: World): void {
    if (typeof argv.items[0] !== 'string') {
      this.unknownCommand('a computed command', line);
      return;
    }
    this.record(argv, line, this.searchPathsOf(world, this.prefix));
  }

  private havocAll(world: World): void {
    for (const name of world.vars.keys()) world.vars.set(name, UNKNOWN);
    world.envUnknown = true;
    this.anyNameAssigned = true;
  }

  private callFunction(body: ShNode, args: ArgList, world: World, line: number): World[] {
    if (world.depth >= this.input.maxCallDepth) {
      this.unknownCommand(`function calls nested deeper than maxShellCallDepth (${this.input.maxCallDepth})`, line);
      return [world];
    }
    const saved = world.positional;
    world.positional = args;
    world.frames.push(new Map());
    world.depth++;
    const after = this.stmt(body, [world]);
    for (const w of after) {
      w.positional = saved;
      const frame = w.frames.pop();
      for (const [name, value] of frame ?? []) {
        if (value === undefined) w.vars.delete(name);
        else w.vars.set(name, value);
      }
      w.depth--;
      if (w.flow === 'return') w.flow = 'normal';
    }
    return after;
  }

  /** `set [options] [--] [args]`: operands (or a `--`) replace the positional parameters. */
  private set(args: ArgList, world: World): void {
    const items = args.items;
    let i = 0;
    let ended = false;
    while (i < items.length) {
      const item = items[i];
      if (item === null || item === undefined) {
        // An unknown word among `set`'s options may be `--` or an operand.
        world.positional = { items: [], more: true };
        return;
      }
      if (item === '--' || item === '-') {
        ended = true;
        i++;
        break;
      }
      // `-o name`, also at the end of a cluster (`set -Eeo pipefail`).
      if (/^[-+][A-Za-z]*o$/.test(item)) i += 2;
      else if ((item.startsWith('-') || item.startsWith('+')) && item.length > 1) i++;
      else break;
    }
    if (ended || i < items.length || args.more) world.positional = { items: items.slice(i), more: args.more };
    world.status = true;
  }

  /** `shift [n]`: more than there are fails and changes nothing. */
  private shift(args: ArgList, world: World): void {
    const word = args.items[0];
    const count = word === undefined && !args.more ? 1 : typeof word === 'string' && /^\d+$/.test(word) ? Number(word) : null;
    const { items, more } = world.positional;
    if (count === null) {
      world.positional = { items: [], more: true };
      world.status = null;
    } else if (count <= items.length) {
      world.positional = { items: items.slice(count), more };
      world.status = true;
    } else if (more) {
      world.positional = { items: [], more: true };
      world.status = null;
    } else world.status = false;
  }

  private source(args: ArgList, world: World, line: number): World[] {
    const target = args.items[0];
    if (target === undefined && !args.more) return [world];
    if (typeof target !== 'string') {
      this.unknownCommand('`.` of a computed file', line);
      return [world];
    }
    if (world.depth >= this.input.maxCallDepth) {
      this.unknownCommand(`\`.\` nested deeper than maxShellCallDepth (${this.input.maxCallDepth})`, line);
      return [world];
    }
    const path = this.input.findSourced(target, this.lookup(world, 'PATH').value);
    if (path === null) {
      // The shell fails to read it (a POSIX shell exits): nothing of it runs.
      world.status = false;
      return [world];
    }
    const text = this.input.sourced.get(path);
    if (text === undefined) {
      this.wanted.add(path);
      world.status = null;
      return [world];
    }
    if (text instanceof Error) {
      this.unknownCommand(`\`.\` of ${path}, which cannot be read (${text.message})`, line);
      return [world];
    }
    const file = parse(text, path);
    const withArgs = args.items.length > 1 || args.more;
    const saved = world.positional;
    if (withArgs) world.positional = { items: args.items.slice(1), more: args.more };
    world.depth++;
    this.files.push(path);
    const after = this.stmts(file.Stmts as ShNode[], [world]);
    this.files.pop();
    for (const w of after) {
      w.depth--;
      if (withArgs) w.positional = saved;
      if (w.flow === 'return') w.flow = 'normal';
    }
    return after;
  }

  private evalString(args: ArgList, world: World, line: number, what: string): World[] {
    if (args.more || args.items.some((a) => a === null)) {
      this.unknownCommand(`${what} of a computed string`, line);
      return [world];
    }
    if (world.depth >= this.input.maxCallDepth) {
      this.unknownCommand(`${what} nested deeper than maxShellCallDepth (${this.input.maxCallDepth})`, line);
      return [world];
    }
    const file = parse((args.items as string[]).join(' '), `${this.name} (${what} at line ${line})`);
    world.depth++;
    const after = this.stmts(file.Stmts as ShNode[], [world]);
    for (const w of after) w.depth--;
    return after;
  }

  private trap(args: ArgList, world: World, line: number): void {
    const action = args.items[0];
    if (action === undefined || action === '-' || action === '' || /^-[lp]$/.test(action ?? '')) return;
    // The handler may run at any later point: in a copy of this world, as good as any.
    this.evalString({ items: [action], more: false }, cloneWorld(world), line, 'trap');
  }

  // ---- tests -----------------------------------------------------------------------------

  private testExpr(node: ShNode, world: World, line: number): boolean | null {
    const type = syntax.NodeType(node);
    if (type === 'Word') {
      const text = this.expandString(node, world, line);
      return text === null ? null : text !== '';
    }
    if (type === 'ParenTest') return this.testExpr(node.X as ShNode, world, line);
    const op = ops.test.get(node.Op as number);
    if (type === 'UnaryTest') {
      if (op === '!') return not(this.testExpr(node.X as ShNode, world, line));
      const text = this.wordText(node.X as ShNode, world, line);
      if (text === null) return null;
      if (op === '-z') return text === '';
      if (op === '-n') return text !== '';
      return null; // file tests depend on the run time
    }
    if (type === 'BinaryTest') {
      if (op === '&&' || op === '||') {
        const left = this.testExpr(node.X as ShNode, world, line);
        if (op === '&&' && left === false) return false;
        if (op === '||' && left === true) return true;
        const right = this.testExpr(node.Y as ShNode, world, line);
        return op === '&&' ? and(left, right) : or(left, right);
      }
      const left = this.wordText(node.X as ShNode, world, line);
      if (op === '==' || op === '=' || op === '!=') {
        const pattern = syntax.NodeType(node.Y as ShNode) === 'Word' ? this.expandPattern(node.Y as ShNode, world, line) : null;
        if (left === null || pattern === null) return null;
        return pattern.test(left) === (op !== '!=');
      }
      const right = this.wordText(node.Y as ShNode, world, line);
      if (left === null || right === null || op === undefined) return null;
      return compare(left, op, right);
    }
    return null;
  }

  /** A test operand: a word's text, or unknown when it is a nested expression. */
  private wordText(node: ShNode, world: World, line: number): string | null {
    if (syntax.NodeType(node) === 'Word') return this.expandString(node, world, line);
    this.testExpr(node, world, line);
    return null;
  }

  // ---- expansions ------------------------------------------------------------------------

  private lookup(world: World, name: string): VarValue {
    const own = world.vars.get(name);
    if (own) return own;
    if (name === 'BASH_SOURCE') return { set: true, value: this.files[this.files.length - 1]! };
    if (world.envUnknown) return UNKNOWN;
    const fromImage = this.env.get(name);
    if (fromImage !== undefined) return { set: true, value: fromImage };
    if (name === 'IFS') return { set: true, value: ' \t\n' };
    // The runtime gives a container its default PATH when the image sets none.
    if (name === 'PATH') return { set: true, value: DEFAULT_PATH };
    if (name === 'OPTIND') return { set: true, value: '1' };
    return UNKNOWN;
  }

  private param(part: ShNode, world: World, line: number): VarValue {
    const name = String((part.Param as ShNode).Value);
    if (part.Excl || part.Index || part.Slice || part.Repl || part.Width) return UNKNOWN;
    let value = this.special(name, world);
    if (part.Length) return value.value === null ? UNKNOWN : { set: true, value: String([...value.value].length) };
    const exp = part.Exp as ShNode | null | undefined;
    if (!exp) return value;
    const op = ops.expansion.get(exp.Op as number);
    const word = (): string | null => (exp.Word ? this.expandString(exp.Word as ShNode, world, line) : '');
    const empty = (checkEmpty: boolean): boolean | null =>
      value.set === null ? null : !value.set ? true : checkEmpty ? (value.value === null ? null : value.value === '') : false;
    switch (op) {
      case ':-':
      case '-':
      case ':=':
      case '=': {
        const missing = empty(op.startsWith(':'));
        const alternative = word();
        if (missing === null) return UNKNOWN;
        if (!missing) return value;
        value = alternative === null ? UNKNOWN : { set: true, value: alternative };
        if (op.endsWith('=') && NAME.test(name)) this.assign(world, name, value);
        return value;
      }
      case ':+':
      case '+': {
        const missing = empty(op.startsWith(':'));
        const alternative = word();
        if (missing === null) return UNKNOWN;
        return missing ? { set: true, value: '' } : alternative === null ? UNKNOWN : { set: true, value: alternative };
      }
      case ':?':
      case '?':
        word();
        return value;
      case '#':
      case '##':
      case '%':
      case '%%': {
        const pattern = exp.Word ? this.patternSource(exp.Word as ShNode, world, line) : '';
        if (value.value === null || pattern === null) return UNKNOWN;
        return { set: true, value: removePattern(value.value, pattern, op) };
      }
      case '^^':
      case ',,':
      case '^':
      case ',': {
        if (exp.Word || value.value === null) return UNKNOWN;
        const text = value.value;
        const change = op.startsWith('^') ? (s: string) => s.toUpperCase() : (s: string) => s.toLowerCase();
        return { set: true, value: op.length === 2 ? change(text) : change(text.slice(0, 1)) + text.slice(1) };
      }
      default:
        return UNKNOWN;
    }
  }

  private special(name: string, world: World): VarValue {
    if (name === '0') return { set: true, value: this.input.arg0 };
    if (/^\d+$/.test(name)) {
      const index = Number(name) - 1;
      const item = world.positional.items[index];
      if (index < world.positional.items.length) return item === null || item === undefined ? UNKNOWN : { set: true, value: item };
      return world.positional.more ? UNKNOWN : UNSET;
    }
    if (name === '#') return world.positional.more ? UNKNOWN : { set: true, value: String(world.positional.items.length) };
    if (name === '@' || name === '*') {
      const { items, more } = world.positional;
      if (more || items.some((i) => i === null)) return UNKNOWN;
      return { set: items.length > 0, value: items.join(' ') };
    }
    if (name === '?') return world.status === true ? { set: true, value: '0' } : UNKNOWN;
    if (name === '$' || name === '!' || name === '-' || name === '_') return UNKNOWN;
    return this.lookup(world, name);
  }

  /** A word as one string (assignments, `case` subjects, here-documents): no splitting, no globbing. */
  private expandString(word: ShNode, world: World, line: number): string | null {
    const pieces = this.expandPieces(word, world, line);
    return pieces.includes(null) ? null : pieces.join('');
  }

  /** The texts of a word's parts, in order (null: unknown), quotes removed. */
  private expandPieces(word: ShNode, world: World, line: number): (string | null)[] {
    const pieces: (string | null)[] = [];
    const visit = (part: ShNode, quoted: boolean): void => {
      switch (syntax.NodeType(part)) {
        case 'Lit':
          pieces.push(quoted ? unescapeQuoted(String(part.Value)) : unescapeUnquoted(String(part.Value)));
          break;
        case 'SglQuoted':
          pieces.push(part.Dollar && String(part.Value).includes('\\') ? null : String(part.Value));
          break;
        case 'DblQuoted':
          for (const inner of (part.Parts as ShNode[] | undefined) ?? []) visit(inner, true);
          break;
        case 'ParamExp':
          pieces.push(this.param(part, world, line).value);
          break;
        case 'CmdSubst':
        case 'ProcSubst':
          this.substitution(part, world);
          pieces.push(null);
          break;
        default:
          pieces.push(null);
      }
    };
    for (const part of (word.Parts as ShNode[] | undefined) ?? []) visit(part, false);
    return pieces;
  }

  /** `export "$var"="$val"`: the name when the text before the first `=` is known (else null), and the value. */
  private assignmentWord(word: ShNode, world: World, line: number): { name: string | null; value: VarValue } | undefined {
    const pieces = this.expandPieces(word, world, line);
    let prefix = '';
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] as string | null;
      if (piece === null) return { name: null, value: UNKNOWN };
      const at = piece.indexOf('=');
      if (at === -1) {
        prefix += piece;
        continue;
      }
      const rest = [piece.slice(at + 1), ...pieces.slice(i + 1)];
      return { name: prefix + piece.slice(0, at), value: rest.includes(null) ? UNKNOWN : { set: true, value: rest.join('') } };
    }
    return undefined;
  }

  /** `$(...)`, `` `...` `` and `<(...)`: their commands run in a copy of the world. */
  private substitution(part: ShNode, world: World): void {
    this.stmts((part.Stmts as ShNode[] | undefined) ?? [], [cloneWorld(world)]);
  }

  /** Words as the fields of a command line: unquoted expansions split, `"$@"` spliced, globs unknown. */
  private expandFields(words: readonly ShNode[], world: World, line: number): ArgList {
    const fields: (string | null)[] = [];
    let more = false;
    for (const word of words) {
      if (more) {
        // Fields after an unknown number of fields cannot be placed; their commands still run.
        this.expandString(word, world, line);
        continue;
      }
      const result = this.wordFields(word, world, line);
      fields.push(...result.items);
      more = result.more;
    }
    return { items: fields, more };
  }

  private wordFields(word: ShNode, world: World, line: number): ArgList {
    const fields: (string | null)[] = [];
    let current: string | null | undefined;
    let more = false;
    const ifsChanged = world.vars.has('IFS') || this.env.has('IFS');
    const append = (piece: string | null): void => {
      current = current === undefined ? piece : current === null || piece === null ? null : current + piece;
    };
    const finish = (): void => {
      if (current !== undefined) fields.push(current);
      current = undefined;
    };
    const split = (text: string | null): void => {
      if (text === null || ifsChanged) {
        more = true;
        return;
      }
      const pieces = text.split(/[ \t\n]+/);
      pieces.forEach((piece, i) => {
        if (i > 0) finish();
        if (piece !== '') append(piece);
      });
    };
    const visit = (part: ShNode, quoted: boolean): void => {
      if (more) {
        if (['CmdSubst', 'ProcSubst'].includes(syntax.NodeType(part))) this.substitution(part, world);
        return;
      }
      switch (syntax.NodeType(part)) {
        case 'Lit': {
          const raw = String(part.Value);
          if (!quoted && hasGlob(raw)) {
            more = true;
            return;
          }
          if (!quoted && raw.startsWith('~') && current === undefined) {
            append(null);
            return;
          }
          append(quoted ? unescapeQuoted(raw) : unescapeUnquoted(raw));
          return;
        }
        case 'SglQuoted':
          append(part.Dollar && String(part.Value).includes('\\') ? null : String(part.Value));
          return;
        case 'DblQuoted': {
          const inner = (part.Parts as ShNode[] | undefined) ?? [];
          if (inner.length === 0) append('');
          for (const piece of inner) {
            if (syntax.NodeType(piece) === 'ParamExp' && isAllArguments(piece) && String((piece.Param as ShNode).Value) === '@') {
              const { items, more: rest } = world.positional;
              items.forEach((item, i) => {
                if (i > 0) finish();
                append(item);
              });
              if (rest) more = true;
              continue;
            }
            visit(piece, true);
          }
          return;
        }
        case 'ParamExp': {
          if (!quoted && isAllArguments(part)) {
            const { items, more: rest } = world.positional;
            for (const item of items) {
              finish();
              split(item);
            }
            if (rest) more = true;
            return;
          }
          const value = this.param(part, world, line).value;
          if (quoted) append(value);
          else split(value);
          return;
        }
        case 'CmdSubst':
        case 'ProcSubst':
          this.substitution(part, world);
          if (quoted) append(null);
          else more = true;
          return;
        default:
          if (quoted) append(null);
          else more = true;
      }
    };
    for (const part of (word.Parts as ShNode[] | undefined) ?? []) visit(part, false);
    if (!more) finish();
    return { items: fields, more };
  }

  /** A pattern word (`case`, `[[ == ]]`) as a RegExp over the whole subject; null when a part is unknown. */
  private expandPattern(word: ShNode, world: World, line: number): RegExp | null {
    const source = this.patternSource(word, world, line);
    return source === null ? null : new RegExp(`^${source}$`, 's');
  }

  private patternSource(word: ShNode, world: World, line: number): string | null {
    let source: string | null = '';
    const add = (piece: string | null): void => {
      source = source === null || piece === null ? null : source + piece;
    };
    const visit = (part: ShNode, quoted: boolean): void => {
      switch (syntax.NodeType(part)) {
        case 'Lit':
          add(quoted ? escapeRegExp(unescapeQuoted(String(part.Value))) : globToRegExp(String(part.Value)));
          break;
        case 'SglQuoted':
          add(part.Dollar && String(part.Value).includes('\\') ? null : escapeRegExp(String(part.Value)));
          break;
        case 'DblQuoted':
          for (const inner of (part.Parts as ShNode[] | undefined) ?? []) visit(inner, true);
          break;
        case 'ParamExp': {
          const value = this.param(part, world, line).value;
          add(value === null ? null : quoted ? escapeRegExp(value) : globToRegExp(value));
          break;
        }
        case 'CmdSubst':
        case 'ProcSubst':
          this.substitution(part, world);
          add(null);
          break;
        default:
          add(null);
      }
    };
    for (const part of (word.Parts as ShNode[] | undefined) ?? []) visit(part, false);
    return source;
  }

  // ---- worlds ----------------------------------------------------------------------------

  /** Identical worlds are one; past MAX_WORLDS the normal ones are joined (what differs becomes unknown). */
  private limit(worlds: World[]): World[] {
    if (worlds.length <= 1) return worlds;
    const unique = new Map<string, World>();
    for (const world of worlds) unique.set(fingerprint(world), world);
    const distinct = [...unique.values()];
    if (distinct.length <= MAX_WORLDS) return distinct;
    const normal = distinct.filter((w) => w.flow === 'normal');
    const others = distinct.filter((w) => w.flow !== 'normal');
    return [...others, ...(normal.length > 0 ? [join(normal, (w, name) => this.lookup(w, name))] : [])];
  }
}

function fingerprint(world: World): string {
  return JSON.stringify([[...world.vars].sort(), world.positional, [...world.functions.keys()].sort(), world.status, world.flow, world.envUnknown, world.depth, world.frames.map((f) => [...f.keys()])]);
}

function join(worlds: readonly World[], lookup: (world: World, name: string) => VarValue): World {
  const first = worlds[0]!;
  const joined = cloneWorld(first);
  const names = new Set(worlds.flatMap((w) => [...w.vars.keys()]));
  for (const name of names) {
    const values = worlds.map((w) => lookup(w, name));
    const same = values.every((v) => v.set === values[0]!.set && v.value === values[0]!.value);
    joined.vars.set(name, same ? values[0]! : UNKNOWN);
  }
  const samePositional = worlds.every((w) => JSON.stringify(w.positional) === JSON.stringify(first.positional));
  if (!samePositional) joined.positional = { items: [], more: true };
  for (const world of worlds) for (const [name, body] of world.functions) if (!joined.functions.has(name)) joined.functions.set(name, body);
  if (!worlds.every((w) => w.status === first.status)) joined.status = null;
  joined.envUnknown = worlds.some((w) => w.envUnknown);
  return joined;
}

/** Names a loop body may assign (directly or through any function), and whether it changes `$@`. */
function assignedIn(body: readonly ShNode[], functions: ReadonlyMap<string, ShNode>): { names: Set<string>; positional: boolean } {
  const names = new Set<string>(['REPLY', 'OPTARG', 'OPTIND', 'PWD']);
  let positional = false;
  const visit = (root: ShNode, direct: boolean): void => {
    syntax.Walk(root, (node) => {
      if (!node) return true;
      const type = syntax.NodeType(node);
      if (type === 'Assign' && node.Name) names.add(String((node.Name as ShNode).Value));
      if (type === 'WordIter' && node.Name) names.add(String((node.Name as ShNode).Value));
      if (type === 'ParamExp' && node.Exp && node.Param) names.add(String((node.Param as ShNode).Value));
      if (type === 'CallExpr') {
        const words = ((node.Args as ShNode[] | undefined) ?? []).map(literalOf);
        const head = words[0];
        if (direct && (head === 'shift' || head === 'set')) positional = true;
        if (head && ['read', 'getopts', 'unset', 'export', 'local', 'readonly', 'declare', 'typeset', 'printf', 'mapfile', 'readarray'].includes(head)) {
          for (const word of words.slice(1)) if (word) names.add(word.split('=')[0]!);
        }
      }
      return true;
    });
  };
  for (const stmt of body) visit(stmt, true);
  for (const fn of functions.values()) visit(fn, false);
  return { names, positional };
}

/** `break N` / `continue N` (N other than 1) in a loop body: it leaves loops around this one. */
function containsDeepLoopControl(body: readonly ShNode[]): boolean {
  let found = false;
  for (const stmt of body) {
    syntax.Walk(stmt, (node) => {
      if (!node || found) return false;
      if (syntax.NodeType(node) === 'CallExpr') {
        const words = (node.Args as ShNode[] | undefined) ?? [];
        const head = literalOf(words[0]);
        if ((head === 'break' || head === 'continue') && words.length > 1 && literalOf(words[1]) !== '1') found = true;
      }
      return true;
    });
  }
  return found;
}

function literalOf(word: ShNode | undefined): string | undefined {
  const parts = (word?.Parts as ShNode[] | undefined) ?? [];
  if (parts.length !== 1 || syntax.NodeType(parts[0]!) !== 'Lit') return undefined;
  return String(parts[0]!.Value);
}

function isAllArguments(part: ShNode): boolean {
  const name = String((part.Param as ShNode).Value);
  return (name === '@' || name === '*') && !part.Exp && !part.Length && !part.Excl && !part.Index && !part.Slice && !part.Repl;
}

function lineOf(stmt: ShNode): number {
  const position = stmt.Position as { Line?: () => number } | undefined;
  return position?.Line?.() ?? 0;
}

/** `exec -a name cmd`, `command -p cmd`: the options before the command. */
function skipOptions(args: ArgList, withValue: ReadonlySet<string>): ArgList {
  let i = 0;
  while (i < args.items.length) {
    const item = args.items[i];
    if (item === '--') return { items: args.items.slice(i + 1), more: args.more };
    if (typeof item !== 'string' || !item.startsWith('-') || item === '-') break;
    i += withValue.has(item) ? 2 : 1;
  }
  return { items: args.items.slice(i), more: args.more };
}

function not(value: boolean | null): boolean | null {
  return value === null ? null : !value;
}
function and(a: boolean | null, b: boolean | null): boolean | null {
  if (a === false || b === false) return false;
  return a === null || b === null ? null : true;
}
function or(a: boolean | null, b: boolean | null): boolean | null {
  if (a === true || b === true) return true;
  return a === null || b === null ? null : false;
}

function compare(left: string, op: string, right: string): boolean | null {
  switch (op) {
    case '=':
    case '==':
      return left === right;
    case '!=':
      return left !== right;
    case '<':
      return left < right;
    case '>':
      return left > right;
    case '-eq':
    case '-ne':
    case '-lt':
    case '-le':
    case '-gt':
    case '-ge': {
      if (!/^\s*[+-]?\d+\s*$/.test(left) || !/^\s*[+-]?\d+\s*$/.test(right)) return null;
      const a = Number(left);
      const b = Number(right);
      return { '-eq': a === b, '-ne': a !== b, '-lt': a < b, '-le': a <= b, '-gt': a > b, '-ge': a >= b }[op] ?? null;
    }
    default:
      return null; // -nt, -ot, -ef, =~ depend on the run time or on regex dialects
  }
}

const UNARY_TESTS = new Set(['-b', '-c', '-d', '-e', '-f', '-g', '-h', '-k', '-L', '-p', '-r', '-s', '-S', '-t', '-u', '-w', '-x', '-O', '-G', '-N', '-n', '-z', '-a', '-v', '-o']);
const BINARY_TESTS = new Set(['=', '==', '!=', '-eq', '-ne', '-lt', '-le', '-gt', '-ge', '-nt', '-ot', '-ef', '<', '>']);

/** `test`/`[` over its arguments (POSIX test(1): by argument count, then -o below -a below !). */
function testArgs(items: readonly (string | null)[]): boolean | null {
  const n = items.length;
  if (n === 0) return false;
  if (n === 1) return items[0] === null ? null : items[0] !== '';
  if (n === 2) {
    const [op, operand] = items;
    if (op === '!') return not(testArgs([operand!]));
    if (op === '-z' || op === '-n') return operand === null || operand === undefined ? null : (operand === '') === (op === '-z');
    return null;
  }
  if (n === 3) {
    const [a, op, b] = items;
    if (typeof op === 'string' && BINARY_TESTS.has(op)) return a === null || b === null ? null : compare(a!, op, b!);
    if (a === '!') return not(testArgs(items.slice(1)));
    if (a === '(' && b === ')') return testArgs([op!]);
    if (op === '-a' || op === '-o') {
      const left = testArgs([a!]);
      const right = testArgs([b!]);
      return op === '-a' ? and(left, right) : or(left, right);
    }
    return null;
  }
  if (n === 4 && items[0] === '!') return not(testArgs(items.slice(1)));
  if (n === 4 && items[0] === '(' && items[3] === ')') return testArgs(items.slice(1, 3));
  const orAt = items.indexOf('-o', 1);
  if (orAt > 0 && orAt < n - 1) return or(testArgs(items.slice(0, orAt)), testArgs(items.slice(orAt + 1)));
  const andAt = items.indexOf('-a', 1);
  if (andAt > 0 && andAt < n - 1 && !UNARY_TESTS.has(items[andAt - 1] ?? '')) return and(testArgs(items.slice(0, andAt)), testArgs(items.slice(andAt + 1)));
  return null;
}

function hasGlob(raw: string): boolean {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '*' || c === '?') return true;
    if (c === '[' && raw.indexOf(']', i + 2) !== -1) return true;
  }
  return false;
}

/** Quote removal of an unquoted literal: `\x` is x, `\<newline>` is nothing. */
function unescapeUnquoted(raw: string): string {
  return raw.replace(/\\\n/g, '').replace(/\\(.)/gs, '$1');
}

/** Inside double quotes a backslash escapes only `$`, `` ` ``, `"`, `\` and newline. */
function unescapeQuoted(raw: string): string {
  return raw.replace(/\\\n/g, '').replace(/\\([$`"\\])/g, '$1');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A shell pattern (glob(7), as `case` and `[[ == ]]` use it: `*` also matches `/`) as RegExp source. */
function globToRegExp(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) out += escapeRegExp(raw[++i]!);
    else if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const end = raw.indexOf(']', i + 2);
      if (end === -1) {
        out += '\\[';
        continue;
      }
      let body = raw.slice(i + 1, end);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      body = body.replace(/\[:(\w+):\]/g, (_, cls: string) => POSIX_CLASSES[cls] ?? '').replace(/\\/g, '\\\\').replace(/]/g, '\\]');
      out += `[${negated ? '^' : ''}${body}]`;
      i = end;
    } else out += escapeRegExp(c);
  }
  return out;
}

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: 'A-Za-z0-9', upper: 'A-Z', lower: 'a-z', space: ' \\t\\n\\r\\f\\v', xdigit: '0-9A-Fa-f', punct: '!-\\/:-@\\[-`{-~', blank: ' \\t',
};

/** `${x#p}` (shortest prefix), `##` (longest), `%` (shortest suffix), `%%` (longest). */
function removePattern(value: string, pattern: string, op: string): string {
  const regexp = new RegExp(`^(?:${pattern})$`, 's');
  const lengths = [...Array(value.length + 1).keys()];
  const order = op === '#' || op === '%' ? lengths : lengths.reverse();
  for (const length of order) {
    const piece = op.startsWith('#') ? value.slice(0, length) : value.slice(value.length - length);
    if (regexp.test(piece)) return op.startsWith('#') ? value.slice(length) : value.slice(0, value.length - length);
  }
  return value;
}
