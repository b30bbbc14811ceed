/**
 * Data split into objects, so that a function pointer in data counts only once code that can run
 * reaches the data object holding it (issue 13: a `static const struct ops` of a library part the
 * program never enters does not make its functions callable from every indirect call).
 *
 * Where one object ends is not written in a stripped file. The split follows the addresses that are
 * taken: a data object starts wherever code takes an address (`lea`, a `.got` slot filled with a
 * data address), where data holds a data address (a relocation), at an exported data symbol, and at
 * every section start; it runs to the next such address. This is the assumption binary
 * symbolisation makes (code reaches an object through its start; a field or element named on its
 * own is an object of its own start): code that takes `&table` and walks past the next taken
 * address would read pointers this split gives to the next object. References that only read or
 * write memory (`mov rax, [rip + x]`, `call [rip + slot]`) hold the object they land in but do not
 * split it.
 *
 * An object is held when reached code references it, when a held object holds its address, when
 * it is exported data that a loaded object imports in reached code (or copies), or always: a
 * section's first bytes that no address names, and objects code outside every function references.
 */
import type { GraphDataRegion } from '../graph/object-graph.js';
import { lowerBound } from '../x86/sweep.js';
import type { DataLayout } from './code-model.js';

export interface DataRegions {
  /** Regions that hold a code pointer, an import, a name, or (transitively) a region that does. */
  readonly regions: readonly GraphDataRegion[];
  /** The kept region holding `address`, if any. */
  regionOf(address: number): number | undefined;
}

export interface DataReferences {
  /** Data addresses code takes (`lea`, data addresses read from `.got` slots): objects start there. */
  readonly taken: Iterable<number>;
  /** Data addresses referenced by code that belongs to no function: held whatever runs. */
  readonly unowned: Iterable<number>;
}

export function splitData(layout: DataLayout, references: DataReferences, ownerOf: (address: number) => number | undefined): DataRegions {
  const sectionStarts = layout.sections.map((section) => section.start);
  const sectionOf = (address: number): number | undefined => {
    const k = lowerBound(sectionStarts, address + 1) - 1;
    const section = layout.sections[k];
    return section && address < section.end ? k : undefined;
  };
  const starts = new Set<number>(layout.sections.map((section) => section.start));
  /** Starts some address names: a section start no address names is reachable only by walking into it. */
  const named = new Set<number>();
  const addStart = (address: number): void => {
    if (sectionOf(address) === undefined) return;
    starts.add(address);
    named.add(address);
  };
  for (const address of references.taken) addStart(address);
  for (const [, target] of layout.dataSlots) addStart(target);
  for (const [, target] of layout.commandData) addStart(target);
  for (const { address } of layout.exportedData) addStart(address);
  const anchors = [...starts].sort((a, b) => a - b);
  const rawOf = (address: number): number | undefined => (sectionOf(address) === undefined ? undefined : lowerBound(anchors, address + 1) - 1);

  const raw = anchors.map((address) => ({ address, taken: new Set<number>(), imports: new Set<string>(), holds: new Set<number>(), symbols: new Set<string>(), names: new Set<string>(), always: !named.has(address) }));
  for (const [slot, target] of layout.codeSlots) {
    const owner = ownerOf(target);
    const at = rawOf(slot);
    if (owner !== undefined && at !== undefined) raw[at]!.taken.add(owner);
  }
  for (const [slot, symbol] of layout.importSlots) {
    const at = rawOf(slot);
    if (at !== undefined) raw[at]!.imports.add(symbol);
  }
  for (const [slot, target] of layout.dataSlots) {
    const to = rawOf(target);
    if (to === undefined) continue;
    const from = rawOf(slot);
    // A data address held outside the split sections (TLS images, the GOT) is read by any code.
    if (from === undefined) raw[to]!.always = true;
    else if (from !== to) raw[from]!.holds.add(to);
  }
  for (const { address, name } of layout.exportedData) {
    const at = rawOf(address);
    if (at !== undefined) raw[at]!.symbols.add(name);
  }
  for (const [slot, name] of layout.nameSlots) {
    const at = rawOf(slot);
    if (at !== undefined) raw[at]!.names.add(name);
  }
  for (const address of references.unowned) {
    const at = rawOf(address);
    if (at !== undefined) raw[at]!.always = true;
  }

  // Keep what leads to a pointer or a name: regions with one, and regions holding kept regions (to
  // a fixpoint over the reversed holds edges).
  const heldBy = raw.map(() => [] as number[]);
  for (const [from, region] of raw.entries()) for (const to of region.holds) heldBy[to]!.push(from);
  const kept = new Set<number>();
  const work = raw.flatMap((region, k) => (region.taken.size > 0 || region.imports.size > 0 || region.names.size > 0 ? [k] : []));
  for (const k of work) kept.add(k);
  while (work.length > 0) {
    for (const from of heldBy[work.pop()!]!) {
      if (kept.has(from)) continue;
      kept.add(from);
      work.push(from);
    }
  }
  const order = [...kept].sort((a, b) => a - b);
  const newId = new Map(order.map((k, id) => [k, id]));
  const regions: GraphDataRegion[] = order.map((k) => {
    const region = raw[k]!;
    return {
      address: region.address,
      taken: [...region.taken].sort((a, b) => a - b),
      imports: [...region.imports].sort(),
      holds: [...region.holds].flatMap((to) => (newId.has(to) ? [newId.get(to)!] : [])).sort((a, b) => a - b),
      symbols: [...region.symbols].sort(),
      names: [...region.names].sort(),
      always: region.always,
    };
  });
  // Pointers held outside the split sections, in one region of their own.
  const alwaysTaken = [...new Set(layout.alwaysCode.flatMap((target) => ownerOf(target) ?? []))].sort((a, b) => a - b);
  if (alwaysTaken.length > 0 || layout.alwaysImports.length > 0) regions.push({ address: 0, taken: alwaysTaken, imports: [...layout.alwaysImports], holds: [], symbols: [], names: [], always: true });
  return {
    regions,
    regionOf: (address) => {
      const k = rawOf(address);
      return k === undefined ? undefined : newId.get(k);
    },
  };
}
