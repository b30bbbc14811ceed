/**
 * The `dockergate` command line. Each command is a thin shell over a coordinator function;
 * errors print one line naming their kind and exit non-zero.
 */
import { Command, CommanderError, Option } from 'commander';
import { formatPlatform, parsePlatformSpec } from '../../extractor/manifest.js';
import { checkSyscallName } from '../plan/platforms.js';
import type { DirImageConfig } from '../../extractor/source.js';
import { defaultCacheDir } from '../../infra/config.js';
import { type ClusterFlags, clusterConfig } from '../../infra/cluster-config.js';
import { DockergateError, fileError, InvalidInputError, NotFoundError, UsageError } from '../../infra/errors.js';
import { checkWritable, readJsonFile, writeNamedFile } from './files.js';
import { DEFAULT_LIMITS } from '../../infra/limits.js';
import { formatBytes, type Progress, progressFor, silentCountProgress, terminalCountProgress } from '../../infra/progress.js';
import { NO_TIMER, PhaseTimer } from '../../infra/timings.js';
import { embeddedRuntime } from '../runtime/embedded.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Scanner, TagCheckOptions } from '../crawl/crawl.js';
import { registerKbCommands, registerServeCommand } from './kb-command.js';
import { attachedText, attachScanResult, registerFetchProfile, registryReferenceOf } from './attach-command.js';
import { analysisState } from '../plan/analysis-state.js';
import type { Platform } from '../../extractor/types.js';
import { fileJson, type InspectOptions, type InspectResult, inspectImage } from '../plan/inspect.js';
import { type AnalyzedFile, analyzeFiles } from '../plan/analyze.js';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { buildDockerProfile, type DockerSeccompProfile, kubernetesName, kubernetesProfile } from '../output/policy.js';
import { diffText, dotGraph, explainText, reportText, scanDiff, scanReport } from '../output/report.js';
import { SCAN_GENERATOR_VERSION, type ScanResult, scanImage, storedScan } from '../plan/scan.js';
import { type ExportSummary, reachOf, symbolName } from '../../store/facts.js';
import { ANALYSERS, analyserNamed, DEFAULT_ANALYSER } from '../../worker/analysers.js';
import { type ScanImageDone, scanImageUnitId, UNIT_SCAN_IMAGE, UNIT_SCAN_IMAGE_BULK } from '../../worker/contracts.js';
import type { JetStreamBus } from '../../infra/jetstream-bus.js';
import type { HealthSource } from '../../infra/health.js';
import { spanSync, startTelemetry, type Telemetry, withSpan } from '../../infra/telemetry.js';
import { PACKAGE_VERSION } from '../../infra/versions.js';
import { roundTripCounters } from '../../infra/round-trips.js';
import type { ServiceLog } from '../../infra/log.js';
import { EXTRACTOR_VERSION } from '../../extractor/version.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface InspectFlags extends ImageFlags {
  json?: boolean;
  files?: boolean;
}

interface ImageFlags extends OutputFlags {
  platform: string;
  insecure?: boolean;
  cacheDir: string;
  dockerConfig?: string;
  entrypoint?: string;
  cmd?: string;
  env: string[];
  workdir?: string;
  user?: string;
}

interface OutputFlags {
  quiet?: boolean;
  timings?: boolean;
}

/** `--quiet` and `--timings`, for commands that do long work. */
function outputOptions(command: Command): Command {
  return command
    .option('-q, --quiet', 'no progress on stderr (errors are still printed)')
    .option('--timings', 'print where the time went, phase by phase, and the peak RSS on stderr at the end');
}

/** The progress display, and the phase timer `--timings` prints, of one command. */
function reporting(flags: OutputFlags): { progress: Progress; timer?: PhaseTimer } {
  return { progress: progressFor(flags), ...(flags.timings ? { timer: new PhaseTimer() } : {}) };
}

/** Prints the timings when they were asked for. */
function printTimings(timer: PhaseTimer | undefined): void {
  if (timer) process.stderr.write(timer.text());
}

/** Options every command that reads an image takes (sources, cache, and the config of dir: sources). */
function imageOptions(command: Command): Command {
  return outputOptions(command)
    .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image', 'linux/amd64')
    .option('--insecure', 'allow http and unverified TLS for non-loopback registries')
    .option('--cache-dir <dir>', 'CAS, layer records, knowledge base and finished scans', defaultCacheDir())
    .option('--docker-config <file>', 'registry credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
    .addOption(new Option('--entrypoint <json>', 'dir: sources: Entrypoint as a JSON array'))
    .addOption(new Option('--cmd <json>', 'dir: sources: Cmd as a JSON array'))
    .option('--env <NAME=value>', 'dir: sources: an environment variable (repeatable)', collect, [])
    .option('--workdir <dir>', 'dir: sources: WorkingDir')
    .option('--user <user>', 'dir: sources: User');
}

/** `--platform`'s value; a malformed one is a usage error. */
function platformFlag(value: string): Platform {
  try {
    return parsePlatformSpec(value);
  } catch (err) {
    throw new UsageError(`--platform: ${(err as Error).message}`);
  }
}

function sourceOptionsOf(flags: ImageFlags): InspectOptions['source'] {
  return {
    platform: platformFlag(flags.platform),
    insecure: Boolean(flags.insecure),
    ...(flags.dockerConfig ? { dockerConfigPath: flags.dockerConfig } : {}),
    dirConfig: dirConfigOf(flags),
  };
}

function buildProgram(telemetry: Telemetry): Command {
  const program = new Command('dockergate')
    .description('Static analysis of container images into tight seccomp profiles')
    .version(versionText(), '-V, --version', 'print the version and those of the extractor, analysers and generator')
    // Usage errors are printed by runProgram as one `dockergate: usage: …` line, not by commander.
    .configureOutput({ outputError: () => {} })
    .exitOverride();

  imageOptions(
    program
      .command('inspect')
      .description('read an image and print its config, layers and classified file tree')
      .argument('<ref>', 'docker://host/repo:tag, docker-daemon:name:tag, docker-archive:file.tar, oci:dir[:tag], dir:/rootfs')
      .option('--json', 'print JSON (config, layers, counts, entrypoint and every file)')
      .option('--files', 'also list every file in the text output'),
  )
    .action(async (ref: string, flags: InspectFlags) => {
      const runtime = embeddedRuntime(DEFAULT_LIMITS, flags.cacheDir);
      const { progress, timer } = reporting(flags);
      try {
        const result = await (timer ?? NO_TIMER).time('inspect', () => inspectImage(runtime, ref, { source: sourceOptionsOf(flags), progress }));
        if (flags.json) await writeInspectJson(result, process.stdout);
        else process.stdout.write(inspectText(result, Boolean(flags.files)));
      } finally {
        await runtime.close();
        printTimings(timer);
      }
    });

  const scanCommand = (name: string, description: string) =>
    clusterOptions(
      analyserOption(
        imageOptions(program.command(name).description(description))
          .option('--strict', 'fail when the analysis is unsure instead of applying the documented fallback')
          .option('--cluster', 'submit the scan to the cluster\'s coordinators (NATS, S3, PostgreSQL) and wait for it'),
      ),
    );

  scanCommand('scan', 'write the seccomp profile that allows what the image entrypoint can reach')
    .argument('<ref>', 'image reference (as for inspect)')
    .option('-o, --output <file>', 'Docker/OCI seccomp profile (JSON)', 'profile.json')
    .option('--k8s <file>', 'also write a Kubernetes SeccompProfile (security-profiles-operator) YAML')
    .option('--report <file>', 'also write the JSON report (witness path per syscall, decisions)')
    .option('--graph <file>', 'also write a DOT graph of programs and libraries')
    .addOption(new Option('--errno <errno>', 'errno of denied syscalls').choices(['EPERM', 'ENOSYS']).default('EPERM'))
    .option('--attach', 'also push the profile to the registry as an OCI artifact whose subject is the scanned manifest (docker:// images)')
    .option('--json', 'print the report (as --report writes it) on stdout instead of the summary')
    .action(async (ref: string, flags: ScanFlags & { output: string; k8s?: string; report?: string; graph?: string; errno: 'EPERM' | 'ENOSYS'; attach?: boolean; json?: boolean }) => {
      if (flags.attach) registryReferenceOf(ref, 'scan --attach');
      const outputs: [string | undefined, string][] = [[flags.output, 'output'], [flags.k8s, 'Kubernetes profile'], [flags.report, 'report'], [flags.graph, 'graph']];
      for (const [file, what] of outputs) if (file) await checkWritable(file, what);
      await withScan(ref, flags, async (result) => {
        const { profile, dropped } = spanSync('policy', { 'dockergate.syscalls': result.syscalls.size }, () =>
          buildDockerProfile(result.syscalls.keys(), result.platform, { errno: flags.errno }),
        );
        const profileJson = `${JSON.stringify(profile, null, 2)}\n`;
        await writeNamedFile(flags.output, profileJson, 'output');
        if (flags.k8s) await writeNamedFile(flags.k8s, kubernetesProfile(profile, kubernetesName(result.reference)), 'Kubernetes profile');
        if (flags.attach) {
          const attached = await attachScanResult(ref, result, profileJson, kubernetesProfile(profile, kubernetesName(result.reference)), analyserNamed(flags.analyser), flags);
          process.stdout.write(attachedText(ref, result, attached));
        }
        const reportJson = flags.report || flags.json ? `${JSON.stringify(scanReport(result), null, 2)}\n` : '';
        if (flags.report) await writeNamedFile(flags.report, reportJson, 'report');
        if (flags.graph) await writeNamedFile(flags.graph, dotGraph(result), 'graph');
        if (flags.json) {
          process.stdout.write(reportJson);
          return;
        }
        process.stdout.write(reportText(result));
        if (dropped.length > 0) process.stdout.write(`not in the ${result.platform.architecture} syscall table, left out: ${dropped.join(' ')}\n`);
        process.stdout.write(`wrote ${flags.output}${flags.k8s ? `, ${flags.k8s}` : ''}${flags.report ? `, ${flags.report}` : ''}${flags.graph ? `, ${flags.graph}` : ''}\n`);
      });
    });

  scanCommand('attach', 'scan an image (or reuse its current scan) and push the profile next to it as an OCI artifact')
    .argument('<ref>', 'docker://host/repo:tag')
    .option('--json', 'print {reference, subject, artifact, via, tag} as JSON')
    .action(async (ref: string, flags: ScanFlags & { json?: boolean }) => {
      registryReferenceOf(ref, 'attach');
      await withScan(ref, flags, async (result) => {
        const profile = buildDockerProfile(result.syscalls.keys(), result.platform).profile;
        const attached = await attachScanResult(ref, result, `${JSON.stringify(profile, null, 2)}\n`, kubernetesProfile(profile, kubernetesName(result.reference)), analyserNamed(flags.analyser), flags);
        process.stdout.write(flags.json ? `${JSON.stringify({ reference: ref, subject: result.manifestDigest, ...attached }, null, 2)}\n` : attachedText(ref, result, attached));
      });
    });

  registerFetchProfile(program);

  scanCommand('explain', 'show why a syscall is allowed: one chain from the entrypoint to the syscall')
    .argument('<ref>', 'image reference')
    .argument('<syscall>', 'syscall name, e.g. openat')
    .option('--json', 'print {reference, syscall, allowed, origin, witness} as JSON (witness outermost first)')
    .action(async (ref: string, syscall: string, flags: ScanFlags & { json?: boolean }) => {
      checkSyscallName(syscall, platformFlag(flags.platform));
      await withScan(ref, flags, async (result) => {
        const witness = result.syscalls.get(syscall);
        const json = { reference: result.reference, syscall, allowed: witness !== undefined, ...(witness ? { origin: result.origins[syscall], witness } : {}) };
        process.stdout.write(flags.json ? `${JSON.stringify(json, null, 2)}\n` : explainText(result, syscall));
      });
    });

  scanCommand('diff', 'compare the syscalls two images need, and why')
    .argument('<refA>', 'the old image')
    .argument('<refB>', 'the new image')
    .option('--json', 'print {from, to, programs, objects, added, removed} as JSON (each witness outermost first)')
    .action(async (refA: string, refB: string, flags: ScanFlags & { json?: boolean }) => {
      await withScan(refA, flags, async (before) => {
        await withScan(refB, flags, async (after) => {
          process.stdout.write(flags.json ? `${JSON.stringify(scanDiff(before, after), null, 2)}\n` : diffText(before, after));
        });
      });
    });

  tagCheckOptions(
    program
      .command('crawl')
      .description('profile every tag of a registry; tags already profiled in the current analysis state are only checked (one HEAD each)')
      .argument('<registry>', 'registry host[:port], e.g. 127.0.0.1:5000')
      .option('--repo <glob>', 'only repositories matching this glob (e.g. "team/*")')
      .option('--tag <glob>', 'only tags matching this glob (e.g. "v1.*")'),
  ).action(runCrawl);

  registerKbCommands(program);
  registerServeCommand(program);

  tagCheckOptions(
    program
      .command('rescan')
      .description('the nightly job: check every tag earlier crawls found, scan only new digests, and report what changed')
      .argument('[registry...]', 'registries to rescan (default: every registry with known tags)')
      .option('--webhook <url>', 'also POST the JSON summary to this URL (http(s); a failed delivery is an error)'),
  ).action(runRescan);

  processOptions(
    program
      .command('worker')
      .description('cluster mode: run work units from NATS JetStream until SIGTERM')
      .option('--roles <list>', 'comma-separated roles: extract, analyse', 'extract,analyse')
      .option('--concurrency <n>', 'units of each role run at once (default: the number of cores)'),
  ).action(async (flags: ClusterFlags & HealthFlags & { roles: string; concurrency?: string }) => {
    const { startWorker, WORKER_ROLES, log } = await import('../../worker/serve.js');
    const roles = flags.roles.split(',').map((role) => role.trim());
    const unknown = roles.filter((role) => !(WORKER_ROLES as readonly string[]).includes(role));
    if (unknown.length > 0 || roles.length === 0) throw new UsageError(`--roles: unknown role ${unknown.join(', ')} (roles: ${WORKER_ROLES.join(', ')})`);
    const concurrency = flags.concurrency === undefined ? undefined : positiveInteger(flags.concurrency, '--concurrency');
    const worker = await startWorker(clusterConfig(flags), DEFAULT_LIMITS, { roles: roles as typeof WORKER_ROLES[number][], ...(concurrency ? { concurrency } : {}) });
    const health = await serveHealth(log, flags, telemetry, worker.services.bus, () => worker.metrics(), () => ({ dockergate_objects_analysing: worker.analysing() }));
    log(`${roles.join(', ')}, ${concurrency ?? 'one unit per core'}; waiting for units`);
    await untilSignalled();
    health.stopping();
    log('stopping (finishing running units)');
    await worker.stop();
    await health.close();
    log(`stopped after ${worker.counters.analysed} analyses (${worker.counters.failed} failed)`);
  });

  processOptions(
    program
      .command('coordinator')
      .description('cluster mode: plan the scans submitted with scan --cluster, until SIGTERM')
      .option('--concurrency <n>', 'scans planned at once', '2'),
  ).action(async (flags: ClusterFlags & HealthFlags & { concurrency: string }) => {
    const concurrency = positiveInteger(flags.concurrency, '--concurrency');
    const { startCoordinator, log } = await import('./serve.js');
    const coordinator = await startCoordinator(clusterConfig(flags), DEFAULT_LIMITS, { concurrency });
    const health = await serveHealth(log, flags, telemetry, coordinator.services.bus, () => ({}));
    log(`up to ${concurrency} scans at once; waiting for scans`);
    await untilSignalled();
    health.stopping();
    log('stopping (finishing running scans)');
    await coordinator.stop();
    await health.close();
  });

  program
    .command('verify')
    .description('run an image of the local Docker daemon under a profile and check it still works')
    .argument('<image>', 'local image name (docker-daemon:name:tag or name:tag)')
    .requiredOption('--profile <file>', 'the seccomp profile (Docker JSON)')
    .option('--smoke <command>', 'a smoke test run in a sidecar container sharing the network, e.g. "curl -f localhost:8080"')
    .option('--network <none|host>', 'network of the tested container', 'none')
    .option('--oneshot', 'the image runs to completion: it must exit 0 (default: judged by what it does, see below)')
    .option('--service', 'the image is a service: it must stay up past the settle time (default with --smoke)')
    .option('--timeout <seconds>', 'budget for start, settle and smoke test', '60')
    .option('--json', 'print {image, profile, mode, passed, exitCode, reason, smoke, logs} as JSON (exit status as without it)')
    .addHelpText('after', '\nWithout --oneshot or --service, a container that exits within the settle time (3 s) is judged as a\ncommand (it must exit 0), one still running then as a service (it must stay up; --smoke then runs).')
    .action(async (image: string, flags: { profile: string; smoke?: string; network: string; oneshot?: boolean; service?: boolean; timeout: string; json?: boolean }) => {
      if (flags.network !== 'none' && flags.network !== 'host') throw new UsageError(`--network must be none or host, not ${JSON.stringify(flags.network)}`);
      if (flags.oneshot && (flags.service || flags.smoke)) throw new UsageError('--oneshot cannot be combined with --service or --smoke');
      const timeoutSeconds = Number(flags.timeout);
      if (!(Number.isFinite(timeoutSeconds) && timeoutSeconds > 0)) throw new UsageError(`--timeout must be a positive number of seconds, not ${JSON.stringify(flags.timeout)}`);
      const profile = seccompProfileOf(await readJsonFile(flags.profile, 'profile'), flags.profile);
      const { verifyImage } = await import('./verify.js');
      const mode = flags.oneshot ? 'oneshot' : flags.service || flags.smoke ? 'service' : 'auto';
      const result = await verifyImage(image.replace(/^docker-daemon:/, ''), profile, {
        ...(flags.smoke ? { smoke: ['/bin/sh', '-c', flags.smoke] } : {}),
        network: flags.network,
        mode,
        timeoutMs: timeoutSeconds * 1000,
      });
      if (!result.passed) process.exitCode = 1;
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ image, profile: flags.profile, mode, ...result }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${result.passed ? 'PASS' : 'FAIL'}${result.reason ? `: ${result.reason}` : ''}\n`);
      if (result.smoke) process.stdout.write(`smoke exit ${result.smoke.exitCode}\n${result.smoke.output}\n`);
      if (!result.passed) process.stdout.write(`container logs:\n${result.logs}\n`);
    });

  analyserOption(
    outputOptions(program
      .command('analyze'))
      .description('analyse ELF files: syscalls reachable from each export, the entry point and initialisers')
      .argument('<file...>', 'ELF executables or shared libraries')
      .option('--json', 'print the full facts as JSON')
      .option('--export <name>', 'show only this export (any version)')
      .option('--cache-dir <dir>', 'CAS and knowledge base', defaultCacheDir()),
  )
    .action(async (files: string[], flags: OutputFlags & { json?: boolean; export?: string; cacheDir: string; analyser: string }) => {
      const runtime = embeddedRuntime(DEFAULT_LIMITS, flags.cacheDir, { analyser: analyserNamed(flags.analyser) });
      const { progress, timer } = reporting(flags);
      try {
        const results = await (timer ?? NO_TIMER).time('analysis', () => analyzeFiles(runtime, files, progress));
        const selected = results.map((result) => ({
          ...result,
          ...(result.facts && flags.export ? { facts: { ...result.facts, exports: result.facts.exports.filter((e) => symbolName(e.symbol) === flags.export) } } : {}),
        }));
        const analysed = selected.filter((result) => result.facts);
        process.stdout.write(flags.json ? `${JSON.stringify(selected, null, 2)}\n` : analysed.map((r) => analyzeText(r, flags.export)).join('\n'));
        // Failures are errors: one line each on stderr (in --json they are also in the document).
        for (const { path: file, failure } of selected) if (failure) process.stderr.write(`dockergate: ${failure.code}: ${file}: ${failure.message}\n`);
        const withoutExport = flags.export ? analysed.filter((result) => result.facts!.exports.length === 0) : [];
        for (const { path: file } of withoutExport) process.stderr.write(`dockergate: not-found: ${file} has no export named ${flags.export}\n`);
        if (results.some((result) => result.failure) || withoutExport.length > 0) process.exitCode = 1;
      } finally {
        await runtime.close();
        printTimings(timer);
      }
    });

  return program;
}


interface ScanFlags extends ImageFlags, ClusterFlags {
  strict?: boolean;
  analyser: string;
  cluster?: boolean;
}

/** Where cluster services are: flags over the environment (infra/cluster-config.ts). */
function clusterOptions(command: Command): Command {
  return command
    .option('--nats <url>', 'cluster: NATS server with JetStream (default $NATS_URL)')
    .option('--database <url>', 'cluster: PostgreSQL knowledge base (default $DATABASE_URL)')
    .option('--s3-endpoint <url>', 'cluster: S3-compatible endpoint (default $S3_ENDPOINT)')
    .option('--s3-bucket <name>', 'cluster: bucket of the CAS (default $S3_BUCKET)');
}

/** Options of crawl and rescan. */
function tagCheckOptions(command: Command): Command {
  return clusterOptions(
    analyserOption(
      command
        .option('--platform <os/arch[/variant]>', 'platform to scan from multi-platform images', 'linux/amd64')
        .option('--all-platforms', 'scan every platform of a multi-platform image, each its own scan')
        .option('--concurrency <n>', 'tags resolved and scanned at once', '4')
        .option('--json', 'print the summary as JSON (counts, registry requests, changes, failures)')
        .option('-q, --quiet', 'no progress bar on stderr')
        .option('--strict', 'fail scans that are unsure instead of applying the documented fallback')
        .option('--cluster', 'run the scans on the cluster\'s coordinators (NATS, S3, PostgreSQL)')
        .option('--insecure', 'allow http and unverified TLS for a non-loopback registry')
        .option('--cache-dir <dir>', 'CAS, layer records, knowledge base and finished scans', defaultCacheDir())
        .option('--docker-config <file>', 'registry credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
        .option('--out-dir <dir>', 'also write each profiled tag\'s profile.json and Kubernetes profile.yaml under <dir>/<registry>/<repository>/<tag>/'),
    ),
  );
}

function analyserOption(command: Command): Command {
  return command.addOption(
    new Option('--analyser <name>', 'which analyser reads code: native, or radare2 (needs radare2 installed)').choices([...ANALYSERS.keys()]).default(DEFAULT_ANALYSER.name),
  );
}

/** Runs a scan (in an embedded runtime, or with `--cluster` on the cluster's workers) and hands the result to `use`. */
async function withScan(ref: string, flags: ScanFlags, use: (result: ScanResult) => Promise<void>): Promise<void> {
  const analyser = analyserNamed(flags.analyser);
  if (flags.cluster) return use(await clusterScan(ref, flags, analyser));
  const runtime = embeddedRuntime(DEFAULT_LIMITS, flags.cacheDir, { analyser });
  const { progress, timer } = reporting(flags);
  try {
    const result = await scanImage(runtime, ref, { source: sourceOptionsOf(flags), progress, strict: Boolean(flags.strict), ...(timer ? { timer } : {}) });
    await (timer ?? NO_TIMER).time('output', () => use(result));
  } finally {
    await runtime.close();
    printTimings(timer);
  }
}

/** Submits the scan to the cluster's coordinators, waits for it, and reads the stored result. */
async function clusterScan(ref: string, flags: ScanFlags, analyser: ReturnType<typeof analyserNamed>): Promise<ScanResult> {
  const runtime = await openClusterRuntime(flags, analyser);
  try {
    return await clusterScanOn(runtime, clusterConfig(flags).prefix, ref, sourceOptionsOf(flags), Boolean(flags.strict));
  } finally {
    await runtime.close();
  }
}

async function openClusterRuntime(flags: ClusterFlags, analyser: ReturnType<typeof analyserNamed>): Promise<Runtime> {
  // Cluster code (NATS, the AWS SDK) loads only when asked for: embedded commands start faster.
  const [{ connectCluster }, { clusterRuntime }] = await Promise.all([import('../../store/cluster-services.js'), import('../runtime/cluster.js')]);
  return clusterRuntime(DEFAULT_LIMITS, await connectCluster(clusterConfig(flags)), { analyser });
}

/**
 * One scan unit for the cluster's coordinators on an open cluster runtime; the stored result.
 * `kind`: interactive (`scan-image`) or bulk (`scan-image-bulk`, crawls), two separate queues.
 */
async function clusterScanOn(runtime: Runtime, prefix: string, ref: string, source: InspectOptions['source'], strict: boolean, kind = UNIT_SCAN_IMAGE): Promise<ScanResult> {
  const analyser = runtime.analyser;
  const unit = { reference: ref, source, strict, analyser: analyser.name, analyserVersion: analyser.version };
  const waiting = setTimeout(() => process.stderr.write(`dockergate: waiting for a coordinator of cluster ${prefix} (dockergate coordinator)\n`), 10_000);
  let done: ScanImageDone;
  try {
    done = await withSpan('scan request', { 'dockergate.reference': ref }, () =>
      runtime.bus.request<typeof unit, ScanImageDone>(kind, scanImageUnitId(unit, randomUUID()), unit),
    );
  } finally {
    clearTimeout(waiting);
  }
  const result = await storedScan(runtime, done.key, done.reference);
  if (!result) throw new NotFoundError(`the coordinator finished scan ${done.key}, but the knowledge base has no such scan`);
  return { ...result, analysed: { ...result.analysed, fresh: done.fresh } };
}

interface TagCheckFlags extends ClusterFlags {
  quiet?: boolean;
  platform: string;
  allPlatforms?: boolean;
  concurrency: string;
  json?: boolean;
  strict?: boolean;
  analyser: string;
  cluster?: boolean;
  insecure?: boolean;
  cacheDir: string;
  dockerConfig?: string;
  outDir?: string;
}

interface CrawlFlags extends TagCheckFlags {
  repo?: string;
  tag?: string;
}

interface RescanFlags extends TagCheckFlags {
  webhook?: string;
}

function checkRegistryArgument(registry: string): void {
  if (/[/@]|^[a-z]+:\/\//.test(registry)) throw new UsageError(`expected a registry host[:port] (e.g. 127.0.0.1:5000), not ${JSON.stringify(registry)}`);
}

/** `crawl`: every tag of a registry, scanned embedded or on the cluster, only what is not current. */
function runCrawl(registry: string, flags: CrawlFlags): Promise<void> {
  checkRegistryArgument(registry);
  return withTagChecks(flags, async (options) => {
    const [{ crawlRegistry }, { crawlSummaryText }] = await Promise.all([import('../crawl/crawl.js'), import('../crawl/summary-text.js')]);
    const summary = await crawlRegistry({ ...options, registry, ...(flags.repo ? { repositories: flags.repo } : {}), ...(flags.tag ? { tags: flags.tag } : {}) });
    process.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : crawlSummaryText(summary));
    // Some tags failing is the crawl's result (listed above); nothing crawled at all is an error.
    if (summary.tags > 0 && summary.failed >= summary.tags) process.exitCode = 1;
  });
}

/** `rescan`: every known tag of the registries (all known when none is named) checked again. */
async function runRescan(registries: string[], flags: RescanFlags): Promise<void> {
  registries.forEach(checkRegistryArgument);
  // A malformed --webhook is a usage error before anything is opened.
  const { postWebhook, webhookUrl } = await import('../crawl/webhook.js');
  const webhook = flags.webhook ? webhookUrl(flags.webhook) : undefined;
  return withTagChecks(flags, async (options) => {
    const [{ rescanRegistries }, { crawlSummaryText }] = await Promise.all([import('../crawl/crawl.js'), import('../crawl/summary-text.js')]);
    const summary = await rescanRegistries(options, registries);
    process.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : crawlSummaryText(summary));
    if (webhook) await postWebhook(webhook, summary);
    if (summary.tags > 0 && summary.failed >= summary.tags) process.exitCode = 1;
  });
}

/** The options of crawl and rescan, on an embedded or cluster runtime closed afterwards. */
async function withTagChecks(flags: TagCheckFlags, work: (options: TagCheckOptions) => Promise<void>): Promise<void> {
  const concurrency = Number(flags.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a positive integer, not ${JSON.stringify(flags.concurrency)}`);
  const analyser = analyserNamed(flags.analyser);
  const strict = Boolean(flags.strict);
  const runtime = flags.cluster ? await openClusterRuntime(flags, analyser) : embeddedRuntime(DEFAULT_LIMITS, flags.cacheDir, { analyser });
  const bar = flags.quiet ? silentCountProgress : terminalCountProgress('tags');
  try {
    const sourceOf = (platform: Platform): InspectOptions['source'] => ({ platform, insecure: Boolean(flags.insecure), ...(flags.dockerConfig ? { dockerConfigPath: flags.dockerConfig } : {}) });
    const scan: Scanner = flags.cluster
      ? (reference, platform) => clusterScanOn(runtime, clusterConfig(flags).prefix, reference, sourceOf(platform), strict, UNIT_SCAN_IMAGE_BULK)
      : (reference, platform) => scanImage(runtime, reference, { source: sourceOf(platform), strict });
    await work({
      platform: platformFlag(flags.platform),
      allPlatforms: Boolean(flags.allPlatforms),
      concurrency,
      insecure: Boolean(flags.insecure),
      ...(flags.dockerConfig ? { dockerConfigPath: flags.dockerConfig } : {}),
      limits: DEFAULT_LIMITS,
      state: analysisState(analyser, { strict }),
      kb: await runtime.kb(),
      scan,
      ...(flags.outDir ? { outDir: flags.outDir } : {}),
      progress: {
        start: (tags) => bar.start(tags),
        tagDone: (_reference, _outcome, counts) => bar.advance(`${counts.scanned} scanned, ${counts.skipped} current, ${counts.failed} failed`),
        stop: () => bar.stop(),
      },
    });
  } finally {
    await runtime.close();
  }
}

interface HealthFlags {
  healthPort?: string;
  healthAddress: string;
}

/** `--health-port`: /healthz, /readyz and /metrics of a cluster process (infra/health.ts); off without it. */
/** The process's counters on `/metrics` (with `--health-port`) and as OpenTelemetry metrics (with an OTLP endpoint). */
async function serveHealth(
  log: ServiceLog,
  flags: HealthFlags,
  telemetry: Telemetry,
  bus: JetStreamBus,
  counters: () => Record<string, number>,
  gauges: () => Record<string, number> = () => ({}),
): Promise<{ stopping(): void; close(): Promise<void> }> {
  let ready = true;
  const source: HealthSource = { ready: () => ready, units: () => bus.stats, counters: () => ({ ...counters(), ...roundTripCounters() }), gauges };
  telemetry.exportMetrics(source);
  if (flags.healthPort === undefined) return { stopping: () => void (ready = false), close: async () => {} };
  const port = Number(flags.healthPort);
  if (!(Number.isInteger(port) && port >= 0 && port < 65536)) throw new UsageError('--health-port must be a port number (0: any free port)');
  const { startHealthServer } = await import('../../infra/health.js');
  const server = await startHealthServer(port, flags.healthAddress, source);
  log(`health on ${server.url}/healthz, /readyz, /metrics`);
  return { stopping: () => void (ready = false), close: () => server.close() };
}

/** Options of the long-running cluster processes. */
function processOptions(command: Command): Command {
  return clusterOptions(command)
    .option('--health-port <port>', '/healthz, /readyz and /metrics on this port (0: any free port; default: none)')
    .option('--health-address <address>', 'address of the health endpoint', '0.0.0.0');
}

function positiveInteger(value: string, flag: string): number {
  const number = Number(value);
  if (!(Number.isInteger(number) && number > 0)) throw new UsageError(`${flag} must be a positive integer`);
  return number;
}

/** Resolves on the first SIGTERM or SIGINT. */
function untilSignalled(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

/** A Kubernetes object name from an image reference (RFC 1123 subdomain). */
function analyzeText(result: AnalyzedFile, only: string | undefined): string {
  const lines = [`${result.path}  sha256:${result.sha256}${result.cached ? '  (known)' : ''}`];
  const facts = result.facts!;
  const { stats } = facts;
  const resolvedPercent = stats.syscallSites === 0 ? 100 : (100 * stats.resolvedSites) / stats.syscallSites;
  lines.push(
    `  ${facts.arch} ${facts.elfType}${facts.flags.pie ? ' pie' : ''}${facts.flags.static ? ' static' : ''}${facts.flags.go ? ' go' : ''}${facts.flags.stripped ? ' stripped' : ''}` +
      `${facts.soname ? `  soname ${facts.soname}` : ''}${facts.interpreter ? `  interp ${facts.interpreter}` : ''}`,
    ...(facts.needed.length > 0 ? [`  needs ${facts.needed.join(' ')}`] : []),
    `  ${stats.functions} functions, ${stats.syscallSites} syscall sites, ${stats.resolvedSites} resolved (${resolvedPercent.toFixed(1)} %), ${facts.unresolved.length} unresolved`,
  );
  const show = (summary: ExportSummary): string => {
    const reach = reachOf(facts, summary);
    return `  ${summary.symbol}: ${reach.syscalls.length} syscalls${reach.indirect ? ' (+ callbacks)' : ''}${reach.unresolvedCount ? `, ${reach.unresolvedCount} unresolved` : ''}${reach.imports.length ? `, ${reach.imports.length} imports` : ''}\n    ${reach.syscalls.join(' ')}`;
  };
  if (!only) {
    if (facts.entry) lines.push(show(facts.entry));
    for (const init of facts.initialisers) lines.push(show(init));
    lines.push(`  ${facts.exports.length} exports${facts.exports.length > 0 ? ' (--export NAME to show one)' : ''}`);
  } else {
    for (const summary of facts.exports) lines.push(show(summary));
  }
  return `${lines.join('\n')}\n`;
}

function parseJsonArray(value: string | undefined, flag: string): string[] | undefined {
  if (value === undefined) return undefined;
  const usage = `${flag} must be a JSON array of strings, e.g. '["/bin/sh","-c","echo hi"]', not ${JSON.stringify(value)}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new UsageError(usage);
  }
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) throw new UsageError(usage);
  return parsed as string[];
}

/** A Docker/OCI seccomp profile read from `file`: the fields `verify` and the daemon rely on, checked. */
function seccompProfileOf(doc: unknown, file: string): DockerSeccompProfile {
  const profile = doc as Partial<DockerSeccompProfile> | null;
  const ok =
    typeof profile === 'object' && profile !== null && !Array.isArray(profile) &&
    typeof profile.defaultAction === 'string' &&
    (profile.syscalls === undefined || (Array.isArray(profile.syscalls) && profile.syscalls.every((rule) => typeof rule === 'object' && rule !== null && Array.isArray(rule.names) && typeof rule.action === 'string')));
  if (!ok) throw new InvalidInputError(`profile ${file} is not a Docker seccomp profile (it needs defaultAction and a syscalls list of {names, action})`);
  return profile as DockerSeccompProfile;
}

function dirConfigOf(flags: ImageFlags): DirImageConfig {
  const entrypoint = parseJsonArray(flags.entrypoint, '--entrypoint');
  const cmd = parseJsonArray(flags.cmd, '--cmd');
  return {
    ...(entrypoint ? { entrypoint } : {}),
    ...(cmd ? { cmd } : {}),
    ...(flags.env.length > 0 ? { env: flags.env } : {}),
    ...(flags.workdir ? { workingDir: flags.workdir } : {}),
    ...(flags.user ? { user: flags.user } : {}),
  };
}

/**
 * `inspect --json`, streamed: the same text as `JSON.stringify(inspectJson(result), null, 2)`, but
 * written a file at a time with backpressure, so a tree of millions of long paths never becomes
 * one string (V8 stops at 2^29 characters).
 */
export async function writeInspectJson(result: InspectResult, out: NodeJS.WritableStream): Promise<void> {
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  const { files: _files, ...head } = inspectJson(result, false);
  const headText = JSON.stringify(head, null, 2);
  await write(`${headText.slice(0, -2)},\n  "files": [`);
  let first = true;
  let batch = '';
  for (const file of result.tree.files()) {
    batch += `${first ? '' : ','}\n    ${JSON.stringify(fileJson(file), null, 2).replaceAll('\n', '\n    ')}`;
    first = false;
    if (batch.length > 1 << 20) {
      await write(batch);
      batch = '';
    }
  }
  await write(`${batch}${first ? ']' : '\n  ]'}\n}\n`);
}

export function inspectJson(result: InspectResult, withFiles = true): Record<string, unknown> {
  return {
    reference: result.reference,
    manifestDigest: result.manifestDigest,
    configDigest: result.configDigest,
    platform: result.platform,
    config: result.config,
    layers: result.layers,
    counts: result.counts,
    entrypoint: {
      argv: result.entrypoint.argv,
      ...(result.entrypoint.path ? { path: result.entrypoint.path } : {}),
      ...(result.entrypoint.file ? { file: fileJson(result.entrypoint.file) } : {}),
      ...(result.entrypoint.problem ? { problem: result.entrypoint.problem } : {}),
    },
    ...(withFiles ? { files: [...result.tree.files()].map(fileJson) } : {}),
  };
}

function inspectText(result: InspectResult, withFiles: boolean): string {
  const { config, entrypoint, counts } = result;
  const lines = [
    `image      ${result.reference}`,
    `manifest   ${result.manifestDigest}`,
    `config     ${result.configDigest}`,
    `platform   ${formatPlatform(config.platform)}`,
    `entrypoint ${JSON.stringify(config.entrypoint)}`,
    `cmd        ${JSON.stringify(config.cmd)}`,
    `workdir    ${config.workingDir || '/'}`,
    `user       ${config.user || '(root)'}`,
    `env        ${config.env.join(' ')}`,
    ...(config.healthcheck ? [`healthcheck ${JSON.stringify(config.healthcheck)}`] : []),
    '',
    `layers (${result.layers.length}):`,
    ...result.layers.map(
      (layer, i) =>
        `  ${i}  ${layer.digest.slice(0, 19)}  ${formatBytes(layer.size).padStart(10)}  ${String(layer.files).padStart(7)} files  ${layer.mediaType}${layer.cached ? '  (cached)' : ''}`,
    ),
    '',
    `files      ${counts.files}`,
    `elf        ${Object.entries(counts.elfByMachine).map(([machine, n]) => `${machine}: ${n}`).join(', ') || 'none'}`,
    `scripts    ${counts.scripts}`,
    entrypoint.file
      ? `runs       ${entrypoint.path} → ${entrypoint.file.path} (${entrypoint.file.kind}${entrypoint.file.elfMachine ? ` ${entrypoint.file.elfMachine}` : ''}${entrypoint.file.interpreter ? ` via ${entrypoint.file.interpreter}` : ''}, sha256:${entrypoint.file.sha256?.slice(0, 12)})`
      : `runs       ? ${entrypoint.problem}`,
  ];
  if (withFiles) {
    lines.push('');
    for (const file of result.tree.files()) {
      const detail = file.linkTarget !== undefined ? `-> ${file.linkTarget}` : file.sha256 ? `sha256:${file.sha256}` : '';
      lines.push(`${file.type.padEnd(7)} 0${file.mode.toString(8).padStart(4, '0')} ${file.path} ${detail}${file.kind && file.kind !== 'other' ? ` [${file.kind}]` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  // Spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set. A command is one trace (its
  // root span); a service's units each continue the trace of whoever sent them.
  const command = argv[2] ?? '';
  const service = command === 'worker' || command === 'coordinator';
  const telemetry = await startTelemetry({ service: service ? `dockergate-${command}` : 'dockergate' });
  try {
    const program = buildProgram(telemetry);
    return service ? await runProgram(program, argv) : await withSpan(`dockergate ${command}`, {}, () => runProgram(program, argv));
  } finally {
    await telemetry.shutdown();
  }
}

/** The dockergate version and the versions that decide whether stored results are current. */
function versionText(): string {
  const analysers = [...ANALYSERS.values()].map((a) => `${a.name} ${a.version}`).join(', ');
  return `dockergate ${PACKAGE_VERSION} (extractor ${EXTRACTOR_VERSION}, analysers: ${analysers}, generator ${SCAN_GENERATOR_VERSION})`;
}

/** The path a Node.js file-system error names (`err.path`), if any. */
function errnoPath(err: unknown): string | undefined {
  const path = err instanceof Error ? (err as NodeJS.ErrnoException).path : undefined;
  return typeof path === 'string' ? path : undefined;
}

async function runProgram(program: Command, argv: readonly string[]): Promise<number> {
  try {
    await program.parseAsync([...argv]);
    // Commands report failure of what they checked (a failed analysis, a failed verify) this way.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // `dockergate` alone, or a command group without its subcommand: commander printed the help.
      if (err.code === 'commander.help' || err.code === 'commander.executeSubCommandAsync') return 2;
      const command = program.commands.some((known) => known.name() === argv[2]) ? ` ${argv[2]}` : '';
      process.stderr.write(`dockergate: usage: ${err.message.replace(/^error: /, '')} (see dockergate${command} --help)\n`);
      return 2;
    }
    const path = errnoPath(err);
    const typed = path === undefined ? err : fileError(err, path, 'file');
    if (typed instanceof DockergateError) {
      process.stderr.write(`dockergate: ${typed.code}: ${typed.message}\n`);
      return typed instanceof UsageError ? 2 : 1;
    }
    // Not a typed error: a bug in dockergate. Still one line; DOCKERGATE_DEBUG=1 prints the stack.
    process.stderr.write(`dockergate: internal: ${typed instanceof Error ? typed.message : String(typed)}\n`);
    if (process.env.DOCKERGATE_DEBUG && typed instanceof Error) process.stderr.write(`${typed.stack}\n`);
    return 1;
  }
}
