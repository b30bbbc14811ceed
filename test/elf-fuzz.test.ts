/**
 * Fuzzing the ELF reader: seeded, deterministic mutations of real binaries (a small gcc-compiled
 * dynamic and static executable built here, libc.so.6, and a small Go binary when go is installed).
 * For every input, `parseElf` and then every lazy accessor is called; the only errors allowed out are
 * `ElfFormatError` and `ElfLimitError` (a `LimitExceededError`), each naming an offset inside the
 * file, and every input must finish within `PER_INPUT_MS`.
 *
 * DOCKERGATE_FUZZ_ITERATIONS (default 10000), DOCKERGATE_FUZZ_SEED (default 0x5eed) and
 * DOCKERGATE_FUZZ_MAX_MS (default 200) control the run; a failing or slow input is written to the
 * temp dir (kept) and its path printed, for replay.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_LIMITS, type Limits, limitsWith } from '../infra/limits.js';
import { type ElfFile, ElfFormatError, ElfLimitError, parseElf } from '../worker/elf/index.js';

const ITERATIONS = Number(process.env.DOCKERGATE_FUZZ_ITERATIONS ?? 10_000);
const SEED = Number(process.env.DOCKERGATE_FUZZ_SEED ?? 0x5eed);
/** Wall-clock bound for one input: parse plus every accessor (DOCKERGATE_FUZZ_MAX_MS overrides). */
const PER_INPUT_MS = Number(process.env.DOCKERGATE_FUZZ_MAX_MS ?? 200);

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

const tryRun = (cmd: string, args: readonly string[], cwd?: string): string | undefined => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd });
  } catch {
    return undefined;
  }
};

interface Fixture {
  readonly name: string;
  readonly bytes: Buffer;
  /** Share of iterations (weights are normalised). */
  readonly weight: number;
  /** File ranges worth mutating: header tables and the bytes of every table-like section. */
  readonly regions: ReadonlyArray<readonly [number, number]>;
  /** Field offsets for targeted mutations. */
  readonly fields: ReadonlyArray<{ readonly at: number; readonly size: 2 | 4 | 8; readonly what: string }>;
}

/** Where the interesting bytes of a pristine fixture are, found with the reader itself. */
function describeFixture(name: string, bytes: Buffer, weight: number): Fixture {
  const elf = parseElf(bytes, DEFAULT_LIMITS);
  const is64 = elf.class === 64;
  const w = is64 ? 8 : 4;
  const regions: Array<[number, number]> = [[0, is64 ? 64 : 52]];
  const fields: Array<{ at: number; size: 2 | 4 | 8; what: string }> = [
    { at: 24 + w, size: w, what: 'e_phoff' },
    { at: 24 + 2 * w, size: w, what: 'e_shoff' },
    { at: 24 + 3 * w + 8, size: 2, what: 'e_phnum' },
    { at: 24 + 3 * w + 10, size: 2, what: 'e_shentsize' },
    { at: 24 + 3 * w + 12, size: 2, what: 'e_shnum' },
    { at: 24 + 3 * w + 14, size: 2, what: 'e_shstrndx' },
    { at: 24, size: w, what: 'e_entry' },
  ];
  for (const seg of elf.segments) {
    const at = seg.headerOffset;
    regions.push([at, is64 ? 56 : 32]);
    if (is64) {
      fields.push({ at: at + 8, size: 8, what: `p_offset[${seg.index}]` }, { at: at + 16, size: 8, what: `p_vaddr[${seg.index}]` });
      fields.push({ at: at + 32, size: 8, what: `p_filesz[${seg.index}]` }, { at: at + 40, size: 8, what: `p_memsz[${seg.index}]` });
    } else {
      fields.push({ at: at + 4, size: 4, what: `p_offset[${seg.index}]` }, { at: at + 16, size: 4, what: `p_filesz[${seg.index}]` });
    }
  }
  for (const s of elf.sections) {
    const at = s.headerOffset;
    regions.push([at, is64 ? 64 : 40]);
    if (is64) {
      fields.push({ at: at + 24, size: 8, what: `sh_offset[${s.name}]` }, { at: at + 32, size: 8, what: `sh_size[${s.name}]` });
      fields.push({ at: at + 40, size: 4, what: `sh_link[${s.name}]` }, { at: at + 44, size: 4, what: `sh_info[${s.name}]` });
      fields.push({ at: at + 56, size: 8, what: `sh_entsize[${s.name}]` }, { at: at + 16, size: 8, what: `sh_addr[${s.name}]` });
    } else {
      fields.push({ at: at + 16, size: 4, what: `sh_offset[${s.name}]` }, { at: at + 20, size: 4, what: `sh_size[${s.name}]` });
    }
    // Table-like sections: everything but code and big data.
    if (s.hasFileData && s.size > 0 && !/^\.(text|rodata|data|debug|init$|fini$|plt)/.test(s.name)) regions.push([s.offset, Math.min(s.size, 64 * 1024)]);
  }
  for (const e of elf.dynamic.entries) {
    regions.push([e.offset, w * 2]);
    fields.push({ at: e.offset + w, size: w, what: `d_val[${e.tag}]` });
  }
  return { name, bytes, weight, regions, fields };
}

interface Outcome {
  readonly kind: 'ok' | 'format' | 'limit';
  readonly ms: number;
}

/** Every accessor of the public API; errors from each are collected, not short-circuited. */
function exercise(elf: ElfFile): unknown[] {
  const errors: unknown[] = [];
  const touch = (f: () => unknown): void => {
    try {
      f();
    } catch (err) {
      errors.push(err);
    }
  };
  touch(() => [elf.class, elf.littleEndian, elf.type, elf.machine, elf.arch, elf.entry, elf.segments.length, elf.sections.length, elf.interpreter]);
  touch(() => elf.dynamic);
  touch(() => elf.dynamicSymbols);
  touch(() => elf.symbols);
  touch(() => elf.relocations);
  touch(() => elf.gotSlotSymbols());
  touch(() => elf.relativeTargets());
  touch(() => elf.ehFrameFunctions());
  touch(() => {
    const go = elf.go;
    return go && [go.buildId, go.version, go.functions.length, go.pclntabVersion];
  });
  touch(() => [elf.stripped, elf.isStatic, elf.isPie]);
  touch(() => elf.readVirtual(elf.entry, 16));
  touch(() => elf.cString(elf.entry, 64));
  touch(() => elf.sectionBytes('.text'));
  touch(() => elf.sectionBytes('.bss'));
  for (const s of elf.sections.slice(0, 8)) touch(() => elf.sectionBytes(s.name));
  return errors;
}

function check(err: unknown, size: number): 'format' | 'limit' {
  if (err instanceof ElfFormatError || err instanceof ElfLimitError) {
    assert.ok(Number.isInteger(err.offset) && err.offset >= 0 && err.offset <= size, `error offset ${err.offset} outside the file (${size} bytes): ${err.message}`);
    return err instanceof ElfFormatError ? 'format' : 'limit';
  }
  throw err;
}

function runOne(bytes: Uint8Array, limits: Limits): Outcome {
  const t = performance.now();
  const kinds: Array<'format' | 'limit'> = [];
  try {
    const elf = parseElf(bytes, limits);
    for (const err of exercise(elf)) kinds.push(check(err, bytes.length));
  } catch (err) {
    kinds.push(check(err, bytes.length));
  }
  const kind = kinds.includes('limit') ? 'limit' : kinds.length > 0 ? 'format' : 'ok';
  return { kind, ms: performance.now() - t };
}

// ---- mutations ----

const U64_BOUNDARIES = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 1n << 53n, (1n << 53n) - 1n, 1n << 63n, (1n << 64n) - 1n];

type Mutation = (b: Buffer, f: Fixture, rand: () => number) => string;

const pick = <T>(xs: readonly T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)]!;
const offsetIn = (f: Fixture, b: Buffer, rand: () => number): number => {
  const [start, size] = pick(f.regions, rand);
  return Math.min(b.length - 1, start + Math.floor(rand() * size));
};

function writeValue(b: Buffer, at: number, size: 2 | 4 | 8, value: bigint, le: boolean): void {
  if (at < 0 || at + size > b.length) return;
  const v = value & ((1n << BigInt(size * 8)) - 1n);
  if (size === 8) le ? b.writeBigUInt64LE(v, at) : b.writeBigUInt64BE(v, at);
  else if (size === 4) le ? b.writeUInt32LE(Number(v), at) : b.writeUInt32BE(Number(v), at);
  else le ? b.writeUInt16LE(Number(v), at) : b.writeUInt16BE(Number(v), at);
}

const MUTATIONS: ReadonlyArray<readonly [string, number, Mutation]> = [
  [
    'bit flips',
    3,
    (b, f, rand) => {
      const n = 1 + Math.floor(rand() * 8);
      for (let i = 0; i < n; i++) {
        const at = rand() < 0.8 ? offsetIn(f, b, rand) : Math.floor(rand() * b.length);
        b[at]! ^= 1 << Math.floor(rand() * 8);
      }
      return `flip ${n} bits`;
    },
  ],
  [
    'boundary bytes',
    2,
    (b, f, rand) => {
      const n = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < n; i++) b[offsetIn(f, b, rand)] = pick([0, 0xff, 0x7f, 0x80, 0x01, 0xfe], rand);
      return `overwrite ${n} bytes`;
    },
  ],
  [
    'boundary words',
    2,
    (b, f, rand) => {
      const size = pick([2, 4, 8] as const, rand);
      const at = offsetIn(f, b, rand) & ~(size - 1);
      const value = rand() < 0.2 ? BigInt(b.length + Math.floor(rand() * 64) - 32) : pick(U64_BOUNDARIES, rand);
      writeValue(b, at, size, value, b[5] !== 2);
      return `u${size * 8} 0x${value.toString(16)} at ${at}`;
    },
  ],
  [
    'header fields',
    4,
    (b, f, rand) => {
      const field = pick(f.fields, rand);
      const r = rand();
      const value =
        r < 0.4
          ? pick(U64_BOUNDARIES, rand)
          : r < 0.6
            ? BigInt(Math.floor(rand() * b.length))
            : r < 0.8
              ? BigInt(b.length + Math.floor(rand() * 16) - 8)
              : BigInt(Math.floor(rand() * 64));
      writeValue(b, field.at, field.size, value, b[5] !== 2);
      return `${field.what} = 0x${value.toString(16)}`;
    },
  ],
  [
    'drop section headers',
    1,
    (b, _f, rand) => {
      const is64 = b[4] === 2;
      writeValue(b, is64 ? 40 : 32, is64 ? 8 : 4, 0n, b[5] !== 2);
      writeValue(b, is64 ? 60 : 48, 2, rand() < 0.5 ? 0n : 7n, b[5] !== 2);
      return 'e_shoff = 0';
    },
  ],
];

const MUTATION_WEIGHT = MUTATIONS.reduce((a, [, w]) => a + w, 0);

function mutate(f: Fixture, rand: () => number): { bytes: Buffer; description: string } {
  let b = Buffer.from(f.bytes);
  const steps: string[] = [];
  const count = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < count; i++) {
    let r = rand() * MUTATION_WEIGHT;
    for (const [, weight, m] of MUTATIONS) {
      r -= weight;
      if (r < 0) {
        steps.push(m(b, f, rand));
        break;
      }
    }
  }
  if (rand() < 0.12) {
    const cut = Math.floor(rand() * b.length);
    b = b.subarray(0, cut);
    steps.push(`truncate at ${cut}`);
  }
  return { bytes: b, description: `${f.name}: ${steps.join('; ')}` };
}

// ---- fixtures ----

const C_SOURCE = `
#include <stdio.h>
#include <stdlib.h>
static int twice(int x) { return 2 * x; }
int (*volatile table[])(int) = { twice };
static void __attribute__((constructor)) early(void) { if (getenv("X")) puts("ctor"); }
int main(int argc, char **argv) { (void)argv; printf("%d\\n", table[0](argc)); return 0; }
`;

const GO_SOURCE = 'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString("hi\\n") }\n';

let tmp = '';
const fixtures: Fixture[] = [];

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dockergate-elf-fuzz-'));
  const src = path.join(tmp, 'f.c');
  fs.writeFileSync(src, C_SOURCE);
  const dyn = path.join(tmp, 'dyn');
  const stat = path.join(tmp, 'static');
  if (tryRun('gcc', ['-O1', '-o', dyn, src]) !== undefined) fixtures.push(describeFixture('gcc-dynamic', fs.readFileSync(dyn), 45));
  if (tryRun('gcc', ['-O1', '-static', '-o', stat, src]) !== undefined) fixtures.push(describeFixture('gcc-static', fs.readFileSync(stat), 30));
  const libc = tryRun('gcc', ['-print-file-name=libc.so.6'])?.trim();
  const libcPath = [libc, '/lib/x86_64-linux-gnu/libc.so.6', '/lib/aarch64-linux-gnu/libc.so.6'].find((p) => p && path.isAbsolute(p) && fs.existsSync(p));
  if (libcPath) fixtures.push(describeFixture('libc.so.6', fs.readFileSync(libcPath), 10));
  const go = ['go', '/usr/lib/go/bin/go'].find((g) => tryRun(g, ['version']) !== undefined);
  if (go) {
    const dir = path.join(tmp, 'go');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'go.mod'), 'module fuzzfixture\n\ngo 1.17\n');
    fs.writeFileSync(path.join(dir, 'main.go'), GO_SOURCE);
    const out = path.join(dir, 'hello');
    if (tryRun(go, ['build', '-trimpath', '-ldflags=-s -w', '-o', out, '.'], dir) !== undefined) fixtures.push(describeFixture('go-stripped', fs.readFileSync(out), 15));
    // Go's ELF corpus: small objects of eleven architectures, both byte orders and both classes.
    const root = tryRun(go, ['env', 'GOROOT'])?.trim();
    const corpus = root ? path.join(root, 'src/debug/elf/testdata') : '';
    const objects: Array<[string, Buffer]> = [];
    for (const name of corpus && fs.existsSync(corpus) ? fs.readdirSync(corpus) : []) {
      if (/\.(c|gz)$/.test(name)) continue;
      const bytes = fs.readFileSync(path.join(corpus, name));
      try {
        exercise(parseElf(bytes, DEFAULT_LIMITS));
        objects.push([name, bytes]);
      } catch {
        // Debug-info-only files are refused at parse; they are not seeds.
      }
    }
    for (const [name, bytes] of objects) fixtures.push(describeFixture(`go-testdata/${name}`, bytes, 15 / objects.length));
  }
});

after(() => {
  if (tmp && !process.env.DOCKERGATE_FUZZ_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('ELF reader fuzzing', () => {
  it('the pristine fixtures parse completely', () => {
    assert.ok(fixtures.length > 0, 'no fixture could be built (gcc missing and no libc.so.6)');
    for (const f of fixtures) {
      const elf = parseElf(f.bytes, DEFAULT_LIMITS);
      assert.deepEqual(exercise(elf), [], f.name);
    }
  });

  it(`only ElfFormatError / ElfLimitError escape, each input within ${PER_INPUT_MS} ms`, { timeout: 15 * 60_000 }, () => {
    const rand = prng(SEED);
    const total = fixtures.reduce((a, f) => a + f.weight, 0);
    const counts = { ok: 0, format: 0, limit: 0 };
    const perFixture = new Map<string, { n: number; ms: number; max: number }>();
    let slowest = { ms: 0, description: '' };
    const started = performance.now();
    for (let i = 0; i < ITERATIONS; i++) {
      let r = rand() * total;
      const f = fixtures.find((x) => (r -= x.weight) < 0) ?? fixtures[0]!;
      const { bytes, description } = mutate(f, rand);
      // A tenth of the inputs run under tight limits, so every limit check is reached.
      const limits =
        rand() < 0.1
          ? limitsWith({
              maxElfSections: 1 + Math.floor(rand() * 40),
              maxElfSymbols: Math.floor(rand() * 2000),
              maxElfRelocations: Math.floor(rand() * 2000),
              maxFdes: Math.floor(rand() * 500),
              maxGoFunctions: Math.floor(rand() * 500),
              maxElfBytes: rand() < 0.2 ? Math.floor(bytes.length / 2) : DEFAULT_LIMITS.maxElfBytes,
            })
          : DEFAULT_LIMITS;
      let outcome: Outcome;
      try {
        outcome = runOne(bytes, limits);
      } catch (err) {
        const saved = path.join(tmp, `failure-${i}.elf`);
        fs.writeFileSync(saved, bytes);
        process.env.DOCKERGATE_FUZZ_KEEP = '1';
        throw new Error(`iteration ${i} (${description}) threw ${String(err)}; input saved to ${saved}`, { cause: err });
      }
      if (outcome.ms > PER_INPUT_MS) {
        // A GC pause or a busy machine can stall any input once; a slow parser stalls it every time.
        const retry = Math.min(runOne(bytes, limits).ms, runOne(bytes, limits).ms);
        const saved = path.join(tmp, `slow-${i}.elf`);
        fs.writeFileSync(saved, bytes);
        console.log(`#   slow input ${outcome.ms.toFixed(1)} ms, ${retry.toFixed(1)} ms on retry (${description}) saved to ${saved}`);
        if (retry > PER_INPUT_MS) process.env.DOCKERGATE_FUZZ_KEEP = '1';
        outcome = { kind: outcome.kind, ms: retry };
      }
      counts[outcome.kind]++;
      const stat = perFixture.get(f.name) ?? { n: 0, ms: 0, max: 0 };
      stat.n++;
      stat.ms += outcome.ms;
      stat.max = Math.max(stat.max, outcome.ms);
      perFixture.set(f.name, stat);
      if (outcome.ms > slowest.ms) slowest = { ms: outcome.ms, description: `iteration ${i}: ${description}` };
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `# fuzz: ${ITERATIONS} inputs (seed 0x${SEED.toString(16)}) in ${seconds.toFixed(1)} s, ${(ITERATIONS / seconds).toFixed(0)} inputs/s; ` +
        `parsed cleanly ${counts.ok}, ElfFormatError ${counts.format}, limit ${counts.limit}`,
    );
    const grouped = new Map<string, { n: number; ms: number; max: number }>();
    for (const [name, st] of perFixture) {
      const key = name.startsWith('go-testdata/') ? 'go-testdata (all objects)' : name;
      const g = grouped.get(key) ?? { n: 0, ms: 0, max: 0 };
      grouped.set(key, { n: g.n + st.n, ms: g.ms + st.ms, max: Math.max(g.max, st.max) });
    }
    for (const [name, st] of grouped) console.log(`#   ${name}: ${st.n} inputs, mean ${(st.ms / st.n).toFixed(2)} ms, max ${st.max.toFixed(1)} ms`);
    console.log(`#   slowest input ${slowest.ms.toFixed(1)} ms (${slowest.description})`);
    assert.ok(slowest.ms < PER_INPUT_MS, `slowest input took ${slowest.ms.toFixed(1)} ms: ${slowest.description}`);
  });
});
