/**
 * Turns one object's call graph into its `ObjectFacts`: the reach of every root (exports, entry
 * point, initialisers, callbacks, data regions), deduplicated, plus the header facts the
 * linker needs. Shared by every analyser, so facts differ only where the graphs do.
 * Facts are sorted and free of run-dependent values, so equal bytes give equal facts.
 */
import type { ExportSummary, ObjectFacts, Reach, UnresolvedSite } from '../../store/facts.js';
import { UnsupportedError } from '../../infra/errors.js';
import type { ElfFile } from '../elf/index.js';
import { syscallName } from '../syscalls/index.js';
import type { ObjectGraph } from './object-graph.js';
import { type Closure, ClosureComputer } from './summaries.js';

/** Path-like strings kept per object (for exec and dlopen decisions), at most this many. */
const MAX_PATH_STRINGS = 4_096;

export interface NamedRoot {
  /** `name`, `name@version` or `name@@version` (default version), as readelf prints. */
  readonly name: string;
  readonly address: number;
}

/** Where code is entered from outside: read from the ELF headers, the same for every analyser. */
export interface ObjectRoots {
  readonly exports: readonly NamedRoot[];
  readonly initialisers: readonly NamedRoot[];
  readonly entry?: number;
}

export interface AnalyserIdentity {
  readonly name: string;
  readonly version: number;
}

export function assembleFacts(
  elf: ElfFile,
  sha256: string,
  identity: AnalyserIdentity,
  roots: ObjectRoots,
  graph: ObjectGraph,
  codeBytes: number,
): ObjectFacts {
  const closures = new ClosureComputer(graph);
  const nativeArch = analysedArch(elf);
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
    const dataRegions = new Set<number>();
    const names = new Set<string>();
    let unresolvedCount = 0;
    let unresolvedArguments = 0;
    let indirect = false;
    for (const closure of parts) {
      for (const address of closure.callbacks) callbacks.add(callbackIndex.get(address)!);
      for (const region of closure.dataRegions) dataRegions.add(region);
      for (const name of closure.names) names.add(name);
      for (const key of closure.syscalls) {
        const [table, number] = key.split(':');
        syscalls.add(syscallName(table === 'i386' ? 'i386' : nativeArch, Number(number)));
      }
      for (const name of closure.imports) imports.add(name);
      unresolvedCount += closure.unresolvedCount;
      unresolvedArguments += closure.unresolvedArguments;
      indirect ||= closure.indirect;
    }
    const reach: Reach = {
      syscalls: [...syscalls].sort(),
      imports: [...imports].sort(),
      unresolvedCount,
      // Only analysers that leave wrapper arguments unresolved (radare2) produce the field.
      ...(unresolvedArguments > 0 ? { unresolvedArguments } : {}),
      indirect,
      callbacks: [...callbacks].sort((a, b) => a - b),
      ...(dataRegions.size > 0 ? { dataRegions: [...dataRegions].sort((a, b) => a - b) } : {}),
      ...(names.size > 0 ? { names: [...names].sort() } : {}),
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

  const exports = roots.exports
    .map((item) => ({ item, roots: rootsOf(graph, item.address) }))
    .sort((a, b) => (a.item.name < b.item.name ? -1 : a.item.name > b.item.name ? 1 : a.item.address - b.item.address))
    .map(({ item, roots }) => summarise(item.name, roots));
  const initialisers = roots.initialisers.map((item) => summarise(item.name, [item.address]));
  const entry = roots.entry !== undefined && graph.functions.has(roots.entry) ? summarise('_start', [roots.entry]) : undefined;
  const callbacks = callbackAddresses.map((address) => {
    const name = graph.functions.get(address)?.names?.[0];
    return { address, reach: reachOfClosures([closures.callbackClosure(address)]), ...(name ? { name } : {}) };
  });
  const dataRegions = graph.dataRegions.map((region, k) => {
    const section = region.address === 0 ? undefined : elf.sections.find((s) => s.addr !== 0 && region.address >= s.addr && region.address < s.addr + s.size)?.name;
    return {
      address: region.address,
      reach: reachOfClosures([closures.regionClosure(k)]),
      holds: region.holds,
      ...(region.symbols.length > 0 ? { symbols: region.symbols } : {}),
      always: region.always,
      ...(section ? { section } : {}),
    };
  });
  const copiedData = elf.copyRelocatedSymbols();

  const unresolved: UnresolvedSite[] = [];
  for (const fn of graph.functions.values()) for (const site of fn.unresolved) unresolved.push(site);
  unresolved.sort((a, b) => a.address - b.address);

  return {
    ...headerFacts(elf, sha256, identity),
    ...(entry ? { entry } : {}),
    initialisers,
    exports,
    callbacks,
    dataRegions,
    reaches,
    unresolved,
    symbolNames: graph.namesTaken,
    ...(copiedData.length > 0 ? { copiedData } : {}),
    pathStrings: pathStrings(elf),
    stats: {
      functions: graph.functions.size,
      syscallSites: graph.stats.syscallSites,
      resolvedSites: graph.stats.resolvedSites,
      codeBytes,
    },
  };
}

/** The architectures whose code is analysed; others are `unsupported` (scan falls back for them). */
export function analysedArch(elf: ElfFile): 'x86_64' | 'i386' {
  if (elf.arch === 'x86_64' || elf.arch === 'i386') return elf.arch;
  throw new UnsupportedError(`${elf.arch} code is not analysed yet (x86_64 and i386 are)`);
}

/** An IFUNC export runs whichever implementation its resolver picks: all of them are roots. */
function rootsOf(graph: ObjectGraph, address: number): number[] {
  const implementations = graph.ifuncImplementations.get(address);
  return implementations ? [address, ...implementations] : [address];
}

function headerFacts(elf: ElfFile, sha256: string, identity: AnalyserIdentity): Omit<ObjectFacts, 'entry' | 'initialisers' | 'callbacks' | 'dataRegions' | 'exports' | 'reaches' | 'unresolved' | 'symbolNames' | 'copiedData' | 'pathStrings' | 'stats'> {
  return {
    sha256,
    analyser: identity.name,
    analyserVersion: identity.version,
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
    // indexOf finds each NUL natively: most of these sections are tables, not text.
    for (let start = 0, i = bytes.indexOf(0); i !== -1 && found.size < MAX_PATH_STRINGS; start = i + 1, i = bytes.indexOf(0, start)) {
      const length = i - start;
      // Only a string that starts with '/' or "lib" can be either: the others are not decoded.
      const first = bytes[start];
      if (length >= 2 && length <= 256 && (first === 0x2f || (first === 0x6c && bytes[start + 1] === 0x69 && bytes[start + 2] === 0x62))) {
        const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, length).toString('latin1');
        const isPath = first === 0x2f && /^\/[\x21-\x7e]+$/.test(text) && !text.includes('//') && /[a-zA-Z]/.test(text);
        if (isPath || LIBRARY_NAME.test(text)) found.add(text);
      }
    }
  }
  return [...found].sort();
}
