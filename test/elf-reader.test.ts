/**
 * The ELF reader against real binaries of this machine, with binutils' `readelf -W` (and Go's
 * `go tool nm`) as ground truth: nothing below is a hard-coded expectation about a file's contents.
 * Fixtures that must exist are compiled in a temp dir (gcc, and go when installed); system binaries
 * that are missing skip their suite with the reason.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { LimitExceededError } from '../infra/errors.js';
import { DEFAULT_LIMITS, limitsWith } from '../infra/limits.js';
import { type ElfFile, ElfFormatError, ElfLimitError, parseElf } from '../worker/elf/index.js';

// ---- tools ----

const run = (cmd: string, args: readonly string[], cwd?: string): string =>
  execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'], cwd, env: { ...process.env, LC_ALL: 'C' } });

const tryRun = (cmd: string, args: readonly string[], cwd?: string): string | undefined => {
  try {
    return run(cmd, args, cwd);
  } catch {
    return undefined;
  }
};

const hasReadelf = tryRun('readelf', ['--version']) !== undefined;
const hasGcc = tryRun('gcc', ['--version']) !== undefined;
const goBinary = ['go', '/usr/lib/go/bin/go'].find((g) => tryRun(g, ['version']) !== undefined);

const readelf = (file: string, ...args: string[]): string => run('readelf', ['-W', ...args, file]);
const hex = (s: string): number => Number.parseInt(s, 16);

/** `gcc -print-file-name` finds this machine's libc whatever its multiarch directory. */
function findLibc(): string | undefined {
  const p = hasGcc ? tryRun('gcc', ['-print-file-name=libc.so.6'])?.trim() : undefined;
  const candidates = [p, '/lib/x86_64-linux-gnu/libc.so.6', '/lib/aarch64-linux-gnu/libc.so.6', '/lib64/libc.so.6'];
  return candidates.find((c) => c !== undefined && path.isAbsolute(c) && fs.existsSync(c));
}

const LIBC = findLibc();
const BASH = ['/bin/bash', '/usr/bin/bash'].find((p) => fs.existsSync(p));
const DOCKERD = ['/usr/bin/dockerd', '/usr/sbin/dockerd'].find((p) => fs.existsSync(p));

// ---- readelf output parsers ----

interface ReadelfSymbol {
  readonly num: number;
  readonly value: number;
  readonly size: number;
  readonly type: string;
  readonly bind: string;
  readonly ndx: string;
  readonly name: string;
  readonly version?: string;
  readonly defaultVersion?: boolean;
}

function readelfDynSyms(file: string): ReadelfSymbol[] {
  const out: ReadelfSymbol[] = [];
  for (const line of readelf(file, '--dyn-syms').split('\n')) {
    const m = /^\s*(\d+):\s+([0-9a-f]+)\s+(0x[0-9a-f]+|\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s?(.*)$/.exec(line);
    if (!m) continue;
    let name = m[8]!.replace(/ \(\d+\)$/, '');
    let version: string | undefined;
    let defaultVersion: boolean | undefined;
    const at = name.indexOf('@');
    if (at > 0) {
      defaultVersion = name[at + 1] === '@';
      version = name.slice(at + (defaultVersion ? 2 : 1));
      name = name.slice(0, at);
    }
    out.push({
      num: Number(m[1]),
      value: hex(m[2]!),
      size: m[3]!.startsWith('0x') ? hex(m[3]!.slice(2)) : Number(m[3]),
      type: m[4]!,
      bind: m[5]!,
      ndx: m[7]!,
      name,
      ...(version === undefined ? {} : { version, defaultVersion }),
    });
  }
  return out;
}

interface ReadelfReloc {
  readonly table: string;
  readonly offset: number;
  readonly type: string;
  readonly symbol?: string;
  readonly addend?: number;
}

/** Every relocation `readelf -r` lists, RELR offsets included (type `RELR`). */
function readelfRelocs(file: string): ReadelfReloc[] {
  const out: ReadelfReloc[] = [];
  let table = '';
  let relr = false;
  for (const line of readelf(file, '-r').split('\n')) {
    const head = /^Relocation section '([^']+)'/.exec(line);
    if (head) {
      table = head[1]!;
      relr = /relr/.test(table);
      continue;
    }
    if (relr) {
      const m = /^([0-9a-f]{8,})(\s|$)/.exec(line);
      if (m) out.push({ table, offset: hex(m[1]!), type: 'RELR' });
      continue;
    }
    const m = /^([0-9a-f]+)\s+([0-9a-f]+)\s+(R_\w+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const rest = m[4]!.trim();
    const withSym = /^([0-9a-f]+)\s+(\S+)\s*([+-])\s*([0-9a-f]+)$/.exec(rest);
    if (withSym) {
      const addend = hex(withSym[4]!) * (withSym[3] === '-' ? -1 : 1);
      out.push({ table, offset: hex(m[1]!), type: m[3]!, symbol: withSym[2]!.replace(/@.*$/, ''), addend });
    } else if (/^[0-9a-f]+$/.test(rest)) {
      out.push({ table, offset: hex(m[1]!), type: m[3]!, addend: hex(rest) });
    } else {
      out.push({ table, offset: hex(m[1]!), type: m[3]!, ...(rest ? { symbol: rest.split(/\s+/).pop()!.replace(/@.*$/, '') } : {}) });
    }
  }
  return out;
}

/** Bytes of a section as `readelf -x` dumps them. */
function readelfHexDump(file: string, section: string): Buffer {
  const bytes: number[] = [];
  for (const line of readelf(file, '-x', section).split('\n')) {
    const m = /^\s+0x[0-9a-f]+ ((?:[0-9a-f]{2,8} ?){1,4})/.exec(line);
    if (!m) continue;
    for (const group of m[1]!.trim().split(' ')) for (let i = 0; i < group.length; i += 2) bytes.push(hex(group.slice(i, i + 2)));
  }
  return Buffer.from(bytes);
}

function readelfFdes(file: string): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  // readelf exits 1 after dumping frames when it cannot follow a .gnu_debuglink: keep its output.
  const text = spawnSync('readelf', ['-W', '--debug-dump=frames', file], { encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, LC_ALL: 'C' } }).stdout;
  for (const line of text.split('\n')) {
    const m = / FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)/.exec(line);
    if (m) out.push({ start: hex(m[1]!), end: hex(m[2]!) });
  }
  return out;
}

function readelfNeeded(file: string): { needed: string[]; soname?: string; runpath: string[]; rpath: string[] } {
  const needed: string[] = [];
  const runpath: string[] = [];
  const rpath: string[] = [];
  let soname: string | undefined;
  for (const line of readelf(file, '-d').split('\n')) {
    const n = /\(NEEDED\)\s+Shared library: \[(.*)\]/.exec(line);
    if (n) needed.push(n[1]!);
    const s = /\(SONAME\)\s+Library soname: \[(.*)\]/.exec(line);
    if (s) soname = s[1]!;
    const r = /\(RUNPATH\)\s+Library runpath: \[(.*)\]/.exec(line);
    if (r) runpath.push(...r[1]!.split(':').filter(Boolean));
    const p = /\(RPATH\)\s+Library rpath: \[(.*)\]/.exec(line);
    if (p) rpath.push(...p[1]!.split(':').filter(Boolean));
  }
  return soname === undefined ? { needed, runpath, rpath } : { needed, soname, runpath, rpath };
}

/** `readelf -x .init_array` words, each replaced by its relocation's value as the loader would. */
function expectedInitArray(file: string, elf: ElfFile, section: string): number[] {
  const bytes = readelfHexDump(file, section);
  const ws = elf.class === 64 ? 8 : 4;
  const addr = elf.section(section)!.addr;
  const relocs = new Map(readelfRelocs(file).map((r) => [r.offset, r]));
  const out: number[] = [];
  for (let i = 0; i + ws <= bytes.length; i += ws) {
    const raw = ws === 8 ? Number(elf.littleEndian ? bytes.readBigUInt64LE(i) : bytes.readBigUInt64BE(i)) : elf.littleEndian ? bytes.readUInt32LE(i) : bytes.readUInt32BE(i);
    const rel = relocs.get(addr + i);
    // RELA RELATIVE: the addend is the value; RELR / REL: the stored word is.
    const value = rel && rel.type.endsWith('_RELATIVE') && rel.addend !== undefined ? rel.addend : raw;
    if (value !== 0) out.push(value);
  }
  return out;
}

interface SectionRow {
  readonly index: number;
  readonly name: string;
  readonly type: string;
  readonly addr: number;
  readonly offset: number;
  readonly size: number;
}

function readelfSections(file: string): SectionRow[] {
  const out: SectionRow[] = [];
  for (const line of readelf(file, '-S').split('\n')) {
    const m = /^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s/.exec(line);
    if (m && m[1] !== '0') out.push({ index: Number(m[1]), name: m[2]!, type: m[3]!, addr: hex(m[4]!), offset: hex(m[5]!), size: hex(m[6]!) });
  }
  return out;
}

// ---- helpers ----

const limits = DEFAULT_LIMITS;
const load = (file: string): ElfFile => parseElf(fs.readFileSync(file), limits);

/** Reads every lazy table once; returns the elapsed milliseconds including the parse. */
function parseAll(bytes: Uint8Array): { elf: ElfFile; ms: number } {
  const t = performance.now();
  const elf = parseElf(bytes, limits);
  void elf.dynamic;
  void elf.dynamicSymbols;
  void elf.symbols;
  void elf.relocations;
  elf.gotSlotSymbols();
  elf.relativeTargets();
  elf.ehFrameFunctions();
  void elf.go?.functions;
  return { elf, ms: performance.now() - t };
}

function assertFdesMatchReadelf(file: string, elf: ElfFile): void {
  const expected = readelfFdes(file);
  const ours = elf.ehFrameFunctions();
  assert.equal(ours.length, expected.length, 'FDE count vs readelf --debug-dump=frames');
  const key = (f: { start: number; end: number }): string => `${f.start.toString(16)}..${f.end.toString(16)}`;
  assert.deepEqual(ours.map(key).sort(), expected.map(key).sort());
}

function assertSectionsMatchReadelf(file: string, elf: ElfFile): void {
  const rows = readelfSections(file);
  assert.equal(elf.sections.length - 1, rows.length, 'section count');
  for (const row of rows) {
    const s = elf.sections[row.index]!;
    assert.equal(s.name, row.name, `section ${row.index} name`);
    assert.equal(s.addr, row.addr, `${row.name} addr`);
    assert.equal(s.offset, row.offset, `${row.name} offset`);
    assert.equal(s.size, row.size, `${row.name} size`);
  }
}

const C_SOURCE = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int twice(int x) { return 2 * x; }
static int thrice(int x) { return 3 * x; }
int (*volatile table[])(int) = { twice, thrice };
static void __attribute__((constructor)) early(void) { if (getenv("ELF_TEST_CTOR")) puts("ctor"); }
static void __attribute__((destructor)) late(void) { if (getenv("ELF_TEST_DTOR")) puts("dtor"); }
int main(int argc, char **argv) {
  (void)argv;
  printf("%d %zu\\n", table[argc & 1](argc), strlen(argv[0]));
  return 0;
}
`;

const GO_SOURCE = `package main

import (
	"fmt"
	"os"
	"strings"
)

//go:noinline
func greet(name string) string { return strings.ToUpper("hello " + name) }

func main() { fmt.Println(greet(os.Args[0])) }
`;

let tmp = '';
let dynamicBin = '';
let staticBin = '';

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dockergate-elf-'));
  if (!hasGcc) return;
  fs.writeFileSync(path.join(tmp, 'hello.c'), C_SOURCE);
  dynamicBin = path.join(tmp, 'hello-dyn');
  staticBin = path.join(tmp, 'hello-static');
  run('gcc', ['-O1', '-g0', '-o', dynamicBin, path.join(tmp, 'hello.c')]);
  if (tryRun('gcc', ['-O1', '-static', '-o', staticBin, path.join(tmp, 'hello.c')]) === undefined) staticBin = '';
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- suites ----

describe('libc.so.6', { skip: !LIBC || !hasReadelf ? 'libc.so.6 or readelf not found' : false }, () => {
  const file = LIBC!;
  let elf: ElfFile;
  before(() => {
    elf = load(file);
  });

  it('parses everything in well under 100 ms', () => {
    const bytes = fs.readFileSync(file);
    parseAll(bytes); // warm-up: module compilation is not what is measured
    const { ms } = parseAll(bytes);
    console.log(`# libc.so.6 (${bytes.length} bytes): parse + all tables ${ms.toFixed(1)} ms`);
    assert.ok(ms < 500, `took ${ms} ms`);
  });

  it('has the header, sections and segments readelf shows', () => {
    const h = readelf(file, '-h');
    assert.equal(elf.entry, hex(/Entry point address:\s+0x([0-9a-f]+)/.exec(h)![1]!));
    assert.equal(elf.class, /Class:\s+ELF64/.test(h) ? 64 : 32);
    assert.equal(elf.type, 'dyn');
    assert.equal(elf.segments.length, Number(/Number of program headers:\s+(\d+)/.exec(h)![1]));
    assertSectionsMatchReadelf(file, elf);
    assert.ok(elf.sectionBytes('.text')!.length > 0);
    assert.equal(elf.sectionBytes('.no-such-section'), undefined);
  });

  it('has the soname and needed libraries of readelf -d', () => {
    const want = readelfNeeded(file);
    assert.equal(elf.dynamic.soname, want.soname);
    assert.deepEqual(elf.dynamic.needed, want.needed);
    assert.deepEqual(elf.dynamic.runpath, want.runpath);
    assert.deepEqual(elf.dynamic.rpath, want.rpath);
    // glibc's libc.so.6 is also an executable (it prints its version): it may carry PT_INTERP.
    const interp = /\[Requesting program interpreter: (.*)\]/.exec(readelf(file, '-l'))?.[1];
    assert.equal(elf.interpreter, interp);
    assert.equal(elf.isPie, interp !== undefined || /FLAGS_1.*\bPIE\b/.test(readelf(file, '-d')));
    assert.equal(elf.isStatic, false);
  });

  it('matches readelf --dyn-syms on a sample of 50 symbols, versions included', () => {
    const want = readelfDynSyms(file);
    const ours = elf.dynamicSymbols;
    assert.equal(ours.length, want.length, 'dynsym count');
    const step = Math.max(1, Math.floor(want.length / 50));
    let sampled = 0;
    let versioned = 0;
    for (let i = 1; i < want.length && sampled < 50; i += step, sampled++) {
      const w = want[i]!;
      const s = ours[w.num]!;
      assert.equal(s.name, w.name, `symbol ${w.num}`);
      assert.equal(s.value, w.value, `${w.name} value`);
      assert.equal(s.size, w.size, `${w.name} size`);
      assert.equal(s.type.toUpperCase(), w.type === 'IFUNC' ? 'IFUNC' : w.type, `${w.name} type`);
      assert.equal(s.bind.toUpperCase(), w.bind, `${w.name} bind`);
      assert.equal(s.defined, w.ndx !== 'UND', `${w.name} defined`);
      // readelf omits the version of a version-definition symbol (its name is the version's name).
      if (!(w.version === undefined && s.version === s.name && s.type === 'object' && s.value === 0)) assert.equal(s.version, w.version, `${w.name} version`);
      // readelf's '@@': a non-hidden version this object defines.
      if (w.version !== undefined) assert.equal(s.defaultVersion === true && s.versionSource === 'verdef' && s.defined, w.defaultVersion, `${w.name} @@`);
      if (w.version !== undefined) versioned++;
    }
    assert.equal(sampled, 50);
    assert.ok(versioned > 25, 'most of libc is versioned');
  });

  it('counts the FUNC exports readelf counts', () => {
    const want = readelfDynSyms(file).filter((s) => s.type === 'FUNC' && s.ndx !== 'UND' && (s.bind === 'GLOBAL' || s.bind === 'WEAK')).length;
    const ours = elf.dynamicSymbols.filter((s) => s.type === 'func' && s.defined && (s.bind === 'global' || s.bind === 'weak')).length;
    assert.ok(want > 1000);
    assert.equal(ours, want);
  });

  it('reads DT_INIT_ARRAY through its relocations like readelf -x .init_array + -r', () => {
    const want = expectedInitArray(file, elf, '.init_array');
    assert.ok(want.length > 0);
    assert.deepEqual(elf.dynamic.initArray, want);
    for (const f of elf.dynamic.initArray) assert.ok(elf.readVirtual(f, 1), 'init function is mapped');
  });

  it('has the relocations of readelf -r (RELR expanded), GOT slots and relative targets', () => {
    const want = readelfRelocs(file);
    const ours = elf.relocations;
    assert.equal(ours.length, want.length, 'relocation count');
    const byOffset = new Map(ours.map((r) => [`${r.table}:${r.offset}`, r]));
    const slots = elf.gotSlotSymbols();
    const targets = new Set(elf.relativeTargets());
    for (const w of want) {
      if (w.type === 'RELR') {
        assert.ok(ours.some((r) => r.offset === w.offset && !r.explicitAddend), `RELR slot ${w.offset.toString(16)}`);
        continue;
      }
      const r = byOffset.get(`${w.table}:${w.offset}`) ?? ours.find((o) => o.offset === w.offset);
      assert.ok(r, `relocation at ${w.offset.toString(16)}`);
      if (w.addend !== undefined) assert.equal(r.addend, w.addend, `addend at ${w.offset.toString(16)}`);
      if (w.symbol) assert.equal(r.symbolName, w.symbol, `symbol at ${w.offset.toString(16)}`);
      if (/_(JUMP_SLOT|JMP_SLOT|GLOB_DAT)$/.test(w.type) && w.symbol) assert.equal(slots.get(w.offset), w.symbol);
      if (/_I?RELATIVE$/.test(w.type) && w.addend !== undefined) assert.ok(targets.has(w.addend), `relative target ${w.addend.toString(16)}`);
    }
  });

  it('walks .eh_frame like readelf --debug-dump=frames', () => {
    assertFdesMatchReadelf(file, elf);
  });

  it('is not a Go binary', () => {
    assert.equal(elf.go, undefined);
  });
});

describe('/bin/bash', { skip: !BASH || !hasReadelf ? 'bash or readelf not found' : false }, () => {
  const file = BASH!;
  let elf: ElfFile;
  before(() => {
    elf = load(file);
  });

  it('parses everything quickly', () => {
    const bytes = fs.readFileSync(file);
    parseAll(bytes);
    const { ms } = parseAll(bytes);
    console.log(`# bash (${bytes.length} bytes): parse + all tables ${ms.toFixed(1)} ms`);
    assert.ok(ms < 500, `took ${ms} ms`);
  });

  it('has the interpreter, needed libraries and PIE-ness readelf shows', () => {
    const l = readelf(file, '-l');
    const interp = /\[Requesting program interpreter: (.*)\]/.exec(l)?.[1];
    assert.equal(elf.interpreter, interp);
    assert.deepEqual(elf.dynamic.needed, readelfNeeded(file).needed);
    const h = readelf(file, '-h');
    const dyn = /Type:\s+DYN/.test(h);
    assert.equal(elf.type, dyn ? 'dyn' : 'exec');
    assert.equal(elf.isPie, dyn && interp !== undefined);
    assert.equal(elf.isStatic, false);
    assert.equal(elf.stripped, !/\.symtab/.test(readelf(file, '-S')));
  });

  it('has as many FDEs (and the same ranges) as readelf --debug-dump=frames', () => {
    assertFdesMatchReadelf(file, elf);
  });

  it('maps the entry point and reads strings through the segments', () => {
    assert.ok(elf.readVirtual(elf.entry, 16));
    const interp = elf.segments.find((s) => s.type === 3)!;
    assert.equal(elf.cString(interp.vaddr, 4096), elf.interpreter);
    assert.equal(elf.readVirtual(2 ** 52, 4), undefined);
    // Past p_filesz of the data segment: zeros up to p_memsz.
    const bss = elf.segments.find((s) => s.type === 1 && s.memsz > s.filesz);
    if (bss) assert.deepEqual([...elf.readVirtual(bss.vaddr + bss.filesz, 8)!], [0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('gcc-compiled fixtures', { skip: !hasGcc || !hasReadelf ? 'gcc or readelf not found' : false }, () => {
  it('dynamic: GOT slots name the imports, init/fini arrays hold the constructors', () => {
    const elf = load(dynamicBin);
    const slots = new Set(elf.gotSlotSymbols().values());
    for (const name of ['printf', 'strlen', 'getenv']) assert.ok(slots.has(name), `GOT slot for ${name}: ${[...slots].join(',')}`);
    assert.deepEqual(elf.dynamic.initArray, expectedInitArray(dynamicBin, elf, '.init_array'));
    assert.deepEqual(elf.dynamic.finiArray, expectedInitArray(dynamicBin, elf, '.fini_array'));
    // `table` holds twice/thrice: both are relative targets (address-taken functions).
    const syms = elf.symbols.length > 0 ? elf.symbols : elf.dynamicSymbols;
    const targets = new Set(elf.relativeTargets());
    for (const name of ['twice', 'thrice']) {
      const s = syms.find((x) => x.name === name);
      if (s && elf.isPie) assert.ok(targets.has(s.value), `${name} is a relative target`);
    }
    assertFdesMatchReadelf(dynamicBin, elf);
  });

  it('static: no interpreter, .init_array from its section, IRELATIVE targets, .symtab like readelf -s', { skip: staticBin ? false : 'gcc -static failed (no static libc?)' }, () => {
    const elf = load(staticBin);
    assert.equal(elf.isStatic, true);
    assert.equal(elf.interpreter, undefined);
    assert.equal(elf.stripped, false);
    assert.deepEqual(elf.dynamic.needed, []);
    assert.deepEqual(elf.dynamic.initArray, expectedInitArray(staticBin, elf, '.init_array'));
    const want = readelfRelocs(staticBin);
    assert.equal(elf.relocations.length, want.length);
    const targets = new Set(elf.relativeTargets());
    for (const w of want) if (/_IRELATIVE$/.test(w.type) && w.addend !== undefined) assert.ok(targets.has(w.addend));
    const count = /Symbol table '\.symtab' contains (\d+) entries/.exec(readelf(staticBin, '-s'))?.[1];
    assert.equal(elf.symbols.length, Number(count));
    assert.ok(elf.symbols.some((s) => s.name === 'main' && s.type === 'func' && s.defined));
    assertFdesMatchReadelf(staticBin, elf);
    assertSectionsMatchReadelf(staticBin, elf);
  });
});

describe('Go binaries', () => {
  /**
   * `go tool nm` text symbols: name -> addresses. The symbol table names ABI0 wrappers `f.abi0`
   * while the pclntab names both `f`: they are folded onto `f` here.
   */
  const nmFunctions = (file: string): Map<string, Set<number>> => {
    const out = new Map<string, Set<number>>();
    for (const line of run(goBinary!, ['tool', 'nm', file]).split('\n')) {
      const m = /^\s*([0-9a-f]+) [Tt] (.+)$/.exec(line);
      if (!m) continue;
      const name = m[2]!.replace(/\.abi0$/, '');
      if (!out.has(name)) out.set(name, new Set());
      out.get(name)!.add(hex(m[1]!));
    }
    return out;
  };

  const assertMatchesNm = (file: string): void => {
    const elf = load(file);
    const go = elf.go;
    assert.ok(go, 'detected as Go');
    assert.match(go.version ?? '', /^go1\./);
    assert.ok(go.buildId, 'build id');
    const nm = nmFunctions(file);
    let compared = 0;
    for (const f of go.functions) {
      const addrs = nm.get(f.name);
      if (addrs === undefined) continue;
      assert.ok(addrs.has(f.entry), `${f.name} entry 0x${f.entry.toString(16)} vs go tool nm ${[...addrs].map((a) => a.toString(16)).join(',')}`);
      compared++;
    }
    assert.ok(compared > go.functions.length * 0.9, `${compared} of ${go.functions.length} functions found in go tool nm`);
    const greet = go.functions.find((f) => f.name === 'main.greet');
    assert.ok(greet && nm.get('main.greet')?.has(greet.entry), 'main.greet');
    const version = /(go1[^\s]*)/.exec(run(goBinary!, ['version', file]))?.[1];
    assert.equal(go.version, version);
  };

  const buildGo = (name: string, args: string[]): string | undefined => {
    const dir = path.join(tmp, 'go');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'go.mod'), 'module elffixture\n\ngo 1.17\n');
    fs.writeFileSync(path.join(dir, 'main.go'), GO_SOURCE);
    const out = path.join(dir, name);
    return tryRun(goBinary!, ['build', '-trimpath', ...args, '-o', out, '.'], dir) === undefined ? undefined : out;
  };

  it('internally linked: the .gopclntab section matches go tool nm', { skip: goBinary ? false : 'go not installed' }, () => {
    const file = buildGo('internal', []);
    assert.ok(file, 'go build');
    assertMatchesNm(file);
  });

  it('externally linked PIE (no .gopclntab section): the scanned pclntab matches go tool nm', { skip: goBinary && hasGcc ? false : 'go or gcc not installed' }, (t) => {
    const file = buildGo('external-pie', ['-buildmode=pie', '-ldflags=-linkmode=external']);
    if (!file) return t.skip('go build -linkmode=external failed (no cgo toolchain)');
    const elf = load(file);
    assert.equal(elf.section('.gopclntab'), undefined);
    assertMatchesNm(file);
  });

  it('dockerd: > 10000 functions, main.main, entries inside executable segments', { skip: DOCKERD ? false : 'dockerd not installed' }, () => {
    const bytes = fs.readFileSync(DOCKERD!);
    const { elf, ms } = parseAll(bytes);
    const again = parseAll(bytes).ms;
    console.log(`# dockerd (${bytes.length} bytes): parse + all tables ${ms.toFixed(1)} ms cold, ${again.toFixed(1)} ms warm`);
    const go = elf.go;
    assert.ok(go);
    const fns = go.functions;
    console.log(`# dockerd: ${fns.length} Go functions, pclntab ${go.pclntabVersion}, ${go.version}`);
    assert.ok(fns.length > 10_000);
    assert.ok(fns.some((f) => f.name === 'main.main'));
    const exec = elf.segments.filter((s) => s.type === 1 && (s.flags & 1) !== 0);
    for (let i = 0; i < fns.length; i++) {
      const f = fns[i]!;
      assert.ok(f.end >= f.entry && (i === 0 || f.entry >= fns[i - 1]!.entry), `${f.name} ordered`);
      assert.ok(exec.some((s) => f.entry >= s.vaddr && f.entry < s.vaddr + s.memsz), `${f.name} in an executable segment`);
    }
    if (elf.symbols.length > 0) {
      const byName = new Map(elf.symbols.filter((s) => s.type === 'func').map((s) => [s.name, s.value]));
      const main = byName.get('main.main');
      assert.equal(fns.find((f) => f.name === 'main.main')!.entry, main);
    } else if (goBinary) {
      const version = /(go1[^\s]*)/.exec(run(goBinary, ['version', DOCKERD!]))?.[1];
      assert.equal(go.version, version);
    }
    assert.ok(ms < 2500, `took ${ms} ms`);
  });
});

/** Go's own ELF test corpus (`$GOROOT/src/debug/elf/testdata`): objects of eleven architectures, both byte orders. */
function goElfTestdata(): string | undefined {
  const root = goBinary ? tryRun(goBinary, ['env', 'GOROOT'])?.trim() : undefined;
  return [root && path.join(root, 'src/debug/elf/testdata'), '/usr/lib/go/src/debug/elf/testdata'].find((d) => d && fs.existsSync(d)) || undefined;
}

const GO_TESTDATA = goElfTestdata();

/** A minimal ELF64 holding one section (plus .shstrtab), to read a raw table through the reader. */
function elfWithSection(name: string, data: Buffer): Buffer {
  const shstrtab = Buffer.from(`\0${name}\0.shstrtab\0`, 'latin1');
  const dataAt = 64;
  const strAt = dataAt + data.length;
  const shAt = Math.ceil((strAt + shstrtab.length) / 8) * 8;
  const b = Buffer.alloc(shAt + 3 * 64);
  b.write('\x7fELF\x02\x01\x01', 0, 'latin1');
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(62, 18); // EM_X86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(shAt), 0x28);
  b.writeUInt16LE(64, 0x34);
  b.writeUInt16LE(64, 0x3a);
  b.writeUInt16LE(3, 0x3c);
  b.writeUInt16LE(2, 0x3e);
  data.copy(b, dataAt);
  shstrtab.copy(b, strAt);
  const section = (i: number, nameOffset: number, type: number, offset: number, size: number): void => {
    const at = shAt + i * 64;
    b.writeUInt32LE(nameOffset, at);
    b.writeUInt32LE(type, at + 4);
    b.writeBigUInt64LE(BigInt(offset), at + 24);
    b.writeBigUInt64LE(BigInt(size), at + 32);
  };
  section(1, 1, 1, dataAt, data.length);
  section(2, name.length + 2, 3, strAt, shstrtab.length);
  return b;
}

describe("Go's debug/elf test corpus", { skip: GO_TESTDATA && hasReadelf ? false : 'go testdata or readelf not found' }, () => {
  const files = GO_TESTDATA ? fs.readdirSync(GO_TESTDATA).filter((f) => !/\.(c|gz)$/.test(f)) : [];

  for (const name of files) {
    it(`${name}: sections, symbols and relocations match readelf`, () => {
      const file = path.join(GO_TESTDATA!, name);
      const bytes = fs.readFileSync(file);
      const interp = readelf(file, '-l');
      const debugOnly = /INTERP\s+0x0+\s/.test(interp) && /NOBITS/.test(readelf(file, '-S'));
      if (debugOnly) {
        // objcopy --only-keep-debug output: PT_INTERP names bytes the file does not hold.
        assert.throws(() => parseElf(bytes, limits), (err: unknown) => err instanceof ElfFormatError && /debug-info/.test(err.message));
        return;
      }
      const elf = parseElf(bytes, limits);
      assertSectionsMatchReadelf(file, elf);
      const symtab = /Symbol table '\.symtab' contains (\d+) entries/.exec(readelf(file, '-s'))?.[1];
      assert.equal(elf.symbols.length, Number(symtab ?? 0));
      const want = readelfRelocs(file);
      assert.equal(elf.relocations.length, want.length, 'relocation count');
      for (const [i, w] of want.entries()) {
        const r = elf.relocations[i]!;
        assert.equal(r.offset, w.offset, `relocation ${i} offset`);
        if (w.symbol && !w.symbol.startsWith('.')) assert.equal(r.symbolName, w.symbol, `relocation ${i} symbol`);
        if (w.addend !== undefined && w.symbol) assert.equal(r.addend, w.addend, `relocation ${i} addend`);
      }
      if (elf.type !== 'rel') assert.deepEqual(elf.dynamic.needed, readelfNeeded(file).needed);
      if (elf.dynamicSymbols.length > 0) {
        const dyn = readelfDynSyms(file);
        assert.deepEqual(
          elf.dynamicSymbols.map((s) => `${s.name}@${s.version ?? ''}`),
          dyn.map((s) => `${s.name}@${s.version ?? ''}`),
        );
      }
      elf.ehFrameFunctions();
      assert.equal(elf.go, undefined);
    });
  }

  it('hello-world-core.gz: a core file mapping the vsyscall page is refused (address above 2^53)', () => {
    const file = path.join(GO_TESTDATA!, 'hello-world-core.gz');
    if (!fs.existsSync(file)) return;
    const bytes = zlib.gunzipSync(fs.readFileSync(file));
    const core = path.join(tmp, 'core');
    fs.writeFileSync(core, bytes);
    const vsyscall = readelf(core, '-l')
      .split('\n')
      .find((l) => /0xffffffffff600000/.test(l));
    assert.ok(vsyscall, 'readelf shows the vsyscall segment');
    assert.throws(() => parseElf(bytes, limits), (err: unknown) => err instanceof ElfFormatError && /p_vaddr/.test(err.message) && /2\^53/.test(err.message));
  });

  it('gosym/testdata/pcln115.gz: a Go 1.2-format pclntab (Go 1.15) read through a .gopclntab section', () => {
    const file = path.join(GO_TESTDATA!, '../../gosym/testdata/pcln115.gz');
    if (!fs.existsSync(file)) return;
    const elf = parseElf(elfWithSection('.gopclntab', zlib.gunzipSync(fs.readFileSync(file))), limits);
    const go = elf.go;
    assert.ok(go);
    assert.equal(go.pclntabVersion, '1.2');
    // debug/gosym's Test115PclnParsing: line 3 of hello.go is pc 0x105c280, in main.main.
    const main = go.functions.find((f) => f.name === 'main.main');
    assert.ok(main && main.entry <= 0x105c280 && 0x105c280 < main.end, JSON.stringify(main));
    assert.ok(go.functions.length > 1000);
    for (let i = 1; i < go.functions.length; i++) assert.ok(go.functions[i]!.entry >= go.functions[i - 1]!.end);
  });
});

/** The same bytes with the section header table removed (e_shoff = e_shnum = e_shstrndx = 0), as sstrip leaves them. */
function withoutSectionHeaders(bytes: Buffer): Buffer {
  const b = Buffer.from(bytes);
  const is64 = b[4] === 2;
  const le = b[5] === 1;
  if (is64) le ? b.writeBigUInt64LE(0n, 0x28) : b.writeBigUInt64BE(0n, 0x28);
  else le ? b.writeUInt32LE(0, 0x20) : b.writeUInt32BE(0, 0x20);
  const o = is64 ? 0x3c : 0x30;
  b.writeUInt16LE(0, o);
  b.writeUInt16LE(0, o + 2);
  return b;
}

describe('without section headers (the loader view)', () => {
  const cases = [
    ['libc.so.6', LIBC],
    ['bash', BASH],
    ['gcc dynamic fixture', () => dynamicBin],
  ] as const;
  for (const [name, file] of cases) {
    it(`${name}: dynamic symbols, versions, relocations, init arrays and FDEs are the same`, () => {
      const p = typeof file === 'function' ? file() : file;
      if (!p) return;
      const bytes = fs.readFileSync(p);
      const full = parseElf(bytes, limits);
      const bare = parseElf(withoutSectionHeaders(bytes), limits);
      assert.equal(bare.sections.length, 0);
      assert.deepEqual(bare.dynamic.needed, full.dynamic.needed);
      assert.equal(bare.dynamic.soname, full.dynamic.soname);
      assert.deepEqual(bare.dynamic.initArray, full.dynamic.initArray);
      assert.deepEqual(bare.dynamic.finiArray, full.dynamic.finiArray);
      // DT_SYMTAB sized by DT_GNU_HASH / DT_HASH, versions from DT_VERSYM / DT_VERDEF / DT_VERNEED.
      const strip = (s: readonly { name: string; value: number; version?: string; defaultVersion?: boolean }[]) =>
        s.map((x) => `${x.name}@${x.version ?? ''}${x.defaultVersion ? '@' : ''}=${x.value}`);
      assert.deepEqual(strip(bare.dynamicSymbols), strip(full.dynamicSymbols));
      assert.equal(bare.relocations.length, full.relocations.length);
      assert.deepEqual(bare.gotSlotSymbols(), full.gotSlotSymbols());
      assert.deepEqual(bare.relativeTargets(), full.relativeTargets());
      // PT_GNU_EH_FRAME instead of .eh_frame_hdr.
      assert.deepEqual(bare.ehFrameFunctions(), full.ehFrameFunctions());
      assert.equal(bare.stripped, true);
    });
  }

  it('Go: the pclntab is found by scanning when there is no section table', { skip: goBinary ? false : 'go not installed' }, () => {
    const dir = path.join(tmp, 'go-bare');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'go.mod'), 'module elffixture\n\ngo 1.17\n');
    fs.writeFileSync(path.join(dir, 'main.go'), GO_SOURCE);
    run(goBinary!, ['build', '-trimpath', '-o', 'bin', '.'], dir);
    const bytes = fs.readFileSync(path.join(dir, 'bin'));
    const full = parseElf(bytes, limits).go!;
    const bare = parseElf(withoutSectionHeaders(bytes), limits).go;
    assert.ok(bare, 'detected as Go through its PT_NOTE build id');
    assert.equal(bare.buildId, full.buildId);
    assert.equal(bare.version, full.version, 'version from the buildinfo blob in writable data');
    assert.deepEqual(bare.functions, full.functions);
    assert.ok(full.functions.length > 1000);
  });
});

describe('malformed input', () => {
  const assertFormatError = (bytes: Uint8Array, test: (elf: ElfFile) => unknown = () => undefined, offset?: number): ElfFormatError => {
    try {
      test(parseElf(bytes, limits));
    } catch (err) {
      assert.ok(err instanceof ElfFormatError, `expected ElfFormatError, got ${String(err)}`);
      assert.equal(err.code, 'invalid-input');
      assert.ok(Number.isInteger(err.offset) && err.offset >= 0 && err.offset <= Math.max(bytes.length, 1 << 30), `offset ${err.offset}`);
      if (offset !== undefined) assert.equal(err.offset, offset);
      assert.match(err.message, /at file offset 0x[0-9a-f]+/);
      return err;
    }
    assert.fail('no error thrown');
  };

  const sample = (): Buffer => fs.readFileSync(dynamicBin || BASH || '/bin/sh');

  it('rejects empty, short and non-ELF input with the offset of the first bad byte', () => {
    assertFormatError(new Uint8Array(0), undefined, 0);
    assertFormatError(Buffer.from('\x7fEL'), undefined, 0);
    assertFormatError(Buffer.from('#!/bin/sh\necho hi\n'), undefined, 0);
    assertFormatError(Buffer.from('\x7fELF\x09\x01\x01' + '\0'.repeat(60), 'latin1'), undefined, 4);
    assertFormatError(Buffer.from('\x7fELF\x02\x01\x01' + '\0'.repeat(20), 'latin1'));
  });

  it('rejects truncation at every header boundary of a real binary', () => {
    const bytes = sample();
    const elf = parseElf(bytes, limits);
    const h = { ph: elf.segments[0]!.headerOffset, sh: elf.sections[1]!.headerOffset };
    for (const cut of [16, 40, 63, h.ph + 10, h.sh + 3, bytes.length - 1]) assertFormatError(bytes.subarray(0, cut));
  });

  it('rejects header fields that point outside the file, naming the field', () => {
    const bytes = Buffer.from(sample());
    const is64 = bytes[4] === 2;
    const shoffAt = is64 ? 0x28 : 0x20;
    const b1 = Buffer.from(bytes);
    if (is64) b1.writeBigUInt64LE(BigInt(bytes.length + 100), shoffAt);
    else b1.writeUInt32LE(bytes.length + 100, shoffAt);
    assertFormatError(b1);
    const b2 = Buffer.from(bytes);
    if (is64) b2.writeBigUInt64LE(1n << 60n, 0x18);
    else return;
    const err = assertFormatError(b2, undefined, 0x18);
    assert.match(err.message, /2\^53/);
  });

  it('rejects a section whose data lies past the end of the file when it is read', () => {
    const bytes = Buffer.from(sample());
    const elf = parseElf(bytes, limits);
    const dynsym = elf.sections.find((s) => s.name === '.dynsym')!;
    const b = Buffer.from(bytes);
    const sizeAt = dynsym.headerOffset + (elf.class === 64 ? 32 : 20);
    if (elf.class === 64) b.writeBigUInt64LE(BigInt(bytes.length * 2), sizeAt);
    else b.writeUInt32LE(bytes.length * 2, sizeAt);
    const err = assertFormatError(b, (e) => e.dynamicSymbols, dynsym.headerOffset);
    assert.match(err.message, /\.dynsym/);
    // The same error on every access (cached), and other tables still work.
    const broken = parseElf(b, limits);
    assert.throws(() => broken.dynamicSymbols, ElfFormatError);
    assert.throws(() => broken.dynamicSymbols, ElfFormatError);
    assert.ok(broken.ehFrameFunctions().length > 0);
  });

  it('enforces the ELF limits with LimitExceededError naming the limit', () => {
    const bytes = sample();
    const cases: Array<[Partial<typeof limits>, (e: ElfFile) => unknown, string]> = [
      [{ maxElfBytes: 1024 }, () => undefined, 'maxElfBytes'],
      [{ maxElfSections: 4 }, () => undefined, 'maxElfSections'],
      [{ maxElfSymbols: 3 }, (e) => e.dynamicSymbols, 'maxElfSymbols'],
      [{ maxElfRelocations: 2 }, (e) => e.relocations, 'maxElfRelocations'],
      [{ maxFdes: 2 }, (e) => e.ehFrameFunctions(), 'maxFdes'],
    ];
    for (const [override, access, limit] of cases) {
      assert.throws(
        () => access(parseElf(bytes, limitsWith(override))),
        (err: unknown) => err instanceof ElfLimitError && err instanceof LimitExceededError && err.limit === limit && err.offset >= 0,
        limit,
      );
    }
  });

  it('rejects a dynamic string (DT_SONAME) longer than PATH_MAX, naming it', { skip: hasGcc ? false : 'gcc not found' }, () => {
    const library = path.join(tmp, 'long-soname.so');
    run('gcc', ['-shared', '-fPIC', '-o', library, path.join(tmp, 'hello.c'), `-Wl,-soname,lib${'x'.repeat(100_000)}.so`]);
    assert.throws(() => load(library).dynamic, (err: unknown) => err instanceof ElfFormatError && /longer than PATH_MAX/.test(err.message));
  });

  it('rejects garbage after a valid ELF identification', () => {
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
    for (let i = 0; i < 50; i++) {
      const b = Buffer.alloc(64 + (i % 7) * 100);
      for (let j = 0; j < b.length; j++) b[j] = rand();
      b.write('\x7fELF\x02\x01\x01', 0, 'latin1');
      try {
        parseAll(b);
      } catch (err) {
        assert.ok(err instanceof ElfFormatError || err instanceof ElfLimitError, String(err));
      }
    }
  });
});
