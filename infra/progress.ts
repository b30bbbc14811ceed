import cliProgress from 'cli-progress';

/**
 * Progress of long work on stderr: the bytes of each layer read, then counted phases (objects
 * analysed, programs linked). On a terminal, bars (cli-progress) with counts, the current item and
 * an ETA; otherwise one line per phase when it ends (and one every 30 s while a long phase runs),
 * so logs and CI output stay readable; `silentProgress` for `--quiet`.
 */
export interface Progress {
  /** Bytes of one layer being read. */
  task(label: string, totalBytes: number): ProgressTask;
  /** Every layer is read. */
  stop(): void;
  /** Counted work of one phase ("analysis" of objects, "link" of programs); its total may grow as work is found. */
  phase(name: string, unit: string): PhaseProgress;
}

export interface ProgressTask {
  advance(bytes: number): void;
  finish(): void;
}

export interface PhaseProgress {
  /** `count` more items to do. */
  add(count: number): void;
  /** One item finished; `label` names it (shown as the current item). */
  done(label: string): void;
  /** The phase is over; `detail` is added to its line (e.g. "47 known, 5 analysed"). Idempotent. */
  end(detail?: string): void;
}

const silentTask: ProgressTask = { advance: () => {}, finish: () => {} };
const silentPhase: PhaseProgress = { add: () => {}, done: () => {}, end: () => {} };

export const silentProgress: Progress = { task: () => silentTask, stop: () => {}, phase: () => silentPhase };

/** What the user asked for: nothing (`--quiet`), bars on a terminal, lines otherwise. */
export function progressFor(options: { quiet?: boolean }, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (options.quiet) return silentProgress;
  return stream.isTTY ? terminalProgress(stream) : lineProgress(stream);
}

/** Layers of one command: how many, how many bytes, since when (for the phase line). */
class LayerTally {
  layers = 0;
  bytes = 0;
  started = 0;
  begin(totalBytes: number): void {
    if (this.layers++ === 0) this.started = performance.now();
    this.bytes += totalBytes;
  }
  line(): string | undefined {
    return this.layers === 0 ? undefined : `layers: ${this.layers} read, ${formatBytes(this.bytes)}, ${elapsed(this.started)}`;
  }
}

/** Byte-count bars per layer, then a bar per phase; a summary line as each phase ends. */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  let bars: cliProgress.MultiBar | undefined;
  const tally = new LayerTally();
  return {
    task(label, totalBytes) {
      bars ??= new cliProgress.MultiBar(
        { stream, clearOnComplete: false, hideCursor: true, format: ' {bar} {percentage}% | {label} | {done}/{all}' },
        cliProgress.Presets.shades_classic,
      );
      tally.begin(totalBytes);
      const total = Math.max(totalBytes, 1);
      const bar = bars.create(total, 0, { label, done: formatBytes(0), all: formatBytes(totalBytes) });
      let done = 0;
      return {
        advance(bytes) {
          done += bytes;
          bar.update(Math.min(done, total), { done: formatBytes(done) });
        },
        finish() {
          bar.update(total, { done: formatBytes(done) });
        },
      };
    },
    stop() {
      if (!bars) return;
      bars.stop();
      bars = undefined;
      const line = tally.line();
      if (line) stream.write(`  ${line}\n`);
    },
    phase(name, unit) {
      const bar = new cliProgress.SingleBar(
        { stream, hideCursor: true, format: ` {bar} {value}/{total} ${unit} | ${name} | {label} | ETA {eta_formatted}` },
        cliProgress.Presets.shades_classic,
      );
      return countedPhase(name, unit, {
        started: (total) => bar.start(total, 0, { label: '' }),
        grew: (total) => bar.setTotal(total),
        advanced: (done, label) => bar.update(done, { label: shortLabel(label) }),
        ended: (line) => {
          bar.stop();
          stream.write(`  ${line}\n`);
        },
      });
    },
  };
}

/** One line per phase on `stream` (not a terminal): as each ends, and every 30 s while one runs. */
export function lineProgress(stream: NodeJS.WritableStream = process.stderr, heartbeatMs = 30_000): Progress {
  const tally = new LayerTally();
  let layersWritten = false;
  return {
    task(_label, totalBytes) {
      tally.begin(totalBytes);
      return silentTask;
    },
    stop() {
      const line = tally.line();
      if (line && !layersWritten) stream.write(`dockergate ${line}\n`);
      layersWritten = true;
    },
    phase(name, unit) {
      let timer: NodeJS.Timeout | undefined;
      let last = { done: 0, total: 0, label: '' };
      return countedPhase(name, unit, {
        started: (total) => {
          last.total = total;
          timer = setInterval(() => stream.write(`dockergate ${name}: ${last.done}/${last.total} ${unit} so far${last.label ? `, last ${last.label}` : ''}\n`), heartbeatMs);
          timer.unref();
        },
        grew: (total) => void (last.total = total),
        advanced: (done, label) => void (last = { ...last, done, label }),
        ended: (line) => {
          clearInterval(timer);
          stream.write(`dockergate ${line}\n`);
        },
      });
    },
  };
}

interface PhaseView {
  started(total: number): void;
  grew(total: number): void;
  advanced(done: number, label: string): void;
  ended(line: string): void;
}

/** The counting shared by both displays: begins at the first `add`, ends once. */
function countedPhase(name: string, unit: string, view: PhaseView): PhaseProgress {
  let total = 0;
  let done = 0;
  let started = 0;
  let ended = false;
  return {
    add(count) {
      if (ended || count <= 0) return;
      total += count;
      if (started === 0) {
        started = performance.now();
        view.started(total);
      } else view.grew(total);
    },
    done(label) {
      if (ended) return;
      done = Math.min(done + 1, total);
      view.advanced(done, label);
    },
    end(detail) {
      if (ended || started === 0) return;
      ended = true;
      view.ended(`${name}: ${done} ${unit}${detail ? ` (${detail})` : ''}, ${elapsed(started)}`);
    },
  };
}

const elapsed = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** The last two path components, so a bar stays on one line. */
const shortLabel = (label: string): string => label.split('/').slice(-2).join('/');

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Progress of counted work (tags of a crawl): one bar, a line of counts, an ETA. */
export interface CountProgress {
  start(total: number): void;
  advance(detail: string): void;
  stop(): void;
}

export const silentCountProgress: CountProgress = { start: () => {}, advance: () => {}, stop: () => {} };

/** One bar on stderr when it is a terminal (a no-op otherwise: the command's summary says it all). */
export function terminalCountProgress(label: string, stream: NodeJS.WriteStream = process.stderr): CountProgress {
  if (!stream.isTTY) return silentCountProgress;
  const bar = new cliProgress.SingleBar(
    { stream, hideCursor: true, format: ` {bar} {value}/{total} ${label} | {detail} | ETA {eta_formatted}` },
    cliProgress.Presets.shades_classic,
  );
  let done = 0;
  return {
    start: (total) => bar.start(Math.max(total, 1), 0, { detail: '' }),
    advance(detail) {
      bar.update(++done, { detail });
    },
    stop: () => bar.stop(),
  };
}
