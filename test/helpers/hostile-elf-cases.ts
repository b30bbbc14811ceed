/**
 * Hostile images for the planner built around crafted ELF objects (test/helpers/elf-builder.ts):
 * dynamic sections, loaders and search paths an attacker controls.
 *
 * Every case states the attack and the safe behaviour. Two outcomes are safe:
 * - the program cannot start (a missing loader, a missing library): a `missing` decision, and no
 *   fallback — the kernel or ld.so would refuse it too;
 * - the analysis cannot follow (an object refused as malformed, a budget of infra/limits.ts
 *   reached): an `analysis-failed` or `limit` decision, and Docker's default profile instead.
 * Where the safe behaviour is "everything was followed", the last object of the chain needs a
 * library the image lacks (`libend.so`): the `missing` decision naming that object proves the
 * planner got there, and terminated.
 */
import type { EntrySpec } from './layers.js';
import { type HostileScanCase, layers } from './hostile-cases.js';
import { buildElf, buildLibrary, DT, type ElfSpec } from './elf-builder.js';

const EXECUTABLE = 0o755;
const LOADER = '/lib64/ld-linux-x86-64.so.2';
const MUSL_LOADER = '/lib/ld-musl-x86_64.so.1';
const LIB_DIR = '/usr/lib/x86_64-linux-gnu';
/** The library no image holds: needed by the last object of a chain, it names where the walk ended. */
const END = 'libend.so';
/** An LD_LIBRARY_PATH entry of 3925 bytes: 1300 `/..` (the root's `..` is the root), then the library directory. */
const CLIMB_TO_LIB_DIR = `${'/..'.repeat(1300)}${LIB_DIR}`;
/** A program 3.8 KB deep: /app, then 15 directories of 250 bytes. */
const DEEP_PROGRAM = `/app${`/${'o'.repeat(250)}`.repeat(15)}/prog`;
/** Depth of the chain of libraries each needing the next. */
const CHAIN = 250;
const KiB = 1024;
const MiB = 1024 * KiB;

/** glibc's loader, as a stub: an ET_DYN with an entry point (ld.so is run by the kernel). */
const loader = (path = LOADER): EntrySpec => ({ name: path.slice(1), content: buildElf({ type: 'dyn', entry: true, dynamic: true, soname: path.split('/').pop()! }), mode: EXECUTABLE });
/** The entrypoint program /app/prog: a dynamically linked executable using glibc's loader. */
const program = (spec: ElfSpec = {}, path = '/app/prog'): EntrySpec => ({ name: path.slice(1), content: buildElf({ interpreter: LOADER, ...spec }), mode: EXECUTABLE });
/** A shared library at `path` with DT_SONAME its file name. */
const library = (path: string, spec: ElfSpec = {}): EntrySpec => ({ name: path.slice(1), content: buildLibrary({ soname: path.split('/').pop()!, ...spec }), mode: 0o644 });
/** An image of `entries` in one layer, run as `/app/prog` unless `config` says otherwise. */
const image = async (entries: EntrySpec[], config: Record<string, unknown> = {}) => ({
  ...(await layers(entries)),
  config: { Entrypoint: ['/app/prog'], Env: ['PATH=/usr/bin:/bin'], ...config },
});
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** The `missing` decision for `name` needed by `by`. */
const missingNeeded = (name: string, by: string): RegExp => new RegExp(`^${escape(name)} needed by ${escape(by)} is not in the image$`);

/**
 * A program needing `fans` libraries, each needing `leaves` distinct libraries of its own; the
 * last leaf needs libend.so. `fans * leaves` distinct leaves (each a different soname, so
 * different bytes), each needed once.
 */
function fanOut(fans: number, leaves: number): EntrySpec[] {
  const leaf = (i: number, j: number): string => `libleaf${i}_${j}.so`;
  return [
    loader(),
    program({ needed: Array.from({ length: fans }, (_, i) => `libfan${i}.so`) }),
    ...Array.from({ length: fans }, (_, i) => library(`${LIB_DIR}/libfan${i}.so`, { needed: Array.from({ length: leaves }, (_, j) => leaf(i, j)) })),
    ...Array.from({ length: fans * leaves }, (_, k) => {
      const [i, j] = [Math.floor(k / leaves), k % leaves];
      return library(`${LIB_DIR}/${leaf(i, j)}`, k === fans * leaves - 1 ? { needed: [END] } : {});
    }),
  ];
}

/**
 * An /etc/ld.so.cache ("glibc-ld.so.cache1.1", glibc `elf/cache.c`) of `count` entries whose
 * string offsets are hostile: past the end of the file, 0, inside the entry table, into a 64 KiB
 * run of bytes without NUL; the last entry alone is sound (`name` → `path`).
 */
function hostileLdSoCache(count: number, name: string, path: string): Buffer {
  const header = Buffer.alloc(48);
  header.write('glibc-ld.so.cache1.1', 0, 'latin1');
  header.writeUInt32LE(count, 20);
  const table = Buffer.alloc(24 * count);
  const stringsAt = 48 + table.length;
  const good = Buffer.from(`${name}\0${path}\0`, 'latin1');
  const noNul = Buffer.alloc(64 * KiB, 0x41);
  const noNulAt = stringsAt + good.length;
  const offsets = [0xffff_ffff, 0, 48 + 5, noNulAt, noNulAt + noNul.length - 100, stringsAt + good.length + noNul.length + 1];
  for (let i = 0; i < count - 1; i++) {
    // Keys that name the sound entry's library, with values that cannot be read: the sound entry
    // (last) must still win, and every bad offset cost at most one bounded scan.
    table.writeUInt32LE(i % 2 === 0 ? stringsAt : offsets[i % offsets.length]!, i * 24 + 4);
    table.writeUInt32LE(offsets[(i >> 1) % offsets.length]!, i * 24 + 8);
  }
  table.writeUInt32LE(stringsAt, (count - 1) * 24 + 4);
  table.writeUInt32LE(stringsAt + name.length + 1, (count - 1) * 24 + 8);
  return Buffer.concat([header, table, good, noNul]);
}

export const ELF_SCAN_CASES: HostileScanCase[] = [
  {
    // 3001 DT_NEEDED entries (the dynamic table allows 4096): only maxNeededPerObject are looked
    // up, and the cut is a decision with the fallback.
    name: 'a program with 3001 DT_NEEDED entries',
    image: () => image([loader(), program({ needed: Array.from({ length: 3001 }, (_, i) => `libn${i}.so`) })]),
    decision: { kind: 'limit', detail: /^\/app\/prog has 3001 DT_NEEDED entries \(maxNeededPerObject 1024\); the first 1024 are loaded/ },
    fallback: true,
  },
  {
    // 100 DT_RUNPATH tags, 99 of them naming 1000 directories of nothing: ld.so keeps the last
    // entry of a tag (glibc `elf_get_dynamic_info`), so only the last one, /opt/lib, is searched —
    // not 99,001 directories (which would also be over budget).
    name: 'a DT_RUNPATH tag repeated 100 times: the last one is the search path',
    image: async () => {
      const junk = Array.from({ length: 1000 }, (_, i) => `/r${i % 10}`).join(':');
      const tags = [...Array.from({ length: 99 }, () => [DT.RUNPATH, junk] as const), [DT.RUNPATH, '/opt/lib'] as const];
      return image([loader(), program({ needed: ['libopt.so'], hostile: { extraDynamic: tags } }), library('/opt/lib/libopt.so', { needed: [END] })]);
    },
    decision: { kind: 'missing', detail: missingNeeded(END, '/opt/lib/libopt.so') },
    fallback: false,
  },
  {
    // The most search directories a well-formed dynamic table can name: 4090 DT_RPATH tags (the
    // table holds at most maxElfSections entries), each naming one string of 2048 one-byte
    // directories just under PATH_MAX: 8.4 million directories from a 70 KB file, had every tag
    // counted. The last tag is the search path (2048 directories): over maxSearchPathEntries,
    // so the first 256 are searched and the scan falls back.
    name: 'a DT_RPATH of 8.4 million directories in 4090 tags',
    image: async () => {
      const dirs = Array.from({ length: 2048 }, () => 'a').join(':');
      return image([loader(), program({ needed: ['libc.so.6'], hostile: { extraDynamic: Array.from({ length: 4090 }, () => [DT.RPATH, dirs] as const) } })]);
    },
    decision: { kind: 'limit', detail: /^DT_RPATH of \/app\/prog has 2048 entries \(maxSearchPathEntries 256\); the first 256 are searched/ },
    fallback: true,
  },
  {
    // A DT_RUNPATH of 100k directories, in one 790 KB string: facts must not carry a string past
    // PATH_MAX per entry, so the object is refused as malformed (its analysis fails: fallback).
    name: 'a DT_RUNPATH of 100k directories in one 790 KB string',
    image: () => image([loader(), program({ needed: ['libc.so.6'], runpath: Array.from({ length: 100_000 }, (_, i) => `/r${i}`).join(':') })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: dynamic entry \(tag 29\) names a string of 788889 bytes, longer than PATH_MAX \(4096\)/ },
    fallback: true,
  },
  {
    // 600 DT_NEEDED entries naming one 1 MiB string: 600 MiB of names if each were copied. The
    // object is refused at the first (longer than PATH_MAX): nothing of it reaches the facts or the
    // knowledge base, and the analysis failure falls back.
    name: '600 DT_NEEDED entries all naming one 1 MiB string',
    image: () => {
      const name = `lib${'x'.repeat(MiB - 6)}.so`;
      return image([loader(), program({ needed: Array.from({ length: 600 }, () => name) })]);
    },
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: dynamic entry \(tag 1\) names a string of 1048576 bytes, longer than PATH_MAX \(4096\)/ },
    fallback: true,
  },
  {
    // libA needs libB needs libA (and libB also needs libend.so): each object is loaded once, the
    // walk ends; all found but libend.so, so the program cannot start and there is no fallback.
    name: 'a DT_NEEDED cycle libA → libB → libA terminates',
    image: () => image([loader(), program({ needed: ['libA.so'] }), library(`${LIB_DIR}/libA.so`, { needed: ['libB.so'] }), library(`${LIB_DIR}/libB.so`, { needed: ['libA.so', END] })]),
    decision: { kind: 'missing', detail: missingNeeded(END, `${LIB_DIR}/libB.so`) },
    fallback: false,
  },
  {
    // A library that needs itself by its own soname, and the program needs it twice.
    name: 'a library whose DT_NEEDED names its own soname',
    image: () => image([loader(), program({ needed: ['libself.so', 'libself.so'] }), library(`${LIB_DIR}/libself.so`, { needed: ['libself.so', END] })]),
    decision: { kind: 'missing', detail: missingNeeded(END, `${LIB_DIR}/libself.so`) },
    fallback: false,
  },
  {
    // lib0 needs lib1 needs ... lib249: the walk is iterative (no recursion to overflow), analyses
    // one level at a time, and reaches the end of the chain. (500 levels: 5 s in process, 15-24 s
    // under strace on a loaded 2-CPU machine, too close to this suite's 20 s bound.)
    name: 'a 250-deep chain of libraries each needing the next',
    image: () =>
      image([
        loader(),
        program({ needed: ['libchain0.so'] }),
        ...Array.from({ length: CHAIN }, (_, i) => library(`${LIB_DIR}/libchain${i}.so`, { needed: [i < CHAIN - 1 ? `libchain${i + 1}.so` : END] })),
      ]),
    decision: { kind: 'missing', detail: missingNeeded(END, `${LIB_DIR}/libchain${CHAIN - 1}.so`) },
    fallback: false,
  },
  {
    // DT_NEEDED "../../etc/passwd" (a name with `/` is a path, relative to the working directory,
    // `/` here): it resolves in the image's tree, confined to its root — the image's /etc/passwd
    // (here an ELF library needing libend.so), never the host's (the isolation run checks that no
    // /etc/passwd is opened).
    name: 'DT_NEEDED ../../etc/passwd resolves inside the image only',
    image: () => image([loader(), program({ needed: ['../../etc/passwd'] }), library('/etc/passwd', { needed: [END] })]),
    decision: { kind: 'missing', detail: missingNeeded(END, '/../../etc/passwd') },
    fallback: false,
  },
  {
    // An absolute DT_NEEDED climbing above the root, onto a file that is not ELF in the image.
    name: 'DT_NEEDED /../../../etc/shadow is the image\'s file, which is not a library',
    image: () => image([loader(), program({ needed: ['/../../../etc/shadow'] }), { name: 'etc/shadow', content: 'root:*:19000:0:99999:7:::\n' }]),
    decision: { kind: 'missing', detail: missingNeeded('/../../../etc/shadow', '/app/prog') },
    fallback: false,
  },
  {
    // libloop.so → libloop2.so → libloop.so in the library directory, and /usr/lib64 (a default
    // directory) a symlink to itself: each lookup fails there as ld.so's open fails with ELOOP;
    // no hang, no throw, and the library is missing.
    name: 'a DT_NEEDED name reached through a symlink loop in the library directory',
    image: () =>
      image([
        loader(),
        program({ needed: ['libloop.so'] }),
        { name: `${LIB_DIR.slice(1)}/libloop.so`, type: 'symlink', linkname: 'libloop2.so' },
        { name: `${LIB_DIR.slice(1)}/libloop2.so`, type: 'symlink', linkname: `${LIB_DIR}/libloop.so` },
        { name: 'usr/lib64', type: 'symlink', linkname: '/usr/lib64' },
      ]),
    decision: { kind: 'missing', detail: missingNeeded('libloop.so', '/app/prog') },
    fallback: false,
  },
  {
    name: 'PT_INTERP naming a loader the image lacks',
    image: () => image([program({ interpreter: '/lib64/ld-missing.so.2' })]),
    decision: { kind: 'missing', detail: /^\/app\/prog needs the loader \/lib64\/ld-missing\.so\.2, which the image lacks: it cannot start$/ },
    fallback: false,
  },
  {
    // The kernel opens PT_INTERP and reads an ELF header from it: a directory is EISDIR.
    name: 'PT_INTERP naming a directory',
    image: () => image([program({ interpreter: '/lib64' }), { name: 'lib64/', type: 'directory' }]),
    decision: { kind: 'missing', detail: /^\/app\/prog needs the loader \/lib64, which the image lacks: it cannot start$/ },
    fallback: false,
  },
  {
    // binfmt_elf requires the interpreter to be ELF (a #! interpreter is not followed there).
    name: 'PT_INTERP naming a #! script',
    image: () => image([program({ interpreter: '/lib64/ld.sh' }), { name: 'lib64/ld.sh', content: '#!/bin/sh\nexec "$@"\n', mode: EXECUTABLE }, { name: 'bin/sh', content: buildElf(), mode: EXECUTABLE }]),
    decision: { kind: 'missing', detail: /^\/app\/prog needs the loader \/lib64\/ld\.sh, which the image lacks: it cannot start$/ },
    fallback: false,
  },
  {
    // The program is its own loader: it is analysed once, linked with itself as the loader, and
    // its DT_NEEDED are still followed; no loop.
    name: 'PT_INTERP naming the program itself',
    image: () => image([program({ type: 'dyn', interpreter: '/app/prog', needed: [END] })]),
    decision: { kind: 'missing', detail: missingNeeded(END, '/app/prog') },
    fallback: false,
  },
  {
    name: 'PT_INTERP naming a symlink loop',
    image: () => image([program(), { name: LOADER.slice(1), type: 'symlink', linkname: '/lib64/ld-loop' }, { name: 'lib64/ld-loop', type: 'symlink', linkname: LOADER }]),
    decision: { kind: 'missing', detail: /^\/app\/prog needs the loader \/lib64\/ld-linux-x86-64\.so\.2, which the image lacks: it cannot start$/ },
    fallback: false,
  },
  {
    // The kernel requires the PT_INTERP path to end in a NUL inside p_filesz; the reader refuses
    // the object, so its analysis fails and the scan falls back.
    name: 'a PT_INTERP path without its NUL',
    image: () => image([loader(), program({ hostile: { interpreterUnterminated: true } })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: PT_INTERP path is not NUL-terminated/ },
    fallback: true,
  },
  {
    // A 16 MiB PT_INTERP path: the kernel refuses an interpreter path longer than PATH_MAX
    // (binfmt_elf: ENOEXEC), and facts must not carry it (nor every decision naming the loader):
    // the object is refused as malformed, so its analysis fails and the scan falls back.
    name: 'a PT_INTERP path of 16 MiB',
    image: () => image([loader(), program({ interpreter: `/lib64/${'l'.repeat(16 * MiB)}` })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: PT_INTERP p_filesz 16777224 is above PATH_MAX \(4096\): the kernel refuses such an interpreter/ },
    fallback: true,
  },
  {
    // The entrypoint cut in the middle of its dynamic section: its PT_LOAD runs past the end.
    name: 'a truncated entrypoint ELF',
    image: () => {
      const whole = buildElf({ interpreter: LOADER, needed: ['libc.so.6', 'libm.so.6'], sections: false });
      return image([loader(), { name: 'app/prog', content: whole.subarray(0, 300), mode: EXECUTABLE }]);
    },
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: PT_LOAD 0: file range 0\+\d+ runs past the end of the file \(300 bytes\)/ },
    fallback: true,
  },
  {
    // DT_STRTAB at an address no PT_LOAD maps (past the end of the file): the names cannot be read.
    name: 'DT_STRTAB pointing outside the file',
    image: () => image([loader(), program({ needed: ['libc.so.6'], hostile: { strtabAddress: 0x7fff_0000 } })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: DT_STRTAB 0x7fff0000 is not mapped by any PT_LOAD/ },
    fallback: true,
  },
  {
    // DT_STRSZ of 1 TiB: nothing is allocated for it, the table is bounded by its segment.
    name: 'a DT_STRSZ of 1 TiB',
    image: () => image([loader(), program({ needed: ['libc.so.6'], hostile: { strsz: 2 ** 40 } })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: DT_STRSZ 1099511627776 runs past the segment holding DT_STRTAB/ },
    fallback: true,
  },
  {
    // A DT_NEEDED whose string offset lies past DT_STRSZ (inside the file, outside the table).
    name: 'a DT_NEEDED string offset past DT_STRSZ',
    image: () => image([loader(), program({ needed: ['libc.so.6'], hostile: { extraDynamic: [[DT.NEEDED, 0x10_0000]] } })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: dynamic string table: string offset 1048576 is outside the table \(\d+ bytes\)/ },
    fallback: true,
  },
  {
    // 5000 dynamic entries: a dynamic table is header data (real ones hold a few dozen); past
    // maxElfSections entries the reader stops with a limit, before the planner sees any name.
    name: 'a dynamic section of 5000 entries, past maxElfSections',
    image: () => image([loader(), program({ needed: Array.from({ length: 5000 }, (_, i) => `libd${i}.so`) })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: limit-exceeded: ELF dynamic entry count 4097 at file offset 0x[0-9a-f]+ exceeds limit maxElfSections \(4096\)/ },
    fallback: true,
  },
  {
    // The last string of .dynstr has no NUL (DT_STRSZ ends right after it), and DT_NEEDED names it:
    // the scan for its end stops at the table's end.
    name: 'a DT_NEEDED string without NUL at the end of DT_STRTAB',
    image: () => image([loader(), program({ needed: ['libc.so.6'], hostile: { unterminatedNeeded: 'libunterminated.so' } })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: invalid-input: ELF: dynamic string table: string at \d+ is not NUL-terminated/ },
    fallback: true,
  },
  {
    // e_phnum 65535 (PN_XNUM, without section headers to hold a real count): refused before
    // anything is allocated for it; Linux refuses more than 65536 / 56 program headers too.
    name: 'an ELF whose e_phnum claims 65535 program headers',
    image: () => image([loader(), program({ sections: false, hostile: { phnum: 65535 } })]),
    decision: { kind: 'analysis-failed', detail: /^\/app\/prog: limit-exceeded: ELF program header count 65535 at file offset 0x38 exceeds limit maxElfSections \(4096\)/ },
    fallback: true,
  },
  {
    // LD_LIBRARY_PATH of 256 entries (maxSearchPathEntries: not over budget), each about 4 KiB:
    // `/xxx…` of 4096 bytes (no candidate under it fits PATH_MAX: the loader cannot open one), and
    // 1300 `/..` climbing to the root then down to the library directory. The program needs 1000
    // libraries the image lacks, then libfound.so: 256k lookups in 4 KiB directories (each lookup
    // resolved every entry again: 28 s). Each directory is resolved once per image, and libfound.so
    // is found through the first `/..` entry, as ld.so would find it.
    name: 'an LD_LIBRARY_PATH of 256 entries each 4 KiB long',
    image: () =>
      image(
        [
          loader(),
          program({ needed: [...Array.from({ length: 1000 }, (_, i) => `libabsent${i}.so`), 'libfound.so'] }),
          library(`${LIB_DIR}/libfound.so`, { needed: [END] }),
        ],
        { Env: ['PATH=/bin', `LD_LIBRARY_PATH=${Array.from({ length: 256 }, (_, i) => (i % 2 === 0 ? `/${'x'.repeat(4095)}` : CLIMB_TO_LIB_DIR)).join(':')}`] },
      ),
    decision: { kind: 'missing', detail: missingNeeded(END, `${CLIMB_TO_LIB_DIR}/libfound.so`) },
    fallback: false,
  },
  {
    // DT_RPATH "$ORIGIN" × 585 (4095 bytes, one directory) in a program 3.8 KB deep: expanded, each
    // lookup's candidate would be 2.2 MB (and 1001 lookups 2.2 GB of strings). The loader cannot
    // open a path past PATH_MAX, so the expansion is measured first and never built.
    name: 'a DT_RPATH of $ORIGIN repeated 585 times, from a 3.8 KB deep directory',
    image: () =>
      image(
        [
          loader(),
          { ...program({ rpath: '$ORIGIN'.repeat(585), needed: [...Array.from({ length: 1000 }, (_, i) => `libabsent${i}.so`), 'libfound.so'] }), pax: { path: DEEP_PROGRAM.slice(1) } },
          library(`${LIB_DIR}/libfound.so`, { needed: [END] }),
        ],
        { Entrypoint: [DEEP_PROGRAM] },
      ),
    decision: { kind: 'missing', detail: missingNeeded(END, `${LIB_DIR}/libfound.so`) },
    fallback: false,
  },
  {
    // 1100 DT_NEEDED entries, each a distinct 4000-byte name (under PATH_MAX, so well-formed):
    // 4.4 MB of names in the facts, and 1024 lookups of 4 KB names. The first maxNeededPerObject
    // are looked up, and the cut is a decision.
    name: '1100 DT_NEEDED entries each a distinct 4000-byte name',
    image: () => image([loader(), program({ needed: Array.from({ length: 1100 }, (_, i) => `lib${i}`.padEnd(3997, 'n') + '.so') })]),
    decision: { kind: 'limit', detail: /^\/app\/prog has 1100 DT_NEEDED entries \(maxNeededPerObject 1024\); the first 1024 are loaded/ },
    fallback: true,
  },
  {
    // 200 distinct libraries, each needed once (the program needs 2, each of those 100 more):
    // each is analysed once, in batches, and the walk reaches the last (maxObjectsPerScan bounds
    // the objects of one scan: 3000 such libraries take 20-30 s in process and over a minute
    // under strace, past this suite's 20 s bound per case).
    name: '200 distinct libraries each needed once are all analysed',
    image: () => image(fanOut(2, 100)),
    decision: { kind: 'missing', detail: missingNeeded(END, `${LIB_DIR}/libleaf1_99.so`) },
    fallback: false,
  },
  {
    // The same fan-out with a budget of 50 objects: the scan stops analysing there and says so.
    name: 'a scan past maxObjectsPerScan stops analysing and falls back',
    image: () => image(fanOut(2, 100)),
    limits: { maxObjectsPerScan: 50 },
    decision: { kind: 'limit', detail: /more than 50 objects to analyse \(maxObjectsPerScan\)/ },
    fallback: true,
  },
  {
    // A 1.5 MiB /etc/ld.so.cache of 65536 entries (maxLdCacheEntries: all read) whose string
    // offsets point past the file, at 0, into the entry table and into 64 KiB without NUL; only the
    // last entry is sound, and maps libcached.so to a path climbing above the root.
    name: 'a big /etc/ld.so.cache with hostile string offsets',
    image: () =>
      image([
        loader(),
        program({ needed: ['libcached.so'] }),
        { name: 'etc/ld.so.cache', content: hostileLdSoCache(65_536, 'libcached.so', '/../../opt/cached/libcached.so') },
        library('/opt/cached/libcached.so', { needed: [END] }),
      ]),
    decision: { kind: 'missing', detail: missingNeeded(END, '/../../opt/cached/libcached.so') },
    fallback: false,
  },
  {
    // musl's loader reads /etc/ld-musl-x86_64.path (newline or colon separated): 100k entries, and
    // a musl program needing 1000 libraries the image lacks (10^8 lookups). The planner searches
    // the first maxSearchPathEntries and says so.
    name: 'an /etc/ld-musl-x86_64.path of 100k entries',
    image: () =>
      image([
        loader(MUSL_LOADER),
        program({ interpreter: MUSL_LOADER, needed: Array.from({ length: 1000 }, (_, i) => `libabsent${i}.so`) }),
        { name: 'etc/ld-musl-x86_64.path', content: Array.from({ length: 100_000 }, (_, i) => `/musl${i}`).join('\n') },
      ]),
    decision: { kind: 'limit', detail: /\/etc\/ld-musl-x86_64\.path has 100000 entries \(maxSearchPathEntries 256\)/ },
    fallback: true,
  },
];
