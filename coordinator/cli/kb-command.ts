/**
 * `dockergate kb …`: questions to the knowledge base across every image and object it has seen.
 * Read-only. The embedded store by default (`--cache-dir`), the cluster's PostgreSQL with
 * `--database` or `$DATABASE_URL` and `--cluster`. Each prints text, or JSON with `--json`.
 */
import path from 'node:path';
import { type Command, Option } from 'commander';
import { parseRegistryReference } from '../../extractor/reference.js';
import { defaultCacheDir } from '../../infra/config.js';
import { InvalidInputError, NotFoundError } from '../../infra/errors.js';
import { type ExportSyscalls, type KnowledgeBase, symbolName } from '../../store/kb/index.js';
import { namesOf, PLATFORMS } from '../plan/platforms.js';

interface KbFlags {
  json?: boolean;
  cacheDir: string;
  cluster?: boolean;
  database?: string;
}

/** Opens the knowledge base the flags name; closed after `work`. */
async function withKb<T>(flags: KbFlags, work: (kb: KnowledgeBase) => Promise<T>): Promise<T> {
  let kb: KnowledgeBase;
  if (flags.cluster || flags.database) {
    const url = flags.database ?? process.env.DATABASE_URL;
    if (!url) throw new InvalidInputError('kb --cluster needs the knowledge base: --database <url> or $DATABASE_URL');
    kb = await (await import('../../store/kb/postgres.js')).openPostgresKnowledgeBase(url);
  } else {
    kb = await (await import('../../store/kb/sqlite.js')).openEmbeddedKnowledgeBase(path.join(flags.cacheDir, 'kb.sqlite'));
  }
  try {
    return await work(kb);
  } finally {
    await kb.close();
  }
}

const print = (flags: KbFlags, value: unknown, text: () => string): void => {
  process.stdout.write(flags.json ? `${JSON.stringify(value, null, 2)}\n` : text());
};

function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 10_000) throw new InvalidInputError(`${flag} must be an integer from 1 to 10000, not ${JSON.stringify(text)}`);
  return value;
}

/** A syscall name of some supported platform's table (a typo is an error, not an empty answer). */
function checkSyscallName(name: string): void {
  const known = Object.values(PLATFORMS).some((spec) => namesOf(spec.table).has(name));
  if (!known) throw new InvalidInputError(`${JSON.stringify(name)} is not a syscall of any supported platform`);
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

const short = (digest: string): string => digest.slice(0, 'sha256:'.length + 12);

function exportLine(entry: ExportSyscalls): string {
  const more = entry.indirect ? ' (+ what indirect calls reach in the loaded objects)' : '';
  return `    ${entry.symbol}: ${entry.syscalls.length} syscalls${more}: ${entry.syscalls.join(' ')}\n`;
}

export function registerKbCommands(program: Command): void {
  const kb = program.command('kb').description('query the knowledge base: libraries, syscalls, images, fleet statistics');
  const common = (command: Command): Command =>
    command
      .option('--json', 'print JSON')
      .option('--cache-dir <dir>', 'the embedded knowledge base of this cache dir', defaultCacheDir())
      .option('--cluster', 'the cluster\'s knowledge base ($DATABASE_URL)')
      .addOption(new Option('--database <url>', 'the cluster\'s PostgreSQL knowledge base (default $DATABASE_URL)'));

  common(
    kb
      .command('library')
      .description('a library by soname, path (its file name is taken as the soname) or sha256: the versions seen, and what each export reaches')
      .argument('<name>', 'e.g. libc.so.6, /usr/lib/x86_64-linux-gnu/libc.so.6, or a sha256')
      .option('--export <symbol>', 'only this export (e.g. getaddrinfo), in every version'),
  ).action((name: string, flags: KbFlags & { export?: string }) =>
    withKb(flags, async (store) => {
      const key = name.includes('/') ? path.posix.basename(name) : name.replace(/^sha256:/, '');
      const objects = await store.objectsNamed(key);
      if (objects.length === 0) throw new NotFoundError(`no object named ${JSON.stringify(key)} in the knowledge base (scan or crawl images that use it first)`);
      const versions = await Promise.all(
        objects.map(async (object) => {
          const exports = await store.exportsOf(object);
          const chosen = flags.export ? exports.filter((entry) => symbolName(entry.symbol) === symbolName(flags.export!) && (!flags.export!.includes('@') || entry.symbol === flags.export)) : exports;
          return { ...object, exportsMatching: chosen };
        }),
      );
      print(flags, { name: key, versions }, () => {
        let text = `${key}: ${objects.length} version${objects.length === 1 ? '' : 's'} seen\n`;
        for (const version of versions) {
          text += `  sha256:${version.sha256.slice(0, 12)} (${version.analyser} ${version.analyserVersion}, ${version.arch}, ${version.exports} exports${version.needed.length ? `, needs ${version.needed.join(' ')}` : ''})\n`;
          if (flags.export) {
            if (version.exportsMatching.length === 0) text += `    no export ${flags.export}\n`;
            for (const entry of version.exportsMatching) text += exportLine(entry);
          }
        }
        if (!flags.export) text += 'what one export reaches: --export <symbol>\n';
        return text;
      });
    }),
  );

  common(
    kb
      .command('syscall')
      .description('the tags whose current profile allows a syscall, and one witness each ("which images need ptrace?")')
      .argument('<name>', 'syscall name, e.g. ptrace')
      .option('--limit <n>', 'tags per page', '100')
      .option('--after <cursor>', 'the page after the one that printed this cursor'),
  ).action((name: string, flags: KbFlags & { limit: string; after?: string }) =>
    withKb(flags, async (store) => {
      checkSyscallName(name);
      const page = await store.tagsAllowing(name, { limit: positiveInteger(flags.limit, '--limit'), ...(flags.after ? { after: flags.after } : {}) });
      print(flags, { syscall: name, ...page }, () => {
        let text = page.items.length === 0 && !flags.after ? `no known tag allows ${name}\n` : '';
        for (const item of page.items) text += `${item.registry}/${item.repository}:${item.tag} (${short(item.manifestDigest)}, ${item.platform}): ${item.witness}\n`;
        if (page.next) text += `more: --after ${page.next}\n`;
        return text;
      });
    }),
  );

  common(kb.command('image').description('a tag\'s profile and its history of changes').argument('<ref>', 'registry/repository:tag')).action((text: string, flags: KbFlags) =>
    withKb(flags, async (store) => {
      const ref = parseRegistryReference(text);
      if (!ref.tag || ref.digest) throw new InvalidInputError(`${text}: kb image takes registry/repository:tag`);
      const tag = await store.getTag(ref.registry, ref.repository, ref.tag);
      if (!tag) throw new NotFoundError(`${text}: no such tag in the knowledge base (crawl its registry first)`);
      const history = await store.tagHistory(ref.registry, ref.repository, ref.tag);
      print(flags, { ...tag, history }, () => {
        let out = `${ref.registry}/${ref.repository}:${ref.tag} → ${tag.digest} (state ${tag.state}; checked ${tag.checkedAt}, changed ${tag.changedAt})\n`;
        if (tag.error) out += `  last scan failed: ${tag.error}\n`;
        for (const scan of tag.scans) out += `  ${scan.platform} ${short(scan.manifestDigest)}: ${scan.syscalls.length} syscalls\n`;
        out += `history (${history.length}):\n`;
        for (const change of history) {
          const moved = change.fromDigest ? `${short(change.fromDigest)} → ${short(change.toDigest)}` : `first seen at ${short(change.toDigest)}`;
          const syscalls = [...change.added.map((n) => `+${n}`), ...change.removed.map((n) => `-${n}`)];
          out += `  ${change.at}: ${moved}${syscalls.length ? `: ${syscalls.length > 16 ? `${syscalls.slice(0, 16).join(' ')} … (${syscalls.length})` : syscalls.join(' ')}` : ''}\n`;
        }
        return out;
      });
    }),
  );

  common(
    kb
      .command('diff')
      .description('the syscalls two profiles differ by, with the witness of each')
      .argument('<refA>', 'registry/repository:tag or registry/repository@sha256:…')
      .argument('<refB>', 'the same'),
  ).action((textA: string, textB: string, flags: KbFlags) =>
    withKb(flags, async (store) => {
      const [a, b] = [await profileDigestOf(store, textA), await profileDigestOf(store, textB)];
      const [before, after] = [await store.profileSyscalls(a.manifestDigest), await store.profileSyscalls(b.manifestDigest)];
      if (!before) throw new NotFoundError(`${textA}: no profile of ${a.manifestDigest} in the knowledge base`);
      if (!after) throw new NotFoundError(`${textB}: no profile of ${b.manifestDigest} in the knowledge base`);
      const added = [...after].filter(([name]) => !before.has(name)).map(([name, witness]) => ({ name, witness }));
      const removed = [...before].filter(([name]) => !after.has(name)).map(([name, witness]) => ({ name, witness }));
      print(flags, { from: a, to: b, added, removed }, () => {
        let out = `${textA} (${short(a.manifestDigest)}) → ${textB} (${short(b.manifestDigest)}): +${added.length} -${removed.length}\n`;
        for (const entry of added) out += `  + ${entry.name}: ${entry.witness}\n`;
        for (const entry of removed) out += `  - ${entry.name}: ${entry.witness}\n`;
        return out;
      });
    }),
  );

  common(kb.command('stats').description('fleet statistics: common and rare syscalls, largest profiles, fallbacks and why, failed analyses').option('--top <n>', 'entries per list', '10')).action(
    (flags: KbFlags & { top: string }) =>
      withKb(flags, async (store) => {
        const top = positiveInteger(flags.top, '--top');
        const stats = await store.fleetStats(top);
        print(flags, { ...stats, syscalls: { mostCommon: stats.syscalls.slice(0, top), leastCommon: stats.syscalls.slice(-top).reverse() } }, () => {
          const tagOf = (t: { registry: string; repository: string; tag: string }) => `${t.registry}/${t.repository}:${t.tag}`;
          let out = `${stats.tags} tags, ${stats.profiles} current profiles, ${stats.syscalls.length} distinct syscalls allowed\n`;
          out += `most common: ${stats.syscalls.slice(0, top).map((s) => `${s.name} (${s.profiles})`).join(', ')}\n`;
          out += `least common: ${stats.syscalls.slice(-top).reverse().map((s) => `${s.name} (${s.profiles})`).join(', ')}\n`;
          out += `largest profiles:\n${stats.largest.map((t) => `  ${tagOf(t)}: ${t.syscalls} syscalls${t.fallback ? ' (fallback)' : ''}\n`).join('')}`;
          out += `fallbacks (${stats.fallbacks.length} shown):\n${stats.fallbacks.map((t) => `  ${tagOf(t)}: ${t.reasons.map((r) => `${r.kind}: ${r.detail}`).join('; ').slice(0, 300)}\n`).join('')}`;
          out += `failed analyses (${stats.failedAnalysesTotal}):\n${stats.failedAnalyses.map((f) => `  sha256:${f.sha256.slice(0, 12)} (${f.analyser} ${f.analyserVersion}): ${f.code}: ${f.message.slice(0, 200)}\n`).join('')}`;
          return out;
        });
      }),
  );
}
