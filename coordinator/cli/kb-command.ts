/**
 * `dockergate kb …`: questions to the knowledge base across every image and object it has seen
 * (`coordinator/kb/queries.ts`), printed as text or, with `--json`, as the same JSON the HTTP API
 * of `dockergate serve` (also here) sends. Read-only. The embedded store by default (`--cache-dir`), the
 * cluster's PostgreSQL with `--cluster` (`$DATABASE_URL`) or `--database`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Command, Option } from 'commander';
import { defaultCacheDir } from '../../infra/config.js';
import { InvalidInputError, UsageError } from '../../infra/errors.js';
import { readNamedFile } from './files.js';
import type { ExportSyscalls, KnowledgeBase } from '../../store/kb/index.js';
/** The query modules (and the store's driver) load when a command runs, not when the CLI starts. */
const queries = () => import('../kb/queries.js');
const openQueryStore = async (flags: KbFlags): Promise<KnowledgeBase> => (await import('../kb/open.js')).openQueryStore(flags);

interface KbFlags {
  json?: boolean;
  cacheDir: string;
  cluster?: boolean;
  database?: string;
}

async function withKb(flags: KbFlags, work: (kb: KnowledgeBase) => Promise<void>): Promise<void> {
  const kb = await openQueryStore(flags);
  try {
    await work(kb);
  } finally {
    await kb.close();
  }
}

const print = (flags: KbFlags, value: unknown, text: () => string): void => {
  process.stdout.write(flags.json ? `${JSON.stringify(value, null, 2)}\n` : text());
};

const short = (digest: string): string => digest.slice(0, 'sha256:'.length + 12);
const tagName = (t: { registry: string; repository: string; tag: string }): string => `${t.registry}/${t.repository}:${t.tag}`;

function exportLine(entry: ExportSyscalls): string {
  const more = entry.indirect ? ' (+ what indirect calls reach in the loaded objects)' : '';
  return `    ${entry.symbol}: ${entry.syscalls.length} syscalls${more}: ${entry.syscalls.join(' ')}\n`;
}

function changeText(syscalls: string[]): string {
  return syscalls.length > 16 ? `${syscalls.slice(0, 16).join(' ')} … (${syscalls.length})` : syscalls.join(' ');
}

export function registerKbCommands(program: Command): void {
  const kb = program.command('kb').description('query the knowledge base: libraries, syscalls, images, fleet statistics');
  const common = (command: Command): Command =>
    command
      .option('--json', 'print JSON (what the HTTP API of dockergate serve sends)')
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
      const { libraryReport } = await queries();
      const report = await libraryReport(store, name, flags.export);
      print(flags, report, () => {
        let text = `${report.name}: ${report.versions.length} version${report.versions.length === 1 ? '' : 's'} seen\n`;
        for (const version of report.versions) {
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
      const { pageSize, syscallPage } = await queries();
      const page = await syscallPage(store, name, pageSize(flags.limit, 100, '--limit'), flags.after);
      print(flags, page, () => {
        let text = page.items.length === 0 && !flags.after ? `no known tag allows ${name}\n` : '';
        for (const item of page.items) text += `${tagName(item)} (${short(item.manifestDigest)}, ${item.platform}): ${item.witness}\n`;
        if (page.next) text += `more: --after ${page.next}\n`;
        return text;
      });
    }),
  );

  common(kb.command('image').description('a tag\'s profile and its history of changes').argument('<ref>', 'registry/repository:tag')).action((text: string, flags: KbFlags) =>
    withKb(flags, async (store) => {
      const { tagReport } = await queries();
      const tag = await tagReport(store, text);
      print(flags, tag, () => {
        let out = `${tagName(tag)} → ${tag.digest} (state ${tag.state}; checked ${tag.checkedAt}, changed ${tag.changedAt})\n`;
        if (tag.error) out += `  last scan failed: ${tag.error}\n`;
        for (const scan of tag.scans) out += `  ${scan.platform} ${short(scan.manifestDigest)}: ${scan.syscalls.length} syscalls\n`;
        out += `history (${tag.history.length}):\n`;
        for (const change of tag.history) {
          const moved = change.fromDigest ? `${short(change.fromDigest)} → ${short(change.toDigest)}` : `first seen at ${short(change.toDigest)}`;
          const syscalls = [...change.added.map((n) => `+${n}`), ...change.removed.map((n) => `-${n}`)];
          out += `  ${change.at}: ${moved}${syscalls.length ? `: ${changeText(syscalls)}` : ''}\n`;
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
      const { profileDiff } = await queries();
      const diff = await profileDiff(store, textA, textB);
      print(flags, diff, () => {
        let out = `${textA} (${short(diff.from.manifestDigest)}) → ${textB} (${short(diff.to.manifestDigest)}): +${diff.added.length} -${diff.removed.length}\n`;
        for (const entry of diff.added) out += `  + ${entry.name}: ${entry.witness}\n`;
        for (const entry of diff.removed) out += `  - ${entry.name}: ${entry.witness}\n`;
        return out;
      });
    }),
  );

  common(kb.command('stats').description('fleet statistics: common and rare syscalls, largest profiles, fallbacks and why, failed analyses').option('--top <n>', 'entries per list', '10')).action(
    (flags: KbFlags & { top: string }) =>
      withKb(flags, async (store) => {
        const { fleetReport, pageSize } = await queries();
        const stats = await fleetReport(store, pageSize(flags.top, 10, '--top'));
        print(flags, stats, () => {
          let out = `${stats.tags} tags, ${stats.profiles} current profiles, ${stats.syscalls.distinct} distinct syscalls allowed\n`;
          out += `most common: ${stats.syscalls.mostCommon.map((s) => `${s.name} (${s.profiles})`).join(', ')}\n`;
          out += `least common: ${stats.syscalls.leastCommon.map((s) => `${s.name} (${s.profiles})`).join(', ')}\n`;
          out += `largest profiles:\n${stats.largest.map((t) => `  ${tagName(t)}: ${t.syscalls} syscalls${t.fallback ? ' (fallback)' : ''}\n`).join('')}`;
          out += `fallbacks (${stats.fallbacks.length} shown):\n${stats.fallbacks.map((t) => `  ${tagName(t)}: ${t.reasons.map((r) => `${r.kind}: ${r.detail}`).join('; ').slice(0, 300)}\n`).join('')}`;
          out += `failed analyses (${stats.failedAnalysesTotal}):\n${stats.failedAnalyses.map((f) => `  sha256:${f.sha256.slice(0, 12)} (${f.analyser} ${f.analyserVersion}): ${f.code}: ${f.message.slice(0, 200)}\n`).join('')}`;
          return out;
        });
      }),
  );
}

interface ServeFlags {
  host: string;
  port: string;
  tokenFile?: string;
  cacheDir: string;
  cluster?: boolean;
  database?: string;
}

/** `dockergate serve`: the HTTP API of the knowledge base, until SIGTERM or SIGINT. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the knowledge base as a read-only HTTP JSON API (OpenAPI document at /openapi.json)')
    .option('--host <address>', 'address to listen on (beyond loopback a token is required)', '127.0.0.1')
    .option('--port <n>', 'port to listen on', '8088')
    .option('--token-file <file>', 'bearer token required of every /v1 request (default $DOCKERGATE_API_TOKEN)')
    .option('--cache-dir <dir>', 'the embedded knowledge base of this cache dir', defaultCacheDir())
    .option('--cluster', 'the cluster\'s knowledge base ($DATABASE_URL)')
    .addOption(new Option('--database <url>', 'the cluster\'s PostgreSQL knowledge base (default $DATABASE_URL)'))
    .action(async (flags: ServeFlags) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--port must be a port number, not ${JSON.stringify(flags.port)}`);
      const token = flags.tokenFile ? (await readNamedFile(flags.tokenFile, 'token file')).trim() : process.env.DOCKERGATE_API_TOKEN?.trim();
      if (flags.tokenFile && !token) throw new InvalidInputError(`--token-file ${flags.tokenFile} is empty`);
      const { isLoopbackHost, kbApiHandler } = await import('../kb/api.js');
      if (!isLoopbackHost(flags.host) && !token) throw new UsageError(`serving on ${flags.host} (beyond loopback) needs a bearer token: --token-file <file> or $DOCKERGATE_API_TOKEN`);
      const kb = await openQueryStore(flags);
      const server = http.createServer(kbApiHandler({ kb, ...(token ? { token } : {}) }));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, flags.host, resolve);
        });
        const { port: bound } = server.address() as AddressInfo;
        process.stderr.write(`dockergate serve: listening on http://${flags.host.includes(':') ? `[${flags.host}]` : flags.host}:${bound} (${token ? 'bearer token required' : 'no token: loopback only'}; OpenAPI at /openapi.json)\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve);
          process.once('SIGINT', resolve);
        });
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await kb.close();
      }
    });
}
