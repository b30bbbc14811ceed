/**
 * Go binaries: recognised by `.note.go.buildid`, `.go.buildinfo`, a pclntab section, a "Go" note in
 * a PT_NOTE segment, or the `\xff Go buildinf:` blob in writable data (what `debug/buildinfo`
 * searches for). The build ID comes from the note, the version from the buildinfo blob
 * (`src/debug/buildinfo/buildinfo.go`), the functions from the pclntab (`gopclntab.ts`), lazily.
 */
import * as C from './constants.js';
import type { ElfContext } from './context.js';
import { ElfFormatError } from './errors.js';
import { findPclntab, type Pclntab } from './gopclntab.js';
import { ByteReader, Cursor } from './reader.js';
import type { GoFunction, GoInfo, PclntabVersion } from './types.js';

const BUILDINFO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const BUILDINFO_HEADER = 32;
const MAX_VERSION = 256;
/** NT_GO_BUILD_ID: type 4, owner "Go" (`cmd/link/internal/ld/elf.go`). */
const NOTE_GO_BUILD_ID = 4;

class LazyGoInfo implements GoInfo {
  private table: Pclntab | undefined | null = null;

  constructor(
    private readonly ctx: ElfContext,
    readonly buildId: string | undefined,
    readonly version: string | undefined,
  ) {}

  private pclntab(): Pclntab | undefined {
    if (this.table === null) this.table = findPclntab(this.ctx);
    return this.table;
  }

  get functions(): readonly GoFunction[] {
    return this.pclntab()?.functions ?? [];
  }

  get pclntabVersion(): PclntabVersion | undefined {
    return this.pclntab()?.version;
  }

  toJSON(): object {
    return { buildId: this.buildId, version: this.version, pclntabVersion: this.pclntabVersion, functions: this.functions.length };
  }
}

export function detectGo(ctx: ElfContext): GoInfo | undefined {
  const byName = (n: string): boolean => ctx.sectionByName(n) !== undefined;
  const buildId = goBuildId(ctx);
  const buildinfo = findBuildInfo(ctx);
  const isGo = byName('.note.go.buildid') || byName('.go.buildinfo') || byName('.gopclntab') || byName('.data.rel.ro.gopclntab') || buildId !== undefined || buildinfo !== undefined;
  if (!isGo) return undefined;
  const version = buildinfo === undefined ? undefined : buildInfoVersion(ctx, buildinfo);
  return new LazyGoInfo(ctx, buildId, version);
}

/**
 * The Go build ID note: `.note.go.buildid` (malformed: `ElfFormatError`), else a "Go" type-4 note
 * in any PT_NOTE segment. Every binary is asked whether it is Go, so a malformed PT_NOTE (a corrupt
 * GNU property note in a C binary) is taken to hold no Go note rather than failing the question.
 */
function goBuildId(ctx: ElfContext): string | undefined {
  const section = ctx.sectionByName('.note.go.buildid');
  if (section && section.hasFileData) {
    const id = findNote(ctx.sectionData(section), section.addralign === 8 ? 8 : 4, 'Go', NOTE_GO_BUILD_ID);
    return id?.text(0, id.length);
  }
  for (const seg of ctx.segments) {
    if (seg.type !== C.PT_NOTE || seg.filesz === 0 || !ctx.file.has(seg.offset, seg.filesz)) continue;
    try {
      const id = findNote(ctx.file.sub(seg.offset, seg.filesz, 'PT_NOTE'), seg.align === 8 ? 8 : 4, 'Go', NOTE_GO_BUILD_ID);
      if (id) return id.text(0, id.length);
    } catch (err) {
      if (!(err instanceof ElfFormatError)) throw err;
    }
  }
  return undefined;
}

/** gABI "Note Section": namesz, descsz, type, name, desc, each padded to `align`. Each step moves >= 12 bytes. */
function findNote(r: ByteReader, align: number, owner: string, type: number): ByteReader | undefined {
  // Padding aligns positions (relative to the table start, itself aligned), not lengths.
  const pad = (n: number): number => Math.ceil(n / align) * align;
  let at = 0;
  while (at + 12 <= r.length) {
    const namesz = r.u32(at, 'note namesz');
    const descsz = r.u32(at + 4, 'note descsz');
    const noteType = r.u32(at + 8, 'note type');
    const name = at + 12;
    const desc = pad(name + namesz);
    r.need(name, namesz, 'note name');
    r.need(desc, descsz, 'note descriptor');
    const nameText = namesz > 0 ? r.text(name, name + namesz).replace(/\0+$/, '') : '';
    if (nameText === owner && noteType === type) return r.sub(desc, descsz, 'note descriptor');
    at = pad(desc + descsz);
  }
  return undefined;
}

interface BuildInfo {
  readonly r: ByteReader;
  readonly vaddr: number | undefined;
}

/** `.go.buildinfo`, else the first 16-aligned magic in a writable PT_LOAD's file bytes. */
function findBuildInfo(ctx: ElfContext): BuildInfo | undefined {
  const section = ctx.sectionByName('.go.buildinfo');
  if (section && section.hasFileData) {
    const r = ctx.sectionData(section);
    if (r.length >= BUILDINFO_HEADER && BUILDINFO_MAGIC.equals(r.bytes.subarray(0, BUILDINFO_MAGIC.length))) return { r, vaddr: section.addr };
    return undefined;
  }
  for (const seg of ctx.memory.loads) {
    if ((seg.flags & C.PF_W) === 0 || seg.filesz === 0) continue;
    const r = ctx.file.sub(seg.offset, seg.filesz, 'PT_LOAD');
    const buf = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
    for (let i = buf.indexOf(BUILDINFO_MAGIC); i >= 0; i = buf.indexOf(BUILDINFO_MAGIC, i + 1)) {
      if ((seg.vaddr + i) % 16 === 0 && r.has(i, BUILDINFO_HEADER)) return { r: r.from(i, '.go.buildinfo'), vaddr: seg.vaddr + i };
    }
  }
  return undefined;
}

/**
 * Header: 14-byte magic, pointer size, flags. Flag 2 (Go 1.18+): the version follows the header as
 * a uvarint-prefixed string. Otherwise two pointers to Go string headers {data, len}: version, then
 * module info. A version that does not read as `go…`/`devel…` is left undefined.
 */
function buildInfoVersion(ctx: ElfContext, b: BuildInfo): string | undefined {
  const r = b.r;
  const ptrSize = r.u8(14, 'buildinfo pointer size');
  const flags = r.u8(15, 'buildinfo flags');
  let version: string | undefined;
  if ((flags & 2) !== 0) {
    const c = new Cursor(r, BUILDINFO_HEADER);
    const length = c.uleb('buildinfo version length');
    if (length > MAX_VERSION || !r.has(c.pos, length)) return undefined;
    version = r.text(c.pos, c.pos + length);
  } else {
    if (ptrSize !== 4 && ptrSize !== 8) return undefined;
    const le = (flags & 1) === 0;
    const is64 = ptrSize === 8;
    const word = (bytes: Uint8Array | undefined): number | undefined => (bytes && bytes.length === ptrSize ? new ByteReader(bytes, le).word(0, is64) : undefined);
    const pointer = (vaddr: number): number | undefined => ctx.pointerAt(vaddr) ?? word(ctx.memory.read(vaddr, ptrSize));
    if (b.vaddr === undefined) return undefined;
    const header = pointer(b.vaddr + 16);
    if (header === undefined) return undefined;
    const data = pointer(header);
    const length = word(ctx.memory.read(header + ptrSize, ptrSize));
    if (data === undefined || length === undefined || length > MAX_VERSION) return undefined;
    const bytes = ctx.memory.read(data, length);
    if (!bytes) return undefined;
    version = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  }
  return /^(go|devel)/.test(version) ? version : undefined;
}
