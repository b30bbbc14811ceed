/**
 * Builds the call-graph engine's `CodeModel` from a parsed ELF file: which bytes are code, where
 * functions start, which GOT slots bind which imports, and which code addresses data holds.
 */
import type { ElfFile } from '../elf/index.js';
import type { CodeRange } from '../x86/sweep.js';
import type { CodeModel, DataLayout, FunctionSeed, NamedAddress } from './code-model.js';
import { APPLET_EXPORT_PREFIX, COMMAND_EXPORT_PREFIX } from '../../store/facts.js';
import { findCommandTable } from './command-tables.js';

const SHF_ALLOC = 0x2;
const SHF_EXECINSTR = 0x4;
const SHT_NOBITS = 8;
const PF_X = 1;
const PT_LOAD = 1;
/** R_X86_64_IRELATIVE and R_386_IRELATIVE (psABI): the slot receives the resolver's result. */
const IRELATIVE = { x86_64: 37, i386: 42 } as const;
/** R_X86_64_64 and R_386_32: a symbol's absolute address stored in data (function-pointer tables). */
const ABSOLUTE = { x86_64: 1, i386: 1 } as const;
const PLT_SECTIONS = new Set(['.plt', '.plt.sec', '.plt.got', '.iplt']);

export function buildCodeModel(elf: ElfFile): CodeModel {
  const arch = elf.arch === 'i386' ? 'i386' : 'x86_64';
  const ranges = codeRanges(elf);
  const inCode = (address: number): boolean => ranges.some((r) => address >= r.start && address < r.start + r.bytes.length);

  const seeds: FunctionSeed[] = [];
  const exports: NamedAddress[] = [];
  const ifuncResolvers = new Set<number>();
  for (const symbol of [...elf.symbols, ...elf.dynamicSymbols]) {
    if (!symbol.defined || (symbol.type !== 'func' && symbol.type !== 'ifunc') || !inCode(symbol.value)) continue;
    seeds.push({ address: symbol.value, names: [symbol.name] });
    if (symbol.type === 'ifunc') ifuncResolvers.add(symbol.value);
  }
  for (const symbol of elf.dynamicSymbols) {
    if (!symbol.defined || (symbol.type !== 'func' && symbol.type !== 'ifunc')) continue;
    if (symbol.bind !== 'global' && symbol.bind !== 'weak' && symbol.bind !== 'unique') continue;
    if (symbol.visibility === 'hidden' || symbol.visibility === 'internal') continue;
    if (!inCode(symbol.value)) continue;
    const name = symbol.version ? `${symbol.name}${symbol.defaultVersion ? '@@' : '@'}${symbol.version}` : symbol.name;
    exports.push({ name, address: symbol.value });
  }
  for (const fde of elf.ehFrameFunctions()) if (inCode(fde.start)) seeds.push({ address: fde.start, names: [] });
  for (const fn of elf.go?.functions ?? []) if (inCode(fn.entry)) seeds.push({ address: fn.entry, names: [fn.name] });

  // A PLT section must lie inside code: a header's size claim never drives a loop by itself.
  const insideCode = (start: number, size: number): boolean => ranges.some((r) => start >= r.start && start + size <= r.start + r.bytes.length);
  const plt = elf.sections
    .filter((section) => PLT_SECTIONS.has(section.name) && section.size > 0 && insideCode(section.addr, section.size))
    .map((section) => ({ start: section.addr, size: section.size, entrySize: section.entsize >= 8 ? section.entsize : 16 }));

  const gotSlots = new Map(elf.gotSlotSymbols());
  const irelative = IRELATIVE[arch];
  const irelativeSlots = new Map<number, number>();
  const dataCodePointers = new Set<number>();
  /** Code pointers at known data slots (relocations, or aligned words of an ET_EXEC): [slot, target]. */
  const slotPointers: [number, number][] = [];
  const dataImports = new Set<string>();
  /** Imports whose address a data slot holds, and data addresses a data slot holds: [slot, ...]. */
  const importSlots: [number, string][] = [];
  const dataSlots: [number, number][] = [];
  const dynamicSymbols = elf.dynamicSymbols;
  for (const relocation of elf.relocations) {
    if (relocation.type === irelative && inCode(relocation.addend)) {
      irelativeSlots.set(relocation.offset, relocation.addend);
      ifuncResolvers.add(relocation.addend);
    } else if (relocation.type === ABSOLUTE[arch] && relocation.symbolName) {
      const symbol = relocation.table.includes('dyn') || relocation.table.startsWith('DT_') ? dynamicSymbols[relocation.symbolIndex] : undefined;
      if (symbol?.defined) {
        const value = symbol.value + relocation.addend;
        if (inCode(value)) slotPointers.push([relocation.offset, value]);
        else dataSlots.push([relocation.offset, value]);
      } else if (symbol) {
        dataImports.add(relocation.symbolName);
        importSlots.push([relocation.offset, relocation.symbolName]);
      }
    }
  }

  // A pointer the loader stores in a `.got` slot is reached only through code that names that slot
  // (rip-relative), so the call graph can tell a callback from a pointer that code only compares
  // with; every other relocated pointer is data that any code may read.
  const got = elf.sections.find((section) => section.name === '.got' && section.size > 0);
  const inGot = (slot: number): boolean => got !== undefined && slot >= got.addr && slot + (arch === 'i386' ? 4 : 8) <= got.addr + got.size;
  const gotCodePointers = new Map<number, number>();
  const gotData = new Map<number, number>();
  for (const [slot, target] of elf.relativeSlots()) {
    if (irelativeSlots.has(slot)) continue;
    if (!inCode(target)) {
      if (inGot(slot)) gotData.set(slot, target);
      else dataSlots.push([slot, target]);
    } else if (inGot(slot)) gotCodePointers.set(slot, target);
    else slotPointers.push([slot, target]);
  }
  const dynamic = elf.dynamic;
  const initialisers: NamedAddress[] = [];
  if (dynamic) {
    for (const [i, address] of dynamic.preinitArray.entries()) initialisers.push({ name: `preinit_array[${i}]`, address });
    if (dynamic.init !== undefined) initialisers.push({ name: 'DT_INIT', address: dynamic.init });
    for (const [i, address] of dynamic.initArray.entries()) initialisers.push({ name: `init_array[${i}]`, address });
    for (const address of [...dynamic.finiArray, ...(dynamic.fini !== undefined ? [dynamic.fini] : [])]) dataCodePointers.add(address);
  }
  for (const item of initialisers) dataCodePointers.add(item.address);
  // Without relocations, absolute code pointers in data are invisible: scan aligned words (ET_EXEC).
  if (elf.type === 'exec') slotPointers.push(...scanDataWords(elf, inCode));
  // A multi-call binary's applet table is not "function pointers in data": the applet that runs is
  // the one invoked (an export per applet; coordinator/plan/link.ts roots the invoked one).
  const word = elf.class === 64 ? 8 : 4;
  const applets = multiCallApplets(elf, slotPointers, word);
  // A PIE program's command table (openssl's, git's): likewise, the command that runs is the one invoked.
  const commands = elf.isPie && elf.interpreter !== undefined && arch === 'x86_64' ? findCommandTable(slotPointers, stringSlots(elf, dataSlots), dataSlots, word) : undefined;
  const inTable = (slot: number): boolean => (applets !== undefined && slot >= applets.tableStart && slot < applets.tableEnd) || (commands?.functionSlots.has(slot) ?? false);
  // Code pointers held outside the sections split into data objects are held whatever code runs.
  const partitioned = elf.type === 'dyn' && arch === 'x86_64' ? partitionedSections(elf) : undefined;
  const inPartition = (slot: number): boolean => partitioned?.some((section) => slot >= section.start && slot < section.end) ?? false;
  const alwaysCode = new Set(dataCodePointers);
  const codeSlots: [number, number][] = [];
  for (const [slot, target] of slotPointers) {
    if (inTable(slot)) continue;
    dataCodePointers.add(target);
    if (inPartition(slot)) codeSlots.push([slot, target]);
    else alwaysCode.add(target);
  }
  for (const applet of applets?.mains ?? []) {
    exports.push({ name: `${APPLET_EXPORT_PREFIX}${applet.name}`, address: applet.address });
    seeds.push({ address: applet.address, names: [`${applet.name}_main`] });
  }
  for (const command of commands?.commands ?? []) exports.push({ name: `${COMMAND_EXPORT_PREFIX}${command.name}`, address: command.address });

  // Functions found by name at run time (dlsym on the object itself, musl's loader finding its next
  // stage): an exported function whose name is a read-only string may be called once that string's
  // address is handed out. x86-64 code and non-PIE immediates name the string (the call graph decides
  // per function); data names it through a relocation (or, in an ET_EXEC, an absolute word). i386 PIC
  // code reaches strings through the GOT pointer, which the sweep does not follow: there every such
  // string counts as held in data.
  const exportByName = new Map(exports.map((item) => [item.name.split('@')[0]!, item.address]));
  const identifierStrings = new Map(readOnlyStrings(elf));
  const exportNameStrings = new Map<number, number>();
  for (const [address, text] of identifierStrings) {
    const exported = exportByName.get(text);
    if (exported !== undefined) exportNameStrings.set(address, exported);
  }
  const heldStringSlots = [...elf.relativeSlots(), ...(elf.type === 'exec' ? scanDataWords(elf, (value) => identifierStrings.has(value)) : [])];
  const heldStrings = heldStringSlots.map(([, value]) => value);
  // Names in split data count once their region is held; the rest whatever runs.
  const nameSlots: [number, string][] = [];
  const dataNames = new Set<string>();
  for (const [slot, address] of heldStringSlots) {
    const text = identifierStrings.get(address);
    if (text === undefined) continue;
    if (inPartition(slot)) nameSlots.push([slot, text]);
    else dataNames.add(text);
  }
  if (arch === 'i386') {
    for (const exported of exportNameStrings.values()) dataCodePointers.add(exported);
    exportNameStrings.clear();
  } else {
    for (const address of heldStrings) {
      const exported = exportNameStrings.get(address);
      if (exported === undefined) continue;
      dataCodePointers.add(exported);
      alwaysCode.add(exported);
    }
  }

  const dataLayout: DataLayout | undefined = partitioned && {
    sections: partitioned,
    codeSlots,
    nameSlots,
    commandData: commands?.recordData ?? [],
    importSlots: importSlots.filter(([slot]) => inPartition(slot)),
    dataSlots: commands ? dataSlots.filter(([slot]) => !commands.dataSlots.has(slot)) : dataSlots,
    gotData,
    exportedData: elf.dynamicSymbols
      .filter((symbol) => symbol.defined && symbol.type === 'object' && symbol.bind !== 'local' && symbol.visibility !== 'hidden' && symbol.visibility !== 'internal')
      .map((symbol) => ({ address: symbol.value, name: symbol.name })),
    alwaysCode: [...alwaysCode].sort((a, b) => a - b),
    alwaysImports: [...new Set(importSlots.filter(([slot]) => !inPartition(slot)).map(([, name]) => name))].sort(),
  };

  const entry = elf.entry !== 0 && inCode(elf.entry) ? elf.entry : undefined;
  const goStaticData: CodeRange[] = [];
  if (elf.go !== undefined && elf.isStatic && elf.relocations.length === 0) {
    for (const segment of elf.segments) {
      if (segment.type !== PT_LOAD || (segment.flags & PF_X) !== 0 || segment.filesz === 0) continue;
      const bytes = elf.readVirtual(segment.vaddr, segment.filesz);
      if (bytes) goStaticData.push({ start: segment.vaddr, bytes });
    }
  }
  return {
    arch,
    bitness: arch === 'i386' ? 32 : 64,
    goAbi: elf.go !== undefined,
    ranges,
    seeds,
    plt,
    gotSlots,
    irelativeSlots,
    ifuncResolvers,
    dataCodePointers: [...dataCodePointers].sort((a, b) => a - b),
    gotCodePointers,
    exportNameStrings,
    identifierStrings,
    dataNames: [...dataNames].sort(),
    dataImports: [...dataImports].sort(),
    goStaticData,
    ...(dataLayout ? { dataLayout } : {}),
    exports,
    ...(entry !== undefined ? { entry } : {}),
    initialisers: initialisers.filter((item) => inCode(item.address)),
  };
}

/**
 * Executable sections (SHF_EXECINSTR) when the file has section headers, else executable segments.
 * Section headers are not what the kernel maps: the loader runs whatever executable PT_LOAD
 * segments hold. A file whose entry point lies in an executable segment but outside every
 * executable section (headers that lie, or an odd linker script) would lose its entry, and with it
 * every syscall it makes; then the segments are the code.
 */
function codeRanges(elf: ElfFile): CodeRange[] {
  const fromSections: CodeRange[] = [];
  for (const section of elf.sections) {
    if ((section.flags & (SHF_ALLOC | SHF_EXECINSTR)) !== (SHF_ALLOC | SHF_EXECINSTR) || section.type === SHT_NOBITS || section.size === 0) continue;
    const bytes = elf.readVirtual(section.addr, section.size);
    if (bytes) fromSections.push({ start: section.addr, bytes });
  }
  const fromSegments: CodeRange[] = [];
  for (const segment of elf.segments) {
    if (segment.type !== PT_LOAD || (segment.flags & PF_X) === 0 || segment.filesz === 0) continue;
    const bytes = elf.readVirtual(segment.vaddr, segment.filesz);
    if (bytes) fromSegments.push({ start: segment.vaddr, bytes });
  }
  const covers = (ranges: readonly CodeRange[], address: number): boolean => ranges.some((r) => address >= r.start && address < r.start + r.bytes.length);
  const entryLost = elf.entry !== 0 && !covers(fromSections, elf.entry) && covers(fromSegments, elf.entry);
  const ranges = fromSections.length > 0 && !entryLost ? fromSections : fromSegments;
  return ranges.sort((a, b) => a.start - b.start);
}

/**
 * Sections whose pointers are split by data object: allocated, not code, with file bytes. Not the
 * GOT (its slots are read one by one by the code that names them), the init/fini arrays (the
 * loader reads them), TLS images (reached through the thread pointer) or the dynamic section.
 */
function partitionedSections(elf: ElfFile): { start: number; end: number }[] {
  const excluded = new Set(['.got', '.got.plt', '.init_array', '.fini_array', '.preinit_array', '.tdata', '.dynamic']);
  return elf.sections
    .filter((section) => (section.flags & SHF_ALLOC) !== 0 && (section.flags & SHF_EXECINSTR) === 0 && section.hasFileData && section.size > 0 && !excluded.has(section.name))
    .map((section) => ({ start: section.addr, end: section.addr + section.size }))
    .sort((a, b) => a.start - b.start);
}

/** Pointer-sized, aligned words of allocated non-code sections whose value `wanted` accepts: [slot, value]. */
function scanDataWords(elf: ElfFile, wanted: (value: number) => boolean): [number, number][] {
  const word = elf.class === 64 ? 8 : 4;
  const found: [number, number][] = [];
  for (const section of elf.sections) {
    if ((section.flags & SHF_ALLOC) === 0 || (section.flags & SHF_EXECINSTR) !== 0 || !section.hasFileData || section.size < word) continue;
    const bytes = elf.readVirtual(section.addr, section.size);
    if (!bytes) continue;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const skew = (word - (section.addr % word)) % word;
    for (let offset = skew; offset + word <= bytes.length; offset += word) {
      const value = word === 8 ? Number(view.getBigUint64(offset, elf.littleEndian)) : view.getUint32(offset, elf.littleEndian);
      if (value !== 0 && wanted(value)) found.push([section.addr + offset, value]);
    }
  }
  return found;
}

/** An identifier as a C symbol name (what `dlsym` is given): `[A-Za-z_][A-Za-z0-9_.]*`, by byte. */
const IDENTIFIER_BYTE = byteClass((c) => /[A-Za-z0-9_.]/.test(c));
const IDENTIFIER_START_BYTE = byteClass((c) => /[A-Za-z_]/.test(c));

function byteClass(member: (char: string) => boolean): Uint8Array {
  const table = new Uint8Array(256);
  for (let byte = 0; byte < 256; byte++) table[byte] = member(String.fromCharCode(byte)) ? 1 : 0;
  return table;
}

/**
 * Identifier-like NUL-terminated strings of `.rodata*` sections, with their addresses: each
 * string, and each identifier tail of it (a linker that merges strings may let "accept" be the
 * tail of "raccept"; code then points into the longer one). Bytes are tested against tables and
 * each string is decoded once; its tails are slices of it.
 */
function* readOnlyStrings(elf: ElfFile): Generator<[number, string]> {
  for (const section of elf.sections) {
    if (!section.name.startsWith('.rodata') || !section.hasFileData) continue;
    const bytes = elf.sectionBytes(section.name);
    if (!bytes) continue;
    // indexOf finds each NUL natively.
    for (let start = 0, end = bytes.indexOf(0); end !== -1; start = end + 1, end = bytes.indexOf(0, start)) {
      // Only the identifier tail of [start, end) can be a name, and only at most 128 bytes of it.
      let tail = end;
      while (tail > start && end - tail < 128 && IDENTIFIER_BYTE[bytes[tail - 1]!] === 1) tail--;
      if (end - tail >= 2) {
        let text: string | undefined;
        for (let from = tail; from <= end - 2; from++) {
          if (IDENTIFIER_START_BYTE[bytes[from]!] !== 1) continue;
          text ??= Buffer.from(bytes.buffer, bytes.byteOffset + tail, end - tail).toString('latin1');
          yield [section.addr + from, text.slice(from - tail)];
        }
      }
    }
  }
}

/** Data slots that point at a read-only NUL-terminated string: [slot, text] (at most 64 bytes read). */
function stringSlots(elf: ElfFile, dataSlots: readonly (readonly [number, number])[]): [number, string][] {
  const rodata = elf.sections.filter((section) => section.name.startsWith('.rodata') && section.hasFileData);
  const inRodata = (address: number): boolean => rodata.some((section) => address >= section.addr && address < section.addr + section.size);
  return dataSlots.flatMap(([slot, target]) => {
    const text = inRodata(target) ? elf.cString(target, 64) : undefined;
    return text === undefined ? [] : [[slot, text] as [number, string]];
  });
}

/** Applet names: lower-case words, digits, `_.-`, and busybox's `[` and `[[`. */
const APPLET_NAME = /^(?:\[\[?|[a-z0-9][a-z0-9_.-]*)$/;
/** A run shorter than this is not an applet table. */
const MIN_APPLETS = 8;

/**
 * BusyBox's applet table (applets.h, generated: `applet_names`, the names NUL-separated in
 * ascending order, and `applet_main[]`, one main per name in the same order). Found, in a file that
 * says "BusyBox v", as the longest ascending run of applet names in read-only data and the one run
 * of exactly that many consecutive code-pointer slots. Undefined when either is not found once.
 */
function multiCallApplets(
  elf: ElfFile,
  slotPointers: readonly (readonly [number, number])[],
  word: number,
): { tableStart: number; tableEnd: number; mains: { name: string; address: number }[] } | undefined {
  const rodata = elf.sections.filter((section) => section.name.startsWith('.rodata') && section.hasFileData).map((section) => elf.sectionBytes(section.name)).filter((bytes): bytes is Uint8Array => bytes !== undefined);
  if (!rodata.some((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('BusyBox v'))) return undefined;
  let names: string[] = [];
  for (const bytes of rodata) {
    let run: string[] = [];
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== 0) continue;
      const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, i - start).toString('latin1');
      start = i + 1;
      if (APPLET_NAME.test(text) && (run.length === 0 || run[run.length - 1]! < text)) run.push(text);
      else {
        if (run.length > names.length) names = run;
        run = APPLET_NAME.test(text) ? [text] : [];
      }
    }
    if (run.length > names.length) names = run;
  }
  if (names.length < MIN_APPLETS) return undefined;
  const slots = [...slotPointers].sort((a, b) => a[0] - b[0]);
  const runs: [number, number][] = [];
  for (let i = 0; i < slots.length; ) {
    let j = i + 1;
    while (j < slots.length && slots[j]![0] === slots[j - 1]![0] + word) j++;
    if (j - i === names.length) runs.push([i, j]);
    i = j;
  }
  if (runs.length !== 1) return undefined;
  const [first, end] = runs[0]!;
  return {
    tableStart: slots[first]![0],
    tableEnd: slots[end - 1]![0] + word,
    mains: names.map((name, k) => ({ name, address: slots[first + k]![1] })),
  };
}
