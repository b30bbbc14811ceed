/**
 * Go's function table, the pclntab (layout: Go `src/debug/gosym/pclntab.go` and
 * `src/runtime/symtab.go`; magic numbers: 0xfffffffb Go 1.2–1.15, 0xfffffffa 1.16–1.17,
 * 0xfffffff0 1.18–1.19, 0xfffffff1 1.20+ with the 1.18 layout).
 *
 * It is the `.gopclntab` section (`.data.rel.ro.gopclntab` in internally linked PIEs). Externally
 * linked PIEs (Debian's dockerd) and stripped binaries have no such section: the table then sits
 * inside `.data.rel.ro` or a read-only segment, and is found by scanning non-executable PT_LOAD
 * bytes for a header (magic, two zero bytes, the architecture's pc quantum, the pointer size) whose
 * offsets all fall inside the segment and whose function table fits — the same signature
 * `debug/gosym` checks. A candidate that fails validation is skipped; the first valid one is used.
 */
import * as C from './constants.js';
import type { ElfContext } from './context.js';
import { checkLimit, ElfFormatError, ElfLimitError } from './errors.js';
import type { ByteReader } from './reader.js';
import { StringTable } from './strings.js';
import type { GoFunction, PclntabVersion } from './types.js';

const MAGICS = new Map<number, PclntabVersion>([
  [0xfffffffb, '1.2'],
  [0xfffffffa, '1.16'],
  [0xfffffff0, '1.18'],
  [0xfffffff1, '1.20'],
]);

/** Header-shaped matches tried when the pclntab is not a section. */
const MAX_SCAN_CANDIDATES = 16;

export interface Pclntab {
  readonly version: PclntabVersion;
  readonly functions: GoFunction[];
}

/** A window from the table's first byte to the end of its section or segment. */
interface Candidate {
  readonly r: ByteReader;
  /** Virtual address of `r[0]`, when mapped: pointers in the header are read relocated. */
  readonly vaddr: number | undefined;
}

export function findPclntab(ctx: ElfContext): Pclntab | undefined {
  const section = ctx.sectionByName('.gopclntab') ?? ctx.sectionByName('.data.rel.ro.gopclntab');
  if (section && section.hasFileData && section.size > 0) {
    return parsePclntab(ctx, { r: ctx.sectionData(section), vaddr: section.addr === 0 ? undefined : section.addr });
  }
  // Real binaries hold one header-shaped match; a cap keeps crafted files with thousands of
  // plausible headers (each costing a function-table walk) linear.
  let tries = 0;
  for (const candidate of scan(ctx)) {
    if (++tries > MAX_SCAN_CANDIDATES) break;
    try {
      return parsePclntab(ctx, candidate);
    } catch (err) {
      if (!(err instanceof ElfFormatError)) throw err;
    }
  }
  return undefined;
}

/** pc quantum by architecture (cmd/internal/sys Arch.MinLC). */
function quanta(machine: number): number[] {
  switch (machine) {
    case C.EM_X86_64:
    case C.EM_386:
      return [1];
    case C.EM_S390:
      return [2];
    case C.EM_AARCH64:
    case C.EM_ARM:
    case C.EM_RISCV:
    case C.EM_PPC64:
    case C.EM_MIPS:
    case 258: // LoongArch
      return [4];
    default:
      return [1, 2, 4];
  }
}

function* scan(ctx: ElfContext): Generator<Candidate> {
  const ps = ctx.wordSize;
  const le = ctx.header.littleEndian;
  const regions = ctx.memory.loads.filter((s) => (s.flags & C.PF_X) === 0 && s.filesz > 0);
  for (const seg of regions) {
    const r = ctx.file.sub(seg.offset, seg.filesz, 'PT_LOAD');
    const buf = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
    for (const q of quanta(ctx.header.machine)) {
      if (le) {
        // Little-endian magics all end in ff ff ff: one search finds every version.
        const pattern = Buffer.from([0xff, 0xff, 0xff, 0, 0, q, ps]);
        for (let i = buf.indexOf(pattern, 1); i >= 0; i = buf.indexOf(pattern, i + 1)) {
          if (MAGICS.has(r.u32(i - 1))) yield { r: r.from(i - 1, 'pclntab'), vaddr: seg.vaddr + i - 1 };
        }
      } else {
        for (const magic of MAGICS.keys()) {
          const pattern = Buffer.from([magic >>> 24, (magic >>> 16) & 0xff, (magic >>> 8) & 0xff, magic & 0xff, 0, 0, q, ps]);
          for (let i = buf.indexOf(pattern); i >= 0; i = buf.indexOf(pattern, i + 1)) yield { r: r.from(i, 'pclntab'), vaddr: seg.vaddr + i };
        }
      }
    }
  }
}

function parsePclntab(ctx: ElfContext, t: Candidate): Pclntab {
  const r = t.r;
  const magic = r.u32(0, 'pclntab magic');
  const version = MAGICS.get(magic);
  if (!version) throw new ElfFormatError(`unknown pclntab magic 0x${magic.toString(16)}`, r.base);
  const quantum = r.u8(6, 'pclntab quantum');
  const ps = r.u8(7, 'pclntab pointer size');
  if (r.u8(4) !== 0 || r.u8(5) !== 0 || (quantum !== 1 && quantum !== 2 && quantum !== 4) || ps !== ctx.wordSize) {
    throw new ElfFormatError('pclntab header: bad padding, quantum or pointer size', r.base);
  }
  const is64 = ps === 8;
  const word = (i: number): number => r.word(8 + i * ps, is64, 'pclntab header word');
  /**
   * A pointer-sized address in the table, as the loader leaves it (relocations applied). Linkers
   * also store the value in the file, so a relocation table that cannot be read falls back to it.
   */
  const pointer = (off: number): number => {
    let relocated: number | undefined;
    if (t.vaddr !== undefined) {
      try {
        relocated = ctx.pointerAt(t.vaddr + off);
      } catch (err) {
        if (!(err instanceof ElfFormatError || err instanceof ElfLimitError)) throw err;
      }
    }
    return relocated ?? r.word(off, is64, 'pclntab pointer');
  };

  if (version === '1.2') return { version, functions: go12(ctx, t, word(0), pointer) };
  const nfunc = word(0);
  // 1.18+ inserts textStart after nfiles; the offsets then follow in the same order.
  const first = version === '1.16' ? 2 : 3;
  const funcname = word(first);
  const cu = word(first + 1);
  const filetab = word(first + 2);
  const pctab = word(first + 3);
  const pcln = word(first + 4);
  const headerEnd = 8 + (first + 5) * ps;
  if (!(headerEnd <= funcname && funcname <= cu && cu <= filetab && filetab <= pctab && pctab <= pcln && pcln <= r.length)) {
    throw new ElfFormatError('pclntab header: table offsets out of order or outside the table', r.base + 8);
  }
  const field = version === '1.16' ? ps : 4;
  r.need(pcln, (2 * nfunc + 1) * field, 'pclntab function table');
  checkLimit(ctx.limits, 'maxGoFunctions', nfunc, 'pclntab function count', r.base + 8);
  const names = new StringTable(r.sub(funcname, cu - funcname, 'pclntab funcnametab'), 'pclntab function names');
  const functab = r.from(pcln, 'pclntab functab');
  let entryAt: (i: number) => number;
  if (version === '1.16') {
    entryAt = (i) => pointer(pcln + 2 * i * ps);
  } else {
    // Go 1.18+: functab holds uint32 offsets from runtime.text (header word 2). gosym substitutes
    // the .text address because the word may be unrelocated; reading it relocated is exact even
    // when external linking put C code (crt1's _start) before runtime.text.
    let textStart = pointer(8 + 2 * ps);
    if (textStart === 0) textStart = ctx.sectionByName('.text')?.addr ?? 0;
    entryAt = (i) => textStart + functab.u32(i * 8, 'functab entryoff');
  }
  const functions: GoFunction[] = new Array(nfunc);
  let next = nfunc > 0 ? entryAt(0) : 0;
  for (let i = 0; i < nfunc; i++) {
    const entry = next;
    next = entryAt(i + 1);
    if (next < entry) throw new ElfFormatError(`pclntab function ${i}: entries are not sorted`, functab.base + i * 2 * field);
    const funcOff = version === '1.16' ? functab.word((2 * i + 1) * ps, is64, 'functab funcoff') : functab.u32(i * 8 + 4, 'functab funcoff');
    // _func: entry (uintptr, or uint32 entryoff in 1.18+), then nameoff int32.
    const nameOff = functab.s32(funcOff + field, '_func nameoff');
    functions[i] = { name: names.get(nameOff, functab.base + funcOff + field), entry, end: next };
  }
  return { version, functions };
}

/** Go 1.2–1.15: functab right after the header; _func offsets and names relative to the table. */
function go12(ctx: ElfContext, t: Candidate, nfunc: number, pointer: (off: number) => number): GoFunction[] {
  const r = t.r;
  const ps = ctx.wordSize;
  const is64 = ps === 8;
  const functab = 8 + ps;
  r.need(functab, (2 * nfunc + 1) * ps, 'pclntab function table');
  checkLimit(ctx.limits, 'maxGoFunctions', nfunc, 'pclntab function count', r.base + 8);
  const names = new StringTable(r, 'pclntab function names');
  const functions: GoFunction[] = new Array(nfunc);
  let next = nfunc > 0 ? pointer(functab) : 0;
  for (let i = 0; i < nfunc; i++) {
    const entry = next;
    next = pointer(functab + (2 * i + 2) * ps);
    if (next < entry) throw new ElfFormatError(`pclntab function ${i}: entries are not sorted`, r.base + functab + 2 * i * ps);
    const funcOff = r.word(functab + (2 * i + 1) * ps, is64, 'functab funcoff');
    const nameOff = r.s32(funcOff + ps, '_func nameoff');
    functions[i] = { name: names.get(nameOff, r.base + funcOff + ps), entry, end: next };
  }
  return functions;
}
