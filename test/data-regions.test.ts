/**
 * Function pointers in data count once the data object holding them is reachable (issue 13):
 * how data is split into objects (worker/native/data-regions.ts), and how the linker holds and
 * enters them (coordinator/plan/link.ts). Pure logic on hand-made layouts and facts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { linkFacts, type LoadedObject } from '../coordinator/plan/link.js';
import type { DataRegion, ObjectFacts, Reach } from '../store/facts.js';
import type { DataLayout } from '../worker/native/code-model.js';
import { splitData } from '../worker/native/data-regions.js';

const LAYOUT: DataLayout = {
  sections: [{ start: 0x1000, end: 0x1100 }],
  // Three tables: 0x1000 (two pointers), 0x1040 (one), 0x1080 (one, reached only through 0x1000's pointer to it).
  codeSlots: [
    [0x1000, 0x500],
    [0x1008, 0x510],
    [0x1040, 0x520],
    [0x1088, 0x530],
  ],
  nameSlots: [],
  commandData: [],
  importSlots: [[0x1048, 'free']],
  dataSlots: [[0x1010, 0x1080]],
  gotData: new Map(),
  exportedData: [{ address: 0x10c0, name: 'exported_ops' }],
  alwaysCode: [0x540],
  alwaysImports: [],
};
const OWNERS = new Set([0x500, 0x510, 0x520, 0x530, 0x540]);
const ownerOf = (address: number): number | undefined => (OWNERS.has(address) ? address : undefined);

describe('data split into objects at taken addresses', () => {
  it('gives each table its pointers, keeps data→data edges, and drops tables without pointers', () => {
    const { regions, regionOf } = splitData(LAYOUT, { taken: [0x1040, 0x1000], unowned: [] }, ownerOf);
    const first = regionOf(0x1000)!;
    const second = regionOf(0x1040)!;
    const third = regionOf(0x1080)!;
    assert.deepEqual(regions[first]!.taken, [0x500, 0x510]);
    assert.deepEqual(regions[second], { address: 0x1040, taken: [0x520], imports: ['free'], holds: [], symbols: [], names: [], always: false });
    assert.deepEqual(regions[first]!.holds, [third]);
    assert.deepEqual(regions[third]!.taken, [0x530]);
    // A field read inside a table (no new start) belongs to the table.
    assert.equal(regionOf(0x1008), first);
    // The exported object holds no pointer: not kept. Pointers held elsewhere: one region, always held.
    assert.equal(regionOf(0x10c0), undefined);
    assert.deepEqual(regions.at(-1), { address: 0, taken: [0x540], imports: [], holds: [], symbols: [], names: [], always: true });
  });

  it('holds what code outside every function references, and a section start no address names', () => {
    const unowned = splitData(LAYOUT, { taken: [0x1040], unowned: [0x1044] }, ownerOf);
    assert.equal(unowned.regions[unowned.regionOf(0x1040)!]!.always, true);
    // 0x1000 is named by no taken address here: walking into the section's first bytes is the only way in.
    assert.equal(unowned.regions[unowned.regionOf(0x1000)!]!.always, true);
  });
});

const reach = (syscalls: string[], extra: Partial<Reach> = {}): Reach => ({ syscalls, imports: [], unresolvedCount: 0, indirect: false, callbacks: [], ...extra });

function object(path: string, reaches: Reach[], dataRegions: DataRegion[], callbacks: { address: number; reach: number }[], entry?: number): LoadedObject {
  const facts: ObjectFacts = {
    sha256: path,
    analyser: 'test',
    analyserVersion: 1,
    arch: 'x86_64',
    elfType: 'dyn',
    needed: [],
    rpath: [],
    runpath: [],
    flags: { static: false, pie: true, go: false, stripped: true },
    ...(entry !== undefined ? { entry: { symbol: '_start', address: 0x100, reach: entry } } : {}),
    initialisers: [],
    reaches,
    callbacks,
    dataRegions,
    exports: [],
    unresolved: [],
    symbolNames: [],
    pathStrings: [],
    stats: { functions: 0, syscallSites: 0, resolvedSites: 0, codeBytes: 0 },
  };
  return { path, facts };
}

describe('the linker enters the pointers of held data only', () => {
  // Reaches: 0 the entry (indirect call, references region 0), 1 region 0's callback, 2 region 1's callback.
  const program = (entryRegions: number[]): LoadedObject =>
    object(
      '/bin/app',
      [reach(['read'], { indirect: true, ...(entryRegions.length > 0 ? { dataRegions: entryRegions } : {}) }), reach(['write']), reach(['ptrace']), reach([], { callbacks: [0] }), reach([], { callbacks: [1] })],
      [
        { address: 0x1000, reach: 3, holds: [], always: false },
        { address: 0x2000, reach: 4, holds: [], always: false },
      ],
      [
        { address: 0x500, reach: 1 },
        { address: 0x600, reach: 2 },
      ],
      0,
    );

  it('calls through the table reached code references, not through the other one', () => {
    const linked = linkFacts({ scope: [program([0])] });
    assert.deepEqual([...linked.syscalls].sort(), ['read', 'write']);
    assert.equal(linked.ways.get('read'), 'direct');
    assert.equal(linked.ways.get('write'), 'data');
    assert.match(linked.witnesses.get('write')!.join(' > '), /<function pointers in data at 0x1000> > \/bin\/app:<callback 0x500>/);
  });

  it('follows a held table to the table it points at', () => {
    const base = program([0]);
    const chained = { ...base, facts: { ...base.facts, dataRegions: [{ ...base.facts.dataRegions[0]!, holds: [1] }, base.facts.dataRegions[1]!] } };
    assert.deepEqual([...linkFacts({ scope: [chained] }).syscalls].sort(), ['ptrace', 'read', 'write']);
  });

  it('holds no table without an indirect call to use it', () => {
    const base = program([0, 1]);
    const direct = { ...base, facts: { ...base.facts, reaches: [{ ...base.facts.reaches[0]!, indirect: false }, ...base.facts.reaches.slice(1)] } };
    assert.deepEqual([...linkFacts({ scope: [direct] }).syscalls], ['read']);
  });

  it('holds exported data once another object imports its name', () => {
    const library = object('/lib/libops.so', [reach(['kill']), reach([], { callbacks: [0] })], [{ address: 0x3000, reach: 1, holds: [], symbols: ['ops_table'], always: false }], [{ address: 0x700, reach: 0 }]);
    const user = (imports: string[]): LoadedObject => object('/bin/user', [reach(['read'], { indirect: true, imports })], [], [], 0);
    assert.deepEqual([...linkFacts({ scope: [user([]), library] }).syscalls], ['read']);
    assert.deepEqual([...linkFacts({ scope: [user(['ops_table']), library] }).syscalls].sort(), ['kill', 'read']);
  });
});

describe('names looked up by dlsym count once the code taking them (or the data holding them) is reached', () => {
  const NAMES_LAYOUT: DataLayout = { ...LAYOUT, nameSlots: [[0x1050, 'plugin_init']] };
  it('keeps a region that holds only a name, with the name', () => {
    const { regions, regionOf } = splitData({ ...NAMES_LAYOUT, codeSlots: [], importSlots: [], dataSlots: [] }, { taken: [0x1050], unowned: [] }, ownerOf);
    assert.deepEqual(regions[regionOf(0x1050)!]!.names, ['plugin_init']);
  });

  // The program: its entry reaches dlsym (and an indirect call); reach 1 takes the name "mount".
  const library = (): LoadedObject => {
    const base = object('/lib/libc.so.6', [reach(['mount']), reach(['read'])], [], []);
    return { ...base, facts: { ...base.facts, exports: [{ symbol: 'mount@@GLIBC_2.2.5', address: 0x900, reach: 0 }, { symbol: 'dlsym@@GLIBC_2.34', address: 0x910, reach: 1 }] } };
  };
  const program = (entryCallbacks: number[]): LoadedObject => {
    const base = object('/bin/app', [reach([], { imports: ['dlsym'], indirect: true, callbacks: entryCallbacks }), reach([], { names: ['mount'] })], [], [{ address: 0x500, reach: 1 }], 0);
    return base;
  };
  it('does not look up a name only unreached code takes', () => {
    assert.deepEqual([...linkFacts({ scope: [program([]), library()] }).syscalls], ['read']);
  });
  it('looks up a name reached code takes', () => {
    const linked = linkFacts({ scope: [program([0]), library()] });
    assert.deepEqual([...linked.syscalls].sort(), ['mount', 'read']);
    assert.equal(linked.ways.get('mount'), 'lookup');
    assert.match(linked.witnesses.get('mount')!.join(' > '), /<looks up "mount" by name> > \/lib\/libc.so.6:mount@@GLIBC_2.2.5/);
  });
});
