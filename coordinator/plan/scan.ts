/**
 * `scan`: from an image to the syscalls its entrypoint can reach.
 *
 *   roots (Entrypoint + Cmd, HEALTHCHECK) → programs: shell scripts are evaluated with their known
 *   arguments and the image's ENV (coordinator/plan/shell-eval.ts: the commands some run of them
 *   starts), wrappers (`gosu`, `env`, `tini`, ...) are followed to the command they run, ELF programs are loaded like ld.so loads them
 *   (PT_INTERP, DT_NEEDED through RPATH / LD_LIBRARY_PATH / RUNPATH / ld.so.cache / defaults), every
 *   object is analysed once (analyse-object units on the bus, facts from the knowledge base), facts
 *   are linked (coordinator/plan/link.ts), and what the linked code can reach adds roots to a fixpoint:
 *   dlopen of constant names, NSS modules of the image's nsswitch.conf, gconv modules, programs it
 *   can exec (absolute paths in its strings; `system`/`popen` → /bin/sh), interpreter extension
 *   modules. Every decision, and everything the analysis is unsure of, goes into the result.
 */
import type { ImageConfig, LayerRecord, OpenedImage } from '../../extractor/types.js';
import { withDeadline } from '../../infra/deadline.js';
import { parseElf } from '../../worker/elf/index.js';
import { DockergateError, LimitExceededError, NotFoundError } from '../../infra/errors.js';
import { appletsOf, commandsOf, type ObjectFacts } from '../../store/facts.js';
import { scanCacheKey } from './analysis-state.js';
import { analyseObjects } from './analyze.js';
import type { Runtime } from '../runtime/runtime.js';
import { commandLine, envValue, findExecutable, searchCandidates } from './entrypoint.js';
import { ImageTree, type TreeFile } from './image-tree.js';
import { extractImage, type InspectOptions, openImageFor } from './inspect.js';
import { baseName } from '../../extractor/paths.js';
import { parseReference } from '../../extractor/reference.js';
import { peekImageDigest } from '../../extractor/sources/index.js';
import { findLibrary, parseLdSoCache, type Requester, type SearchContext, safeResolve } from './ld-search.js';
import { type LinkedReach, type LoadedObject, linkFacts, REACH_WAYS, type ReachWay } from './link.js';
import { spanSync, withSpan } from '../../infra/telemetry.js';
import { type PhaseProgress, silentProgress } from '../../infra/progress.js';
import { NO_TIMER, type Timer } from '../../infra/timings.js';
import { DOCKER_DEFAULT_FALLBACK_SYSCALLS } from './platforms.js';
import { RUNTIME_SYSCALLS } from './runtime-syscalls.js';
import { type ArgList, evaluateScript, knownArgs, loadShellParser, type ShellEvaluation } from './shell-eval.js';
import { wrappedCommand } from './wrappers.js';

export { SCAN_GENERATOR_VERSION, scanCacheKey } from './analysis-state.js';

export type DecisionKind =
  | 'program'
  | 'script'
  | 'exec'
  | 'dlopen'
  | 'nss'
  | 'gconv'
  | 'interpreter-modules'
  | 'missing'
  | 'unresolved'
  | 'analysis-failed'
  | 'fallback'
  | 'limit'
  | 'runtime';

export interface Decision {
  readonly kind: DecisionKind;
  readonly detail: string;
  readonly path?: string;
}

export interface ProgramNode {
  readonly path: string;
  readonly kind: 'elf' | 'script';
  readonly sha256?: string;
  /** Why it runs: the invocation chain, outermost first. */
  readonly via: readonly string[];
}

export interface GraphEdge {
  readonly from: string;
  readonly to: string;
  readonly kind: 'runs' | 'needs' | 'interpreter' | 'loads';
}

export interface ScanResult {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly platform: ImageConfig['platform'];
  readonly config: ImageConfig;
  readonly programs: readonly ProgramNode[];
  /** Every ELF object loaded by some program, by path. */
  readonly objects: readonly { readonly path: string; readonly sha256: string; readonly soname?: string }[];
  readonly edges: readonly GraphEdge[];
  /** Syscall name → one witness chain (program, then objects and symbols, outermost first). */
  readonly syscalls: ReadonlyMap<string, readonly string[]>;
  /** Syscall name → where it comes from at best (the witness shows that way). */
  readonly origins: Readonly<Record<string, SyscallOrigin>>;
  readonly decisions: readonly Decision[];
  /** True when something reachable could not be analysed exactly and a fallback was applied. */
  readonly unsure: boolean;
  readonly analysed: { readonly objects: number; readonly fresh: number; readonly failed: number };
}

/**
 * Where an allowed syscall comes from: a way programs reach it (link.ts `REACH_WAYS`, most
 * certain first), the container runtime's own needs, or the Docker-default fallback.
 */
export type SyscallOrigin = ReachWay | 'runtime' | 'fallback';
export const SYSCALL_ORIGINS: readonly SyscallOrigin[] = [...REACH_WAYS, 'runtime', 'fallback'];

export interface ScanOptions extends InspectOptions {
  /** Fail instead of applying the fallback when the analysis is unsure. */
  readonly strict?: boolean;
  /** Where the time goes (`--timings`): open, layers, plan, and inside plan analysis, shell, link. */
  readonly timer?: Timer;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'ksh', 'mksh', 'zsh', 'busybox']);
const INTERPRETERS = /^(python[\d.]*|node|nodejs|perl[\d.]*|ruby[\d.]*|php[\d.]*|java)$/;
const MODULE_DIRS = /\/(python[\d.]*|site-packages|dist-packages|node_modules|perl5?|ruby|php|jvm|lib-dynload)\//;
/** NSS entry points: reaching one loads the modules nsswitch.conf names. */
const NSS_FUNCTIONS = new Set([
  'getpwnam', 'getpwnam_r', 'getpwuid', 'getpwuid_r', 'getpwent', 'getgrnam', 'getgrnam_r', 'getgrgid', 'getgrgid_r', 'getgrent', 'getgrouplist',
  'initgroups', 'getaddrinfo', 'gethostbyname', 'gethostbyname2', 'gethostbyname_r', 'gethostbyname2_r', 'gethostbyaddr', 'gethostbyaddr_r',
  'getnameinfo', 'getservbyname', 'getservbyname_r', 'getservbyport', 'getprotobyname', 'getspnam', 'getspnam_r', 'getnetgrent', 'innetgr',
]);
/** A shared object's file name: `libfoo.so`, `libfoo.so.1.2`. */
const SHARED_OBJECT_NAME = /\.so(\.[\d.]+)?$/;
const EXEC_FUNCTIONS = new Set(['system', 'popen', 'posix_spawn', 'posix_spawnp', 'execl', 'execlp', 'execle', 'execv', 'execvp', 'execvpe', 'execve', 'fexecve']);

interface Invocation {
  /** The command line; `argv.items[0]` is the program's name. Unknown arguments are null. */
  readonly argv: ArgList;
  /**
   * Its environment when a script changed it (`NAME=value`; a variable the script assigned is
   * absent, i.e. unknown); the image's ENV otherwise. `pathUnknown`: PATH was computed.
   */
  readonly env?: readonly string[];
  readonly pathUnknown?: boolean;
  readonly via: readonly string[];
  /** `#!` interpreters between the root and this program (a script's interpreter is one deeper). */
  readonly interpreterDepth?: number;
}

function invocationKey(argv: ArgList, env?: readonly string[], pathUnknown?: boolean): string {
  return JSON.stringify([argv, env ?? null, pathUnknown ?? false]);
}

type StoredScan = Omit<ScanResult, 'syscalls' | 'reference'> & { syscalls: [string, readonly string[]][] };

function fromStored(stored: StoredScan, reference: string): ScanResult {
  return { ...stored, reference, syscalls: new Map(stored.syscalls), analysed: { objects: stored.analysed.objects, fresh: 0, failed: stored.analysed.failed } };
}

/** A finished scan from the runtime's scan store (a coordinator wrote it), named as `reference`. */
export async function storedScan(runtime: Runtime, key: string, reference: string): Promise<ScanResult | undefined> {
  const stored = (await runtime.scans.get(key)) as StoredScan | undefined;
  return stored ? fromStored(stored, reference) : undefined;
}

/**
 * Scans one image (one trace span `scan`, with `extract layers`, `plan` and `link` inside), within
 * `scanTimeoutMs`: past it every unit of the scan is cancelled and it fails with that limit.
 */
export function scanImage(runtime: Runtime, referenceText: string, options: ScanOptions): Promise<ScanResult> {
  return withSpan('scan', { 'dockergate.reference': referenceText }, async (span) => {
    const result = await withDeadline(runtime.limits, 'scanTimeoutMs', `the scan of ${referenceText}`, options.signal, (signal) =>
      scanUntraced(runtime, referenceText, { ...options, signal }),
    );
    span.setAttributes({ 'dockergate.manifest_digest': result.manifestDigest, 'dockergate.syscalls': result.syscalls.size, 'dockergate.objects_analysed': result.analysed.fresh });
    return result;
  });
}

async function scanUntraced(runtime: Runtime, referenceText: string, options: ScanOptions): Promise<ScanResult> {
  // Sources that know the digest cheaply (the daemon's image ID) are checked before opening.
  const peeked = await peekImageDigest(parseReference(referenceText), {
    ...options.source,
    limits: runtime.limits,
    spoolDir: runtime.cas.spoolDir,
  });
  if (peeked) {
    const early = (await runtime.scans.get(scanCacheKey(peeked, runtime.analyser, Boolean(options.strict)))) as StoredScan | undefined;
    if (early) return fromStored(early, referenceText);
  }
  const timer = options.timer ?? NO_TIMER;
  const image = await timer.time('open', () => openImageFor(runtime, referenceText, options));
  let open = true;
  const closeImage = async (): Promise<void> => {
    if (open) {
      open = false;
      await image.close();
    }
  };
  try {
    const key = scanCacheKey(image.manifestDigest, runtime.analyser, Boolean(options.strict));
    const stored = (await runtime.scans.get(key)) as StoredScan | undefined;
    // A rescan of an unchanged image: the manifest was read, nothing else is.
    if (stored) return fromStored(stored, image.reference);
    // Single-flight per image: while another coordinator plans it, this one waits, then finds
    // the stored scan (concurrent scans of one image in one process likewise).
    // Not known: objects will be analysed once the layers are read.
    runtime.warmAnalysis();
    const kb = await runtime.kb();
    return await kb.exclusive(`scan ${key}`, async () => {
      const finished = (await runtime.scans.get(key)) as StoredScan | undefined;
      if (finished) return fromStored(finished, image.reference);
      const { records } = await timer.time('layers', () => withSpan('extract layers', { 'dockergate.layers': image.layers.length }, () => extractImage(runtime, image, options)));
      await closeImage();
      return planAndStore(runtime, key, image, records, options);
    });
  } finally {
    await closeImage();
  }
}

/** Links the extracted image from its entrypoint, and stores the finished scan under `key`. */
async function planAndStore(runtime: Runtime, key: string, image: OpenedImage, records: readonly LayerRecord[], options: ScanOptions): Promise<ScanResult> {
  const tree = ImageTree.fromLayers(records, runtime.limits);
  await loadShellParser();
  const config = image.config;
  const planner = new ScanPlanner(runtime, tree, config, options);
  await (options.timer ?? NO_TIMER).time('plan', () => withSpan('plan', {}, () => planner.run()));
  planner.endPhases();
  const result: ScanResult = {
    reference: image.reference,
    manifestDigest: image.manifestDigest,
    configDigest: image.configDigest,
    platform: config.platform,
    config,
    ...planner.result(),
  };
  const { reference: _reference, syscalls, ...rest } = result;
  await runtime.scans.put(key, { ...rest, syscalls: [...syscalls] } satisfies StoredScan);
  return result;
}

class ScanPlanner {
  private readonly decisions: Decision[] = [];
  private readonly programs = new Map<string, ProgramNode>();
  private readonly edges = new Map<string, GraphEdge>();
  private readonly syscalls = new Map<string, readonly string[]>();
  private readonly origins = new Map<string, SyscallOrigin>();
  private readonly facts = new Map<string, ObjectFacts | null>();
  /** Objects being analysed now, each with the batch that analyses it (factsOf). */
  private readonly analysing = new Map<string, Promise<void>>();
  /** Failed analyses not reported yet: the reason, reported when something loads the object (factsOf). */
  private readonly unreportedFailures = new Map<string, string>();
  private readonly objectPaths = new Map<string, string>();
  private readonly queue: Invocation[] = [];
  private readonly seenInvocations = new Set<string>();
  private readonly search: { -readonly [K in keyof SearchContext]: SearchContext[K] };
  private unsure = false;
  private programBudgetSpent = false;
  private objectBudgetSpent = false;
  private readonly planStarted = performance.now();
  private planExpired = false;
  private fresh = 0;
  private failed = 0;
  /** Progress of the objects analysed and the programs linked (the display chose by the command). */
  private readonly analysisPhase: PhaseProgress;
  private readonly linkPhase: PhaseProgress;
  private readonly timer: Timer;

  constructor(
    private readonly runtime: Runtime,
    private readonly tree: ImageTree,
    private readonly config: ImageConfig,
    private readonly options: ScanOptions,
  ) {
    this.search = {
      tree,
      libraryPath: (envValue(config.env, 'LD_LIBRARY_PATH') ?? '').split(':').filter(Boolean),
      cache: new Map(),
      muslPath: undefined,
      // A DT_NEEDED or dlopen name with a `/` is opened relative to the process's working directory.
      workingDir: config.workingDir || '/',
    };
    const progress = options.progress ?? silentProgress;
    this.analysisPhase = progress.phase('analysis', 'objects');
    this.linkPhase = progress.phase('link', 'programs');
    this.timer = options.timer ?? NO_TIMER;
  }

  /** Ends the progress phases with their counts (after `run`). */
  endPhases(): void {
    const known = this.facts.size - this.fresh - this.failed;
    this.analysisPhase.end(`${known} known, ${this.fresh} analysed, ${this.failed} failed`);
    this.linkPhase.end(`${this.syscalls.size} syscalls reached`);
  }

  /**
   * A configuration file the extractor kept in the CAS (extractor/layer-extract.ts KEPT_FILES), if
   * it is at most `maxImageConfigFileBytes` (checked before reading; larger: a decision and the fallback).
   */
  private async imageFile(path: string): Promise<Buffer | undefined> {
    const file = safeResolve(this.tree, path);
    if (!file?.sha256) return undefined;
    const max = this.runtime.limits.maxImageConfigFileBytes;
    if (file.size > max) {
      this.overBudget(`${path} is ${file.size} bytes (maxImageConfigFileBytes ${max}); it is not read`, path);
      return undefined;
    }
    return this.runtime.cas.get(file.sha256).catch(() => undefined);
  }

  private decide(kind: DecisionKind, detail: string, path?: string): void {
    this.decisions.push({ kind, detail, ...(path ? { path } : {}) });
  }

  private edge(from: string, to: string, kind: GraphEdge['kind']): void {
    this.edges.set(`${from}\0${to}\0${kind}`, { from, to, kind });
  }

  async run(): Promise<void> {
    const limits = this.runtime.limits;
    if (this.search.libraryPath.length > limits.maxSearchPathEntries) {
      this.overBudget(`LD_LIBRARY_PATH has ${this.search.libraryPath.length} entries (maxSearchPathEntries ${limits.maxSearchPathEntries}); libraries are looked up in the first ${limits.maxSearchPathEntries} only`);
      this.search.libraryPath = this.search.libraryPath.slice(0, limits.maxSearchPathEntries);
    }
    const pathEntries = (envValue(this.config.env, 'PATH') ?? '').split(':').length;
    if (pathEntries > limits.maxSearchPathEntries) {
      this.overBudget(`PATH has ${pathEntries} entries (maxSearchPathEntries ${limits.maxSearchPathEntries}); programs are looked up in the first ${limits.maxSearchPathEntries} only`);
    }
    const cache = await this.imageFile('/etc/ld.so.cache');
    if (cache) {
      const parsed = parseLdSoCache(cache, limits.maxLdCacheEntries);
      this.search.cache = parsed.entries;
      if (parsed.truncated) this.overBudget(`/etc/ld.so.cache declares more than ${limits.maxLdCacheEntries} entries (maxLdCacheEntries); the rest are not read`, '/etc/ld.so.cache');
    }
    const arch = this.config.platform.architecture === 'amd64' ? 'x86_64' : this.config.platform.architecture;
    const muslPath = await this.imageFile(`/etc/ld-musl-${arch}.path`);
    if (muslPath) {
      const file = `/etc/ld-musl-${arch}.path`;
      const dirs = muslPath.toString('utf8').split(/[\n:]/).map((d) => d.trim()).filter((d) => d.startsWith('/'));
      this.search.muslPath = this.capped(dirs, file, file);
    }
    const argv = commandLine(this.config);
    if (argv.length === 0) this.decide('missing', 'the image has neither Entrypoint nor Cmd');
    else this.enqueue({ argv: knownArgs(argv), via: ['entrypoint'] });
    const health = this.config.healthcheck;
    if (health && health[0] === 'CMD' && health.length > 1) this.enqueue({ argv: knownArgs(health.slice(1)), via: ['healthcheck'] });
    if (health && health[0] === 'CMD-SHELL' && health[1]) this.enqueue({ argv: knownArgs(['/bin/sh', '-c', health[1]]), via: ['healthcheck'] });

    while (this.queue.length > 0 && !this.outOfTime()) {
      const invocation = this.queue.shift()!;
      await this.invoke(invocation);
    }
    for (const { name, reason } of RUNTIME_SYSCALLS) {
      if (this.syscalls.has(name)) continue;
      this.syscalls.set(name, [`container runtime: ${reason}`]);
      this.origins.set(name, 'runtime');
    }
    this.decide('runtime', `${RUNTIME_SYSCALLS.length} syscalls the container runtime makes after installing the filter and before exec`);
    this.applyFallbacks();
  }

  private enqueue(invocation: Invocation): void {
    const key = invocationKey(invocation.argv, invocation.env, invocation.pathUnknown);
    if (this.seenInvocations.has(key)) return;
    if (this.seenInvocations.size >= this.runtime.limits.maxProgramsPerScan) {
      if (!this.programBudgetSpent) this.overBudget(`more than ${this.runtime.limits.maxProgramsPerScan} program invocations (maxProgramsPerScan); the others are not followed`);
      this.programBudgetSpent = true;
      return;
    }
    this.seenInvocations.add(key);
    this.queue.push(invocation);
  }

  /**
   * Whether planning has run past `planTimeoutMs` (reported once, with the fallback; the loops
   * stop following). The scan's own deadline (`scanTimeoutMs`, the options' signal) ends it with
   * its error instead.
   */
  private outOfTime(): boolean {
    this.options.signal?.throwIfAborted();
    if (this.planExpired) return true;
    if (performance.now() - this.planStarted <= this.runtime.limits.planTimeoutMs) return false;
    this.planExpired = true;
    this.overBudget(`planning ran past planTimeoutMs (${this.runtime.limits.planTimeoutMs} ms); what was not followed by then is unknown`);
    return true;
  }

  /** A search path of an object, its first `maxSearchPathEntries` entries (more: over budget). */
  private capped(entries: readonly string[], what: string, path: string): readonly string[] {
    const max = this.runtime.limits.maxSearchPathEntries;
    if (entries.length <= max) return entries;
    this.overBudget(`${what} has ${entries.length} entries (maxSearchPathEntries ${max}); the first ${max} are searched`, path);
    return entries.slice(0, max);
  }

  /** Something the analysis cannot follow: reported, and the scan falls back to Docker's default (or fails with --strict). */
  private fallBack(kind: DecisionKind, detail: string, path?: string): void {
    this.decide(kind, detail, path);
    this.unsure = true;
  }

  /** A budget of `infra/limits.ts` reached. */
  private overBudget(detail: string, path?: string): void {
    this.fallBack('limit', `${detail}: Docker's default profile is allowed instead`, path);
  }

  private async invoke({ argv, via, interpreterDepth = 0, env, pathUnknown }: Invocation): Promise<void> {
    const name = argv.items[0] as string;
    if (pathUnknown && !name.includes('/')) {
      this.fallBack('unresolved', `${name} (run by ${via.join(' → ')}) is looked up in a PATH its script computed; the program cannot be known statically`);
      return;
    }
    const inherited = { ...(env ? { env } : {}), ...(pathUnknown ? { pathUnknown } : {}) };
    const found = findExecutable(name, env ? { ...this.config, env } : this.config, this.tree, this.runtime.limits.maxSearchPathEntries);
    if (!('file' in found)) {
      this.decide('missing', `${name} (run by ${via.join(' → ')}) is not an executable in the image`);
      return;
    }
    const { path, file } = found;
    const caller = via[via.length - 1]!;
    this.edge(caller, path, 'runs');
    if (file.kind === 'script') {
      this.runScript(path, file, argv, via, interpreterDepth, inherited);
      return;
    }
    if (file.kind !== 'elf' || !file.sha256) {
      this.decide('missing', `${path} is neither ELF nor a script; it cannot run`, path);
      return;
    }
    const chain = [...via, path];
    // A multi-call binary (busybox) runs the applet it is invoked as, or its first argument's.
    const invokedAs = baseName(name);
    const multiCall = invokedAs === 'busybox';
    const command: ArgList = multiCall && typeof argv.items[1] === 'string' ? { items: argv.items.slice(1), more: argv.more } : argv;
    const role = baseName(command.items[0] as string);
    const roles = multiCall ? [role] : [role, baseName(file.path)];
    // What it runs, when its command line says: a shell's script or -c string, a wrapper's command.
    let knownExecs = false;
    if (roles.some((r) => SHELLS.has(r) && r !== 'busybox')) knownExecs = await this.runShell(path, command, chain, env ?? this.config.env);
    else {
      const wrapped = roles.map((r) => wrappedCommand(r, { items: command.items.slice(1), more: command.more })).find((w) => w !== undefined);
      if (wrapped && 'argv' in wrapped && typeof wrapped.argv.items[0] === 'string') {
        this.enqueue({ argv: wrapped.argv, via: chain, ...inherited });
        knownExecs = true;
      } else if (wrapped && 'argv' in wrapped) {
        this.fallBack('unresolved', `${path} (run by ${via.join(' → ')}) runs a command whose name is not known; it cannot be known statically`, path);
        knownExecs = true;
      } else if (wrapped && 'shell' in wrapped) {
        this.enqueue({ argv: knownArgs(['/bin/sh', '-c', wrapped.shell]), via: chain, ...inherited });
        knownExecs = true;
      } else if (wrapped) this.fallBack('unresolved', `${path} (run by ${via.join(' → ')}): ${wrapped.unknown}; the command it runs cannot be known statically`, path);
    }
    if (roles.some((r) => INTERPRETERS.test(r))) await this.addInterpreterModules(path);
    // The applet a multi-call binary runs: the name it is invoked as (busybox's own name: its first argument).
    const applet = multiCall ? (command === argv ? undefined : role) : invokedAs;
    // The words that may name the command a program with a command table runs: the name it runs
    // as, and its first argument (not for shells and interpreters, whose first argument is a
    // script that may share a builtin's name).
    const interprets = roles.some((r) => SHELLS.has(r) || INTERPRETERS.test(r));
    const firstArgument = !interprets && typeof command.items[1] === 'string' ? [command.items[1]] : [];
    await this.runElf(path, file, chain, !knownExecs, applet, [...new Set([...roles, ...firstArgument])]);
  }

  /** A #! script: its interpreter runs with the script's path and arguments (execve(2)). */
  private runScript(path: string, file: TreeFile, argv: ArgList, via: readonly string[], interpreterDepth: number, inherited: Pick<Invocation, 'env' | 'pathUnknown'>): void {
    if (interpreterDepth >= this.runtime.limits.maxInterpreterDepth) {
      // Linux's exec follows #! at most BINPRM_MAX_RECURSION (4) times, then fails with ELOOP.
      this.decide('missing', `${path} (run by ${via.join(' → ')}) is a #! script ${interpreterDepth} interpreters deep (limit ${this.runtime.limits.maxInterpreterDepth}, as Linux's): exec fails with ELOOP, it cannot run`, path);
      return;
    }
    this.programs.set(path, { path, kind: 'script', ...(file.sha256 ? { sha256: file.sha256 } : {}), via });
    // Linux splits nothing after the interpreter's name: the rest of the line is one argument.
    const line = (file.interpreter ?? '/bin/sh').trim();
    const space = line.search(/\s/);
    const interpreterArgv = space === -1 ? [line] : [line.slice(0, space), line.slice(space).trim()];
    this.decide('script', `${path} runs with ${file.interpreter ?? '/bin/sh (no #! line)'}`, path);
    this.enqueue({ argv: { items: [...interpreterArgv, path, ...argv.items.slice(1)], more: argv.more }, via: [...via, path], interpreterDepth: interpreterDepth + 1, ...inherited });
  }

  /**
   * A shell's command line (sh(1): options, then `-c string [$0 [args]]`, or a script file and its
   * arguments). Evaluates what it runs; false when it reads commands from its input (unknown).
   */
  private async runShell(shellPath: string, argv: ArgList, via: readonly string[], env: readonly string[]): Promise<boolean> {
    const items = argv.items;
    let commandString = false;
    let fromInput = false;
    let i = 1;
    for (; i < items.length; i++) {
      const item = items[i];
      if (item === null || item === undefined) {
        this.fallBack('unresolved', `${shellPath} (run by ${via.slice(0, -1).join(' → ')}) has options that are not known; the commands it runs cannot be known statically`, shellPath);
        return true;
      }
      if (item === '--' || item === '-') {
        i++;
        break;
      }
      if (/^[-+][A-Za-z]+$/.test(item)) {
        // `-o name` and `-O shopt` take the next word, also at the end of a cluster (`-eo pipefail`).
        if (/[oO]$/.test(item)) i++;
        if (item.startsWith('-') && item.includes('c')) commandString = true;
        if (item.startsWith('-') && item.includes('s')) fromInput = true;
        continue;
      }
      if (/^--(rcfile|init-file)$/.test(item)) i++;
      else if (!item.startsWith('--')) break;
    }
    const operand = items[i];
    const rest: ArgList = { items: items.slice(i + 1), more: argv.more };
    if (commandString) {
      if (typeof operand !== 'string') {
        this.fallBack('unresolved', `${shellPath} -c (run by ${via.slice(0, -1).join(' → ')}): the command string is not known`, shellPath);
        return true;
      }
      const arg0 = typeof rest.items[0] === 'string' ? rest.items[0] : shellPath;
      await this.runShellSource(operand, `${shellPath} -c`, arg0, { items: rest.items.slice(1), more: rest.more }, via, env);
      return true;
    }
    if (fromInput || operand === undefined) return argv.more ? this.unknownScript(shellPath, via) : false;
    if (operand === null) return this.unknownScript(shellPath, via);
    const script = safeResolve(this.tree, operand.startsWith('/') ? operand : `${this.config.workingDir || '/'}/${operand}`);
    if (!script || script.type !== 'file') {
      this.decide('missing', `${operand} (the script ${shellPath} is given) is not a file in the image`);
      return true;
    }
    if (script.size > this.runtime.limits.maxShellScriptBytes) {
      // Checked before the source is read (a script may be as large as maxBlobBytes).
      this.overBudget(`${operand} is ${script.size} bytes of shell, more than the parser is given (maxShellScriptBytes ${this.runtime.limits.maxShellScriptBytes}); the commands it runs are unknown`, operand);
      return true;
    }
    const source = await this.keptCopy(script);
    if (!source) {
      this.fallBack('unresolved', `${operand} (run by ${shellPath}) has no #! line, so the extractor kept no copy of it; the commands it runs are unknown`, operand);
      return true;
    }
    await this.runShellSource(source.toString('utf8'), operand, operand, rest, via, env);
    return true;
  }

  private unknownScript(shellPath: string, via: readonly string[]): boolean {
    this.fallBack('unresolved', `${shellPath} (run by ${via.slice(0, -1).join(' → ')}) runs a script that is not known; the commands it runs cannot be known statically`, shellPath);
    return true;
  }

  /** Evaluates shell source with its arguments and runs what it may start (reading the files it sources). */
  private async runShellSource(source: string, name: string, arg0: string, args: ArgList, via: readonly string[], env: readonly string[]): Promise<void> {
    const limits = this.runtime.limits;
    const bytes = Buffer.byteLength(source);
    if (bytes > limits.maxShellScriptBytes) {
      this.overBudget(`${name} is ${bytes} bytes of shell, more than the parser is given (maxShellScriptBytes ${limits.maxShellScriptBytes}); the commands it runs are unknown`);
      return;
    }
    const key = JSON.stringify([source, arg0, args, env]);
    let evaluation = this.evaluatedScripts.get(key);
    if (!evaluation) {
      evaluation = await this.evaluate(source, name, arg0, args, env);
      this.evaluatedScripts.set(key, evaluation);
    }
    if (evaluation instanceof LimitExceededError) {
      this.overBudget(`${name}: ${evaluation.message}; the commands it runs are unknown`);
      return;
    }
    if (evaluation instanceof Error) {
      this.fallBack('unresolved', `${name}: ${evaluation.message}; the commands it runs are unknown`);
      return;
    }
    const shown = args.items.map((item) => item ?? '?').concat(args.more ? ['…'] : []);
    this.decide('script', `${name} evaluated with arguments ${JSON.stringify(shown)}: it may run ${evaluation.runs.map((run) => run.argv.items[0]).join(', ') || 'no program'}`);
    for (const run of evaluation.runs) this.enqueue({ argv: run.argv, via, ...this.childEnvironment(env, evaluation, run, name) });
    for (const computed of evaluation.computed) this.fallBack('unresolved', `${name}: ${computed} cannot be known statically`);
  }

  /**
   * What a command the script starts inherits: the script's environment without the variables
   * the script assigns (unknown to the child), with PATH as the script left it at that command.
   * An LD_LIBRARY_PATH the script sets adds its directories to the library search (a decision);
   * one it computes is unknown (the fallback).
   */
  private childEnvironment(env: readonly string[], evaluation: ShellEvaluation, run: ShellEvaluation['runs'][number], name: string): Pick<Invocation, 'env' | 'pathUnknown'> {
    const assigned = evaluation.assigned;
    const path = run.searchPaths.PATH;
    const inheritedPath = path === undefined ? env.filter((entry) => entry.startsWith('PATH=')) : [];
    const kept = assigned === 'all' ? inheritedPath : env.filter((entry) => (entry.startsWith('PATH=') ? path === undefined : !assigned.includes(entry.slice(0, entry.indexOf('=')))));
    const libraryPath = run.searchPaths.LD_LIBRARY_PATH;
    if (libraryPath !== undefined && libraryPath !== envValue(env, 'LD_LIBRARY_PATH')) {
      if (libraryPath === null) this.fallBack('unresolved', `${name}: LD_LIBRARY_PATH is computed at run time; the libraries its programs load cannot be known statically`);
      else {
        const dirs = libraryPath.split(':').filter(Boolean).filter((dir) => !this.search.libraryPath.includes(dir));
        if (dirs.length > 0) {
          this.search.libraryPath = [...dirs, ...this.search.libraryPath].slice(0, this.runtime.limits.maxSearchPathEntries);
          this.decide('script', `${name} sets LD_LIBRARY_PATH=${libraryPath}: libraries are also looked up in ${dirs.join(', ')}`);
        }
      }
    }
    const childEnv = [...kept, ...(typeof path === 'string' ? [`PATH=${path}`] : [])];
    if (path !== null && childEnv.length === this.config.env.length && childEnv.every((entry) => this.config.env.includes(entry))) return {};
    return { env: childEnv, ...(path === null ? { pathUnknown: true } : {}) };
  }

  /** Shell source with its arguments → what it runs (or why it could not be evaluated): each is evaluated once. */
  private readonly evaluatedScripts = new Map<string, ShellEvaluation | Error>();

  /** One evaluation, again after reading each round of files it sources (at most maxShellCallDepth rounds). */
  private async evaluate(source: string, name: string, arg0: string, args: ArgList, env: readonly string[]): Promise<ShellEvaluation | Error> {
    const limits = this.runtime.limits;
    const sourced = new Map<string, string | Error>();
    // `.` looks a name without `/` up in PATH, as the shell does; the file need not be executable.
    const findSourced = (target: string, pathVariable: string | null): string | null =>
      searchCandidates(target, pathVariable ?? envValue(env, 'PATH'), this.config.workingDir, limits.maxSearchPathEntries).find((candidate) => safeResolve(this.tree, candidate)?.type === 'file') ?? null;
    for (let round = 0; ; round++) {
      let evaluation: ShellEvaluation;
      try {
        evaluation = this.timer.timeSync('shell', () => evaluateScript({ source, name, arg0, args, env, findSourced, sourced, timeoutMs: limits.shellParseTimeoutMs, maxCallDepth: limits.maxShellCallDepth }));
      } catch (err) {
        if (err instanceof DockergateError) return err;
        throw err;
      }
      if (evaluation.wanted.length === 0) return evaluation;
      if (round >= limits.maxShellCallDepth) return new LimitExceededError('maxShellCallDepth', limits.maxShellCallDepth, `files sourced by ${name}`);
      for (const path of evaluation.wanted) sourced.set(path, await this.sourcedText(path));
    }
  }

  private async sourcedText(path: string): Promise<string | Error> {
    const file = safeResolve(this.tree, path);
    if (!file) return new Error('it is not in the image');
    if (file.size > this.runtime.limits.maxShellScriptBytes) return new Error(`it is ${file.size} bytes, more than maxShellScriptBytes (${this.runtime.limits.maxShellScriptBytes})`);
    const bytes = await this.keptCopy(file);
    return bytes ? bytes.toString('utf8') : new Error('it has no #! line, so the extractor kept no copy of it');
  }

  /** A file's bytes, if the extractor kept them in the CAS (ELF files, #! scripts, KEPT_FILES); others are hashed only. */
  private async keptCopy(file: TreeFile): Promise<Buffer | undefined> {
    if (!file.sha256) return undefined;
    try {
      return await this.runtime.cas.get(file.sha256);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * Analyses (or fetches the facts of) objects; null marks a failed analysis. An object already
   * being analysed (by another call) is waited for, not asked for again. A failed object is
   * reported (fallBack) when a call that is not `ahead` asks for it: an analysis ahead
   * (analyseAhead) is a guess at what will be loaded, and what it guesses wrong says nothing.
   */
  private async factsOf(items: readonly { path: string; sha256: string }[], ahead = false): Promise<void> {
    for (const item of items) if (!this.objectPaths.has(item.sha256)) this.objectPaths.set(item.sha256, item.path);
    const waits = new Set<Promise<void>>();
    for (const item of items) {
      const running = this.analysing.get(item.sha256);
      if (running) waits.add(running);
    }
    const missing = items.filter((item) => !this.facts.has(item.sha256) && !this.analysing.has(item.sha256));
    if (missing.length > 0) waits.add(this.analyseBatch(missing, ahead));
    await Promise.all(waits);
    if (ahead) return;
    for (const item of items) {
      const failure = this.unreportedFailures.get(item.sha256);
      if (failure === undefined) continue;
      this.unreportedFailures.delete(item.sha256);
      this.fallBack('analysis-failed', `${item.path}: ${failure}`, item.path);
    }
  }

  /** One `analyseObjects` call for objects neither known nor being analysed; marked as being analysed until it ends. */
  private analyseBatch(missing: readonly { path: string; sha256: string }[], ahead: boolean): Promise<void> {
    const max = this.runtime.limits.maxObjectsPerScan;
    let unique = [...new Map(missing.map((item) => [item.sha256, item])).values()];
    const counted = this.facts.size + this.analysing.size;
    if (counted + unique.length > max) {
      // Budgets are spent on what is loaded, not on guesses: loadSet asks again.
      if (ahead) return Promise.resolve();
      // Objects past the budget get no facts: what they would load and reach is unknown.
      unique = unique.slice(0, Math.max(0, max - counted));
      if (!this.objectBudgetSpent) this.overBudget(`more than ${max} objects to analyse (maxObjectsPerScan); the others are not followed`);
      this.objectBudgetSpent = true;
      if (unique.length === 0) return Promise.resolve();
    }
    this.analysisPhase.add(unique.length);
    const pathOf = new Map(unique.map((item) => [item.sha256, item.path]));
    const batch = (async () => {
      try {
        const { facts, failures, fresh } = await this.timer.time('analysis', () =>
          analyseObjects(this.runtime, unique.map((item) => item.sha256), this.options.signal, (sha256) => this.analysisPhase.done(pathOf.get(sha256) ?? sha256)),
        );
        this.fresh += fresh;
        for (const item of unique) {
          const found = facts.get(item.sha256);
          this.facts.set(item.sha256, found ?? null);
          if (!found) {
            this.failed++;
            const failure = failures.get(item.sha256);
            this.unreportedFailures.set(item.sha256, failure ? `${failure.code}: ${failure.message}` : 'no facts');
          }
        }
      } finally {
        for (const item of unique) this.analysing.delete(item.sha256);
      }
    })();
    for (const item of unique) this.analysing.set(item.sha256, batch);
    return batch;
  }

  /**
   * Analyses, in one batch and largest first, what `path` will load as its ELF headers say: the
   * same DT_NEEDED, DT_RPATH and DT_RUNPATH lists its facts will hold, resolved as loadSet resolves
   * them, and its interpreter. The analysis threads are then all busy from the start, instead of
   * one level of the load order at a time waiting for its largest object. A guess only: loadSet
   * follows the facts afterwards, so what this misses is analysed there; an object whose headers do
   * not parse here (or that is larger than maxElfBytes) is left to it.
   */
  private async analyseAhead(path: string, file: TreeFile): Promise<void> {
    const limits = this.runtime.limits;
    const found: { path: string; file: TreeFile }[] = [{ path, file }];
    const seen = new Set([file.sha256!]);
    const add = (object: { path: string; file: TreeFile } | undefined): void => {
      if (!object?.file.sha256 || object.file.kind !== 'elf' || seen.has(object.file.sha256)) return;
      seen.add(object.file.sha256);
      found.push(object);
    };
    let loader: Requester['loader'] = 'glibc';
    for (let i = 0; i < found.length && found.length <= limits.maxObjectsPerScan && !this.outOfTime(); i++) {
      const object = found[i]!;
      const headers = await this.dynamicHeaders(object.file);
      if (!headers) continue;
      if (i === 0 && headers.interpreter) {
        loader = headers.interpreter.includes('musl') ? 'musl' : 'glibc';
        const interpreter = safeResolve(this.tree, headers.interpreter);
        if (interpreter) add({ path: headers.interpreter, file: interpreter });
      }
      const requester: Requester = {
        path: object.path,
        rpath: headers.rpath.slice(0, limits.maxSearchPathEntries),
        runpath: headers.runpath.slice(0, limits.maxSearchPathEntries),
        loader,
      };
      for (const name of headers.needed.slice(0, limits.maxNeededPerObject)) add(findLibrary(name, requester, this.search));
    }
    if (found.length < 2) return;
    const batch = found.sort((a, b) => b.file.size - a.file.size).map((object) => ({ path: object.path, sha256: object.file.sha256! }));
    await this.factsOf(batch, true);
  }

  /**
   * An object's dynamic-linking headers: from its facts when this scan or the knowledge base has
   * them (a cluster coordinator then reads no object from S3), else parsed from its bytes. Facts
   * read from the knowledge base are the scan's facts of the object from then on (known, not
   * asked for again).
   */
  private async dynamicHeaders(file: TreeFile): Promise<Pick<ObjectFacts, 'needed' | 'rpath' | 'runpath' | 'interpreter'> | undefined> {
    const sha256 = file.sha256!;
    const known = this.facts.get(sha256);
    if (known) return known;
    if (known === null || file.size > this.runtime.limits.maxElfBytes) return undefined;
    const kb = await this.runtime.kb();
    const stored = (await kb.getFacts([{ sha256, analyser: this.runtime.analyser.name, analyserVersion: this.runtime.analyser.version }])).get(sha256);
    if (stored) {
      this.facts.set(sha256, stored);
      // Counted among the objects of the analysis phase, as a known one.
      this.analysisPhase.add(1);
      this.analysisPhase.done(file.path);
      return stored;
    }
    try {
      const elf = parseElf(await this.runtime.cas.get(sha256), this.runtime.limits);
      return { needed: elf.dynamic?.needed ?? [], rpath: elf.dynamic?.rpath ?? [], runpath: elf.dynamic?.runpath ?? [], ...(elf.interpreter ? { interpreter: elf.interpreter } : {}) };
    } catch {
      return undefined;
    }
  }

  /** The objects a program loads, in global-scope order (BFS over DT_NEEDED), and its loader. */
  private async loadSet(path: string, file: TreeFile): Promise<{ scope: LoadedObject[]; interpreter?: LoadedObject }> {
    await this.analyseAhead(path, file);
    await this.factsOf([{ path, sha256: file.sha256! }]);
    const programFacts = this.facts.get(file.sha256!);
    if (!programFacts) return { scope: [] };
    const loader: Requester['loader'] = programFacts.interpreter?.includes('musl') ? 'musl' : 'glibc';
    const scope: LoadedObject[] = [{ path, facts: programFacts }];
    let interpreter: LoadedObject | undefined;
    if (programFacts.interpreter) {
      const found = safeResolve(this.tree, programFacts.interpreter);
      if (found?.sha256 && found.kind === 'elf') {
        await this.factsOf([{ path: programFacts.interpreter, sha256: found.sha256 }]);
        const facts = this.facts.get(found.sha256);
        if (facts) interpreter = { path: programFacts.interpreter, facts };
        this.edge(path, programFacts.interpreter, 'interpreter');
      } else {
        this.decide('missing', `${path} needs the loader ${programFacts.interpreter}, which the image lacks: it cannot start`, path);
      }
    }
    const seen = new Set([file.sha256!]);
    for (let i = 0; i < scope.length && !this.outOfTime(); i++) {
      const object = scope[i]!;
      const requester: Requester = {
        path: object.path,
        rpath: this.capped(object.facts.rpath, `DT_RPATH of ${object.path}`, object.path),
        runpath: this.capped(object.facts.runpath, `DT_RUNPATH of ${object.path}`, object.path),
        loader,
      };
      const needed = object.facts.needed.length > this.runtime.limits.maxNeededPerObject ? object.facts.needed.slice(0, this.runtime.limits.maxNeededPerObject) : object.facts.needed;
      if (needed !== object.facts.needed) this.overBudget(`${object.path} has ${object.facts.needed.length} DT_NEEDED entries (maxNeededPerObject ${this.runtime.limits.maxNeededPerObject}); the first ${needed.length} are loaded`, object.path);
      const wanted = needed
        .map((name) => ({ name, found: findLibrary(name, requester, this.search) }))
        .filter(({ name, found }) => {
          if (!found) this.decide('missing', `${name} needed by ${object.path} is not in the image`, object.path);
          return found !== undefined && found.file.sha256 !== undefined;
        });
      await this.factsOf(wanted.map(({ found }) => ({ path: found!.path, sha256: found!.file.sha256! })));
      for (const { found } of wanted) {
        this.edge(object.path, found!.path, 'needs');
        const sha = found!.file.sha256!;
        if (seen.has(sha)) continue;
        seen.add(sha);
        const facts = this.facts.get(sha);
        if (facts) scope.push({ path: found!.path, facts });
      }
    }
    return { scope, ...(interpreter ? { interpreter } : {}) };
  }

  private readonly runTimeModules = new Map<string, LoadedObject[]>();

  private configured?: Promise<{ config: string; module: string }[]>;

  /**
   * ELF shared objects of the image that a text file under /etc names by absolute path (the
   * extractor keeps those files when they are at most maxShellScriptBytes), in path order.
   */
  private configuredModules(): Promise<{ config: string; module: string }[]> {
    this.configured ??= (async () => {
      const found = new Map<string, string>();
      for (const file of this.tree.files()) {
        if (!file.path.startsWith('/etc/') || file.type !== 'file' || file.kind !== 'other' || file.size > this.runtime.limits.maxShellScriptBytes) continue;
        const bytes = await this.keptCopy(file);
        // Text only: /etc/ld.so.cache lists every library, and no program reads a module from it.
        if (!bytes || bytes.includes(0)) continue;
        const text = bytes.toString('latin1');
        for (const [path] of text.matchAll(/\/[\w.+@/-]+\.so(?:\.[\d.]+)?(?![\w.])/g)) {
          if (found.has(path)) continue;
          const target = safeResolve(this.tree, path);
          if (target?.type === 'file' && target.kind === 'elf') found.set(path, file.path);
        }
      }
      return [...found].map(([module, config]) => ({ config, module }));
    })();
    return this.configured;
  }

  /** Each program's load set, computed once. */
  private readonly loadSets = new Map<string, Promise<{ scope: LoadedObject[]; interpreter?: LoadedObject }>>();

  /** Programs linked so far: path, applet (`*`: all) and whether their strings' exec targets were followed. */
  private readonly linkedPrograms = new Set<string>();

  /**
   * Loads and links a program, adding what it reaches. `followExecStrings`: its exec targets are
   * not known from its command line (a shell without a known script, a program that is no
   * wrapper), so the executables its strings name are followed; a later invocation that needs
   * them links the program again. `applet`: the name a multi-call program runs as (busybox).
   */
  private async runElf(path: string, file: TreeFile, via: readonly string[], followExecStrings: boolean, applet?: string, commandWords: readonly string[] = []): Promise<void> {
    if (!this.programs.has(path)) this.programs.set(path, { path, kind: 'elf', sha256: file.sha256!, via });
    let loading = this.loadSets.get(path);
    if (!loading) {
      loading = this.loadSet(path, file);
      this.loadSets.set(path, loading);
    }
    const { scope, interpreter } = await loading;
    if (scope.length === 0) return;
    const multiCall = appletsOf(scope[0]!.facts).length > 0;
    const commands = [...new Set(commandsOf(scope[0]!.facts).flatMap((item) => (commandWords.includes(item.name) ? [item.name] : [])))].sort();
    const variant = (strings: boolean): string => `${path}\0${multiCall ? (applet ?? '*') : ''}\0${commands.join(' ')}\0${strings}`;
    if (this.linkedPrograms.has(variant(true)) || (!followExecStrings && this.linkedPrograms.has(variant(false)))) return;
    this.linkedPrograms.add(variant(followExecStrings));
    const loadedAtRunTime: LoadedObject[] = [...(this.runTimeModules.get(path) ?? [])];
    const loadedAsDependency = new Set<LoadedObject>();
    const considered = new Set<string>();
    // An applet that runs another one in its own process (BusyBox's FEATURE_PREFER_APPLETS) does
    // what an exec of that applet does: those are followed like any program's exec targets.
    const applets = multiCall && applet ? [applet] : undefined;
    if (applets) this.decide('program', `${path} runs as its ${applet} applet: only that applet of the multi-call binary is linked`, path);
    if (commands.length > 0) this.decide('program', `${path} runs its ${commands.join(', ')} command: of its command table, only that is linked`, path);
    // Link, then let what is reached add run-time loaded objects and programs, to a fixpoint.
    for (let round = 0; round < 6 && !this.outOfTime(); round++) {
      if (round === 0) this.linkPhase.add(1);
      const linked = this.timer.timeSync('link', () => spanSync('link', { 'dockergate.program': path, 'dockergate.objects': scope.length }, () =>
        linkFacts({ scope, ...(interpreter ? { interpreter } : {}), loadedAtRunTime, loadedAsDependency, ...(applets ? { applets } : {}), ...(commands.length > 0 ? { commandWords: commands } : {}) }),
      ));
      if (round === 0) this.linkPhase.done(path);
      const added = await this.runTimeAdditions(path, scope, { loaded: loadedAtRunTime, asDependency: loadedAsDependency }, linked, considered, via, followExecStrings);
      if (added > 0 && round === 5) this.overBudget(`what ${path} loads and runs at run time still grew after 6 rounds of linking`, path);
      if (added === 0 || round === 5) {
        for (const [name, witness] of linked.witnesses) {
          // Each syscall keeps the most certain way any program reaches it, and that way's witness.
          const way = linked.ways.get(name) ?? 'direct';
          const known = this.origins.get(name);
          if (known !== undefined && SYSCALL_ORIGINS.indexOf(known) <= SYSCALL_ORIGINS.indexOf(way)) continue;
          this.syscalls.set(name, [...via, ...witness]);
          this.origins.set(name, way);
        }
        for (const [object, count] of linked.unresolvedBy) {
          const witness = [...via, ...(linked.unresolvedWitnesses.get(object) ?? [])].join(' → ');
          this.fallBack(
            'unresolved',
            `${count} syscall site(s) of ${object} reachable from ${path} (${witness}) have numbers the ${this.runtime.analyser.name} analyser could not bound${this.siteExamples(object, scope, loadedAtRunTime, interpreter)}: any syscall may be made there`,
            object,
          );
        }
        return;
      }
    }
  }

  /** A few of the object's unresolved sites, for the report: `(e.g. 0x1234 syscall-number: loaded from memory)`. */
  private siteExamples(objectPath: string, ...groups: readonly (readonly LoadedObject[] | LoadedObject | undefined)[]): string {
    const object = groups.flat().find((item): item is LoadedObject => item !== undefined && item.path === objectPath);
    const sites = object?.facts.unresolved.slice(0, 3) ?? [];
    if (sites.length === 0) return '';
    return ` (sites of the object include ${sites.map((site) => `0x${site.address.toString(16)} ${site.kind}${site.detail ? `: ${site.detail}` : ''}`).join('; ')})`;
  }

  /** Adds objects loaded at run time, and programs exec'd, that the linked reach implies. */
  private async runTimeAdditions(
    programPath: string,
    scope: readonly LoadedObject[],
    { loaded, asDependency }: { loaded: LoadedObject[]; asDependency: Set<LoadedObject> },
    { reachedImports: imports, syscalls }: Pick<LinkedReach, 'reachedImports' | 'syscalls'>,
    considered: Set<string>,
    via: readonly string[],
    followExecStrings: boolean,
  ): Promise<number> {
    const before = loaded.length;
    let promoted = 0;
    const objects = [...scope, ...loaded];
    /** Where ld.so finds `name` when `requester` dlopens it (its RPATH/RUNPATH, then the search path). */
    const resolve = (name: string, requester: LoadedObject) =>
      findLibrary(name, { path: requester.path, rpath: requester.facts.rpath, runpath: requester.facts.runpath, loader: 'glibc' }, this.search);
    /**
     * Adds a library loaded at run time. One the program opens itself (`dependency` false) has every
     * export as a root, since `dlsym` may fetch any of them; one that comes only as a dependency of
     * such a library is bound like any DT_NEEDED library: through the imports that reach it.
     */
    const addLibrary = async (name: string, requester: LoadedObject, kind: DecisionKind, why: string, dependency = false): Promise<void> => {
      const key = `lib:${name}:${dependency}`;
      if (considered.has(key)) return;
      considered.add(key);
      const found = resolve(name, requester);
      if (!found?.file.sha256) return;
      await this.factsOf([{ path: found.path, sha256: found.file.sha256 }]);
      const facts = this.facts.get(found.file.sha256);
      if (!facts) return;
      const known = objects.find((o) => o.facts.sha256 === facts.sha256);
      if (known) {
        // Opened by name now, after it came as a dependency: its exports become roots.
        if (!dependency && asDependency.delete(known)) {
          promoted++;
          this.decide(kind, `${known.path} loaded at run time by ${programPath}: ${why}`, known.path);
        }
        return;
      }
      const object = { path: found.path, facts };
      loaded.push(object);
      objects.push(object);
      if (dependency) asDependency.add(object);
      this.edge(requester.path, found.path, 'loads');
      this.decide(kind, `${found.path} loaded at run time by ${programPath}: ${why}`, found.path);
      // Its own dependencies come with it.
      await prefetch(facts.needed.map((needed) => ({ name: needed, requester: object })));
      for (const needed of facts.needed) await addLibrary(needed, object, kind, `needed by ${found.path}`, true);
    };
    /**
     * Analyses, in one batch (in parallel on the pool), the libraries `addLibrary` is about to be
     * called for one by one: the same objects, resolved the same way, so the result is unchanged;
     * only the waiting is shared.
     */
    const prefetch = async (wanted: readonly { name: string; requester: LoadedObject }[]): Promise<void> => {
      const items = wanted.flatMap(({ name, requester }) => {
        const found = resolve(name, requester);
        return found?.file.sha256 ? [{ path: found.path, sha256: found.file.sha256 }] : [];
      });
      if (items.length > 1) await this.factsOf(items);
    };
    if (imports.has('dlopen') || imports.has('dlmopen')) {
      await prefetch(objects.flatMap((object) => object.facts.pathStrings.filter((text) => SHARED_OBJECT_NAME.test(text)).map((text) => ({ name: text, requester: object }))));
      for (const object of [...objects]) {
        for (const text of object.facts.pathStrings) {
          if (SHARED_OBJECT_NAME.test(text)) await addLibrary(text, object, 'dlopen', `dlopen is reached and ${object.path} names ${text}`);
        }
      }
      // A path read at run time (Apache's LoadModule, nginx's load_module) is no string of any
      // object: the shared objects named by the configuration files under a directory (or file)
      // the loaded objects name, such as /etc/apache2, are candidates.
      const configPlaces = objects.flatMap((object) => object.facts.pathStrings.filter((text) => text.startsWith('/etc/') && text.length > '/etc/'.length));
      const configured = (config: string): boolean => configPlaces.some((place) => config === place || config.startsWith(`${place.replace(/\/$/, '')}/`));
      const configuredModules = (await this.configuredModules()).filter(({ config }) => configured(config));
      await prefetch(configuredModules.map(({ module }) => ({ name: module, requester: scope[0]! })));
      for (const { config, module } of configuredModules) await addLibrary(module, scope[0]!, 'dlopen', `dlopen is reached, ${config} names ${module}`);
    }
    if ([...imports].some((name) => NSS_FUNCTIONS.has(name))) {
      const nssModules = await this.nssModules();
      await prefetch(nssModules.map((module) => ({ name: module, requester: scope[0]! })));
      for (const module of nssModules) await addLibrary(module, scope[0]!, 'nss', `NSS functions are reached and /etc/nsswitch.conf names it`);
    }
    if (imports.has('iconv_open')) {
      const gconvModules = this.gconvModules();
      await prefetch(gconvModules.map((module) => ({ name: module, requester: scope[0]! })));
      for (const module of gconvModules) await addLibrary(module, scope[0]!, 'gconv', 'iconv_open is reached');
    }
    const runModules = this.runTimeModules.get(programPath) ?? [];
    for (const module of runModules) if (!loaded.includes(module)) loaded.push(module);
    // exec: system/popen run /bin/sh; and, unless the command line says what it runs, the
    // absolute paths of executables in the strings of loaded objects (a program that execs a
    // computed path, such as a CGI script, runs what no string names; these stand in for it).
    const execs = syscalls.has('execve') || syscalls.has('execveat') || [...imports].some((name) => EXEC_FUNCTIONS.has(name));
    if (execs) {
      if (imports.has('system') || imports.has('popen')) this.enqueueExec('/bin/sh', programPath, 'system/popen is reached', via);
      for (const object of followExecStrings ? objects : []) {
        for (const text of object.facts.pathStrings) {
          if (!text.startsWith('/') || considered.has(`exec:${text}`)) continue;
          considered.add(`exec:${text}`);
          const file = safeResolve(this.tree, text);
          if (file?.type === 'file' && (file.mode & 0o111) !== 0 && (file.kind === 'elf' || file.kind === 'script')) {
            this.enqueueExec(text, programPath, `execve is reached and ${object.path} names ${text}`, via);
          }
        }
      }
    }
    return loaded.length - before + promoted;
  }

  private enqueueExec(target: string, programPath: string, why: string, via: readonly string[]): void {
    const argv = knownArgs([target]);
    if (this.seenInvocations.has(invocationKey(argv))) return;
    this.decide('exec', `${programPath} may run ${target}: ${why}`, target);
    this.enqueue({ argv, via: [...via] });
  }

  private nss?: Promise<string[]>;

  /** The NSS modules /etc/nsswitch.conf names, read once per scan. */
  private nssModules(): Promise<string[]> {
    this.nss ??= (async () => {
      // glibc's default when the file is absent (nss/nsswitch.c): files, and dns for hosts.
      const text = (await this.imageFile('/etc/nsswitch.conf'))?.toString('utf8') ?? 'passwd: files\ngroup: files\nhosts: files dns\n';
      const services = new Set<string>();
      for (const line of text.split('\n')) {
        const [, sources] = line.replace(/#.*/, '').split(':');
        for (const word of (sources ?? '').split(/\s+/)) if (/^[a-z][\w-]*$/.test(word)) services.add(word);
      }
      return [...services].map((service) => `libnss_${service}.so.2`);
    })();
    return this.nss;
  }

  private gconv?: string[];

  /** The image's gconv modules (iconv's converters), listed once per scan. */
  private gconvModules(): string[] {
    this.gconv ??= [...this.tree.files()].flatMap((file) => (file.kind === 'elf' && /\/gconv\/[^/]+\.so$/.test(file.path) ? [file.path] : []));
    return this.gconv;
  }

  private async addInterpreterModules(interpreter: string): Promise<void> {
    const modules = [...this.tree.files()].filter((file) => file.kind === 'elf' && file.sha256 && MODULE_DIRS.test(file.path) && SHARED_OBJECT_NAME.test(file.path));
    this.decide('interpreter-modules', `${interpreter} is an interpreter: all ${modules.length} native extension modules of the image are loadable`, interpreter);
    await this.factsOf(modules.map((file) => ({ path: file.path, sha256: file.sha256! })));
    const loaded = modules.flatMap((file) => {
      const facts = this.facts.get(file.sha256!);
      return facts ? [{ path: file.path, facts }] : [];
    });
    this.runTimeModules.set(interpreter, loaded);
  }

  /**
   * The documented safe fallback (ARCHITECTURE.md, "When the analysis is unsure"): a reachable
   * syscall site whose number the analysis could not bound, a reachable object that failed
   * analysis, a computed command, an unparsable script or a budget reached add Docker's default
   * profile (we know nothing better about that code). With `--strict` the scan fails instead.
   */
  private applyFallbacks(): void {
    if (!this.unsure) return;
    if (this.options.strict) {
      const reasons = this.decisions.filter((d) => d.kind === 'unresolved' || d.kind === 'analysis-failed' || d.kind === 'limit').map((d) => d.detail);
      throw new UnsureScanError(`the analysis is unsure (--strict): ${reasons.join('; ')}`);
    }
    this.fallbackToDockerDefault();
  }

  private fallbackToDockerDefault(): void {
    const added: string[] = [];
    for (const name of DOCKER_DEFAULT_FALLBACK_SYSCALLS(this.config.platform)) {
      if (!this.syscalls.has(name)) {
        this.syscalls.set(name, ['fallback: code the analysis could not follow may run; Docker\'s default profile is allowed']);
        this.origins.set(name, 'fallback');
        added.push(name);
      }
    }
    this.decide('fallback', `code the analysis could not follow may run: Docker's default profile added ${added.length} syscalls`);
  }

  result(): Omit<ScanResult, 'reference' | 'manifestDigest' | 'configDigest' | 'platform' | 'config'> {
    const objects = [...this.objectPaths.entries()]
      .filter(([sha]) => this.facts.get(sha))
      .map(([sha256, path]) => ({ path, sha256, ...(this.facts.get(sha256)?.soname ? { soname: this.facts.get(sha256)!.soname! } : {}) }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    return {
      programs: [...this.programs.values()],
      objects,
      edges: [...this.edges.values()],
      syscalls: new Map([...this.syscalls.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
      origins: Object.fromEntries([...this.origins.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
      decisions: this.decisions,
      unsure: this.unsure,
      analysed: { objects: this.facts.size, fresh: this.fresh, failed: this.failed },
    };
  }
}

/** The scan was unsure and `--strict` asked to fail rather than fall back. */
export class UnsureScanError extends DockergateError {
  readonly code = 'unsupported';
}

