/**
 * The native analyser: ELF (worker/elf) + x86 decoding (iced-x86) → per-object facts.
 * Facts are sorted and free of run-dependent values, so equal bytes give equal facts.
 */
import { UnsupportedError } from '../../infra/errors.js';
import { DEFAULT_LIMITS, type Limits } from '../../infra/limits.js';
import type { AnalysisContext, Analyser, ExportSummary, ObjectFacts, Reach, UnresolvedSite } from '../analyser.js';
import { type ElfFile, parseElf } from '../elf/index.js';
import { syscallName } from '../syscalls/index.js';
import { NATIVE_ANALYSER_NAME, NATIVE_ANALYSER_VERSION } from './identity.js';
import { buildCallGraph, type CallGraph } from './call-graph.js';
import { buildCodeModel } from './elf-model.js';
import { type Closure, ClosureComputer } from './summaries.js';

export { NATIVE_ANALYSER_NAME, NATIVE_ANALYSER_VERSION };

/** Path-like strings kept per object (for exec and dlopen decisions), at most this many. */
const MAX_PATH_STRINGS = 4_096;

export class NativeAnalyser implements Analyser {
  readonly name = NATIVE_ANALYSER_NAME;
  readonly version = NATIVE_ANALYSER_VERSION;

  constructor(private readonly limits: Limits = DEFAULT_LIMITS) {}

  async analyze(bytes: Uint8Array, sha256: string, context?: AnalysisContext): Promise<ObjectFacts> {
    return analyzeElf(bytes, sha256, this.limits, context);
  }
}

export function analyzeElf(bytes: Uint8Array, sha256: string, limits: Limits, context?: AnalysisContext): ObjectFacts {
  const elf = parseElf(bytes, limits);
  const base = baseFacts(elf, sha256);
  if (elf.arch !== 'x86_64' && elf.arch !== 'i386') {
    throw new UnsupportedError(`${elf.arch} code is not analysed yet (x86_64 and i386 are)`);
  }
  context?.working();
  const model = buildCodeModel(elf);
  const graph = buildCallGraph(model, limits.maxInstructions);
  context?.working();
  const closures = new ClosureComputer(graph);
  const nativeArch = elf.arch;
  // Reaches are deduplicated: roots with the same closure share one entry.
  const reaches: Reach[] = [];
  const reachIds = new Map<string, number>();
  // Callbacks are indexed by address order; reaches name them by index.
  const callbackAddresses = [...graph.addressTaken].sort((a, b) => a - b);
  const callbackIndex = new Map(callbackAddresses.map((address, i) => [address, i]));
  const reachOfClosures = (parts: readonly Closure[]): number => {
    const syscalls = new Set<string>();
    const imports = new Set<string>();
    const callbacks = new Set<number>();
    let unresolvedCount = 0;
    let indirect = false;
    for (const closure of parts) {
      for (const address of closure.callbacks) callbacks.add(callbackIndex.get(address)!);
      for (const key of closure.syscalls) {
        const [table, number] = key.split(':');
        syscalls.add(syscallName(table === 'i386' ? 'i386' : nativeArch, Number(number)));
      }
      for (const name of closure.imports) imports.add(name);
      unresolvedCount += closure.unresolvedCount;
      indirect ||= closure.indirect;
    }
    const reach: Reach = {
      syscalls: [...syscalls].sort(),
      imports: [...imports].sort(),
      unresolvedCount,
      indirect,
      callbacks: [...callbacks].sort((a, b) => a - b),
    };
    const key = JSON.stringify(reach);
    let id = reachIds.get(key);
    if (id === undefined) {
      id = reaches.length;
      reaches.push(reach);
      reachIds.set(key, id);
    }
    return id;
  };
  // Most roots have one closure, shared by their whole call-graph component: map it once.
  const reachOfClosure = new WeakMap<Closure, number>();
  const summarise = (symbol: string, roots: readonly number[]): ExportSummary => {
    const parts = roots.map((root) => closures.closure(root));
    let reach = parts.length === 1 ? reachOfClosure.get(parts[0]!) : undefined;
    if (reach === undefined) {
      reach = reachOfClosures(parts);
      if (parts.length === 1) reachOfClosure.set(parts[0]!, reach);
    }
    return { symbol, address: roots[0] ?? 0, reach };
  };

  const exports = model.exports
    .map((item) => ({ item, roots: rootsOf(graph, item.address) }))
    .sort((a, b) => (a.item.name < b.item.name ? -1 : a.item.name > b.item.name ? 1 : a.item.address - b.item.address))
    .map(({ item, roots }) => summarise(item.name, roots));
  const initialisers = model.initialisers.map((item) => summarise(item.name, [item.address]));
  const entry = model.entry !== undefined && graph.functions.has(model.entry) ? summarise('_start', [model.entry]) : undefined;
  const callbacks = callbackAddresses.map((address) => ({ address, reach: reachOfClosures([closures.callbackClosure(address)]) }));
  const dataPointers = reachOfClosures([closures.dataClosure()]);

  const unresolved: UnresolvedSite[] = [];
  for (const fn of graph.functions.values()) for (const site of fn.unresolved) unresolved.push(site);
  unresolved.sort((a, b) => a.address - b.address);

  return {
    ...base,
    ...(entry ? { entry } : {}),
    initialisers,
    exports,
    callbacks,
    dataPointers,
    reaches,
    unresolved,
    pathStrings: pathStrings(elf),
    stats: {
      functions: graph.functions.size,
      syscallSites: graph.stats.syscallSites,
      resolvedSites: graph.stats.resolvedSites,
      codeBytes: model.ranges.reduce((sum, range) => sum + range.bytes.length, 0),
    },
  };
}

/** An IFUNC export runs whichever implementation its resolver picks: all of them are roots. */
function rootsOf(graph: CallGraph, address: number): number[] {
  const implementations = graph.ifuncImplementations.get(address);
  return implementations ? [address, ...implementations] : [address];
}

function baseFacts(elf: ElfFile, sha256: string): Omit<ObjectFacts, 'entry' | 'initialisers' | 'callbacks' | 'dataPointers' | 'exports' | 'reaches' | 'unresolved' | 'pathStrings' | 'stats'> {
  return {
    sha256,
    analyser: NATIVE_ANALYSER_NAME,
    analyserVersion: NATIVE_ANALYSER_VERSION,
    arch: elf.arch,
    elfType: elf.type,
    ...(elf.interpreter ? { interpreter: elf.interpreter } : {}),
    ...(elf.dynamic?.soname ? { soname: elf.dynamic.soname } : {}),
    needed: [...(elf.dynamic?.needed ?? [])],
    rpath: [...(elf.dynamic?.rpath ?? [])],
    runpath: [...(elf.dynamic?.runpath ?? [])],
    flags: { static: elf.isStatic, pie: elf.isPie, go: elf.go !== undefined, stripped: elf.stripped },
  };
}

/** Library names as dlopen takes them: `libfoo.so`, `libfoo.so.1.2`, `libnss_files.so.2`. */
const LIBRARY_NAME = /^lib[\w+.-]*\.so(\.[\d.]+)?$/;

/** NUL-terminated strings that look like absolute paths or library names, from read-only data. */
function pathStrings(elf: ElfFile): string[] {
  const found = new Set<string>();
  for (const section of elf.sections) {
    if (!section.hasFileData || (section.flags & 0x2) === 0 || (section.flags & 0x4) !== 0) continue; // SHF_ALLOC, not SHF_EXECINSTR
    if (!/^\.(rodata|data)/.test(section.name)) continue;
    const bytes = elf.sectionBytes(section.name);
    if (!bytes) continue;
    let start = 0;
    for (let i = 0; i < bytes.length && found.size < MAX_PATH_STRINGS; i++) {
      if (bytes[i] !== 0) continue;
      const length = i - start;
      if (length >= 2 && length <= 256) {
        const text = Buffer.from(bytes.subarray(start, i)).toString('latin1');
        const isPath = bytes[start] === 0x2f && /^\/[\x21-\x7e]+$/.test(text) && !text.includes('//') && /[a-zA-Z]/.test(text);
        if (isPath || LIBRARY_NAME.test(text)) found.add(text);
      }
      start = i + 1;
    }
  }
  return [...found].sort();
}
