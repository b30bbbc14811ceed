/**
 * The knowledge-base questions, as JSON values: one implementation for `dockergate kb …` (which
 * prints them as text or JSON) and for the HTTP API of `dockergate serve` (which sends them).
 * Bad arguments are `InvalidInputError`s, unknown names `NotFoundError`s.
 */
import path from 'node:path';
import { parseRegistryReference } from '../../extractor/reference.js';
import { InvalidInputError, NotFoundError } from '../../infra/errors.js';
import { type ExportSyscalls, type FleetStats, type KnowledgeBase, type KnownObject, type Page, type TagChange, type TagRecord, type TagWithSyscall, symbolName } from '../../store/kb/index.js';
import { checkSyscallName } from '../plan/platforms.js';

/** Page sizes and list lengths a caller may ask for. */
export const MAX_PAGE = 10_000;

export function pageSize(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(value) || value < 1 || value > MAX_PAGE) throw new InvalidInputError(`${what} must be an integer from 1 to ${MAX_PAGE}, not ${JSON.stringify(text)}`);
  return value;
}

export interface LibraryVersion extends KnownObject {
  /** The exports asked for (all of them without `export`). */
  readonly exportsMatching: readonly ExportSyscalls[];
}

/** A library by soname, path (its file name) or sha256: each version seen and what its exports reach. */
export async function libraryReport(kb: KnowledgeBase, name: string, exportName?: string): Promise<{ name: string; versions: LibraryVersion[] }> {
  if (!name) throw new InvalidInputError('a library name, path or sha256 is needed');
  const key = name.includes('/') ? path.posix.basename(name) : name.replace(/^sha256:/, '');
  const objects = await kb.objectsNamed(key);
  if (objects.length === 0) throw new NotFoundError(`no object named ${JSON.stringify(key)} in the knowledge base (scan or crawl images that use it first)`);
  const matches = (entry: ExportSyscalls): boolean =>
    exportName === undefined || (symbolName(entry.symbol) === symbolName(exportName) && (!exportName.includes('@') || entry.symbol === exportName));
  const versions = await Promise.all(objects.map(async (object) => ({ ...object, exportsMatching: (await kb.exportsOf(object)).filter(matches) })));
  return { name: key, versions };
}

/** The tags whose current profile allows `syscall`, one page. */
export async function syscallPage(kb: KnowledgeBase, syscall: string, limit: number, after?: string): Promise<{ syscall: string } & Page<TagWithSyscall>> {
  checkSyscallName(syscall);
  return { syscall, ...(await kb.tagsAllowing(syscall, { limit, ...(after ? { after } : {}) })) };
}

/** A tag's record and history. */
export async function tagReport(kb: KnowledgeBase, text: string): Promise<TagRecord & { history: TagChange[] }> {
  const ref = parseRegistryReference(text);
  if (ref.digest) throw new InvalidInputError(`${text}: expected registry/repository:tag, not a digest`);
  const tag = await kb.getTag(ref.registry, ref.repository, ref.tag!);
  if (!tag) throw new NotFoundError(`${text}: no such tag in the knowledge base (crawl its registry first)`);
  return { ...tag, history: await kb.tagHistory(ref.registry, ref.repository, ref.tag!) };
}

/** `registry/repo:tag` or `registry/repo@sha256:…` → the manifest digest of its profile. */
async function profileDigestOf(kb: KnowledgeBase, text: string): Promise<{ reference: string; manifestDigest: string }> {
  const ref = parseRegistryReference(text);
  if (ref.digest) return { reference: text, manifestDigest: ref.digest };
  const tag = await kb.getTag(ref.registry, ref.repository, ref.tag!);
  if (!tag) throw new NotFoundError(`${text}: no such tag in the knowledge base (crawl its registry first)`);
  const scan = tag.scans[0];
  if (!scan) throw new NotFoundError(`${text}: its last scan failed (${tag.error ?? 'no profile'})`);
  return { reference: text, manifestDigest: scan.manifestDigest };
}

export interface ProfileDiff {
  readonly from: { reference: string; manifestDigest: string };
  readonly to: { reference: string; manifestDigest: string };
  /** Allowed by `to` and not `from`, with `to`'s witness; and the reverse, with `from`'s. */
  readonly added: { name: string; witness: string }[];
  readonly removed: { name: string; witness: string }[];
}

export async function profileDiff(kb: KnowledgeBase, textA: string, textB: string): Promise<ProfileDiff> {
  const [from, to] = [await profileDigestOf(kb, textA), await profileDigestOf(kb, textB)];
  const [before, after] = [await kb.profileSyscalls(from.manifestDigest), await kb.profileSyscalls(to.manifestDigest)];
  if (!before) throw new NotFoundError(`${textA}: no profile of ${from.manifestDigest} in the knowledge base`);
  if (!after) throw new NotFoundError(`${textB}: no profile of ${to.manifestDigest} in the knowledge base`);
  return {
    from,
    to,
    added: [...after].filter(([name]) => !before.has(name)).map(([name, witness]) => ({ name, witness })),
    removed: [...before].filter(([name]) => !after.has(name)).map(([name, witness]) => ({ name, witness })),
  };
}

export type FleetReport = Omit<FleetStats, 'syscalls'> & {
  readonly syscalls: { readonly distinct: number; readonly mostCommon: FleetStats['syscalls']; readonly leastCommon: FleetStats['syscalls'] };
};

/** Fleet statistics with `top` entries per list. */
export async function fleetReport(kb: KnowledgeBase, top: number): Promise<FleetReport> {
  const stats = await kb.fleetStats(top);
  return { ...stats, syscalls: { distinct: stats.syscalls.length, mostCommon: stats.syscalls.slice(0, top), leastCommon: stats.syscalls.slice(-top).reverse() } };
}
