import cliProgress from 'cli-progress';

/** Progress of long work (layer downloads and extraction), shown on stderr when it is a terminal. */
export interface Progress {
  task(label: string, totalBytes: number): ProgressTask;
  stop(): void;
}

export interface ProgressTask {
  advance(bytes: number): void;
  finish(): void;
}

const silentTask: ProgressTask = { advance: () => {}, finish: () => {} };

export const silentProgress: Progress = { task: () => silentTask, stop: () => {} };

/** Byte-count bars, one per task; a no-op when stderr is not a TTY (logs and CI stay clean). */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return silentProgress;
  const bars = new cliProgress.MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      format: ' {bar} {percentage}% | {label} | {done}/{all}',
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    task(label, totalBytes) {
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
    stop: () => bars.stop(),
  };
}

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

/** One bar on stderr when it is a terminal (a no-op otherwise, as `terminalProgress`). */
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
