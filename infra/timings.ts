/**
 * Where a command's time goes, phase by phase (`--timings`): wall time summed over every interval
 * spent in a phase, and how many intervals there were. Phases may nest (analysis and link run
 * inside plan); each is timed on its own, so nested totals are parts of the outer one, not extra.
 */
export interface PhaseTotal {
  readonly phase: string;
  readonly ms: number;
  readonly count: number;
}

export class PhaseTimer {
  private readonly totals = new Map<string, { ms: number; count: number }>();
  private readonly started = performance.now();

  async time<T>(phase: string, work: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await work();
    } finally {
      this.add(phase, performance.now() - start);
    }
  }

  timeSync<T>(phase: string, work: () => T): T {
    const start = performance.now();
    try {
      return work();
    } finally {
      this.add(phase, performance.now() - start);
    }
  }

  add(phase: string, ms: number): void {
    const total = this.totals.get(phase) ?? { ms: 0, count: 0 };
    total.ms += ms;
    total.count++;
    this.totals.set(phase, total);
  }

  /** Phases in the order they were first entered. */
  phases(): PhaseTotal[] {
    return [...this.totals].map(([phase, { ms, count }]) => ({ phase, ms, count }));
  }

  /** What `--timings` prints: one line per phase, the total wall time and the peak RSS of the process. */
  text(): string {
    const width = Math.max(5, ...this.phases().map(({ phase }) => phase.length));
    const lines = this.phases().map(({ phase, ms, count }) => `  ${phase.padEnd(width)}  ${seconds(ms).padStart(8)}${count > 1 ? `  (${count} times)` : ''}`);
    const peakMiB = process.resourceUsage().maxRSS / 1024;
    return `timings:\n${lines.join('\n')}\n  ${'total'.padEnd(width)}  ${seconds(performance.now() - this.started).padStart(8)}  (since the command began; peak RSS ${peakMiB.toFixed(0)} MiB)\n`;
  }
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 1)} s`;

/** What a phase is timed with: a PhaseTimer, or NO_TIMER when nobody asked for timings. */
export type Timer = Pick<PhaseTimer, 'time' | 'timeSync'>;

export const NO_TIMER: Timer = {
  time: (_phase, work) => work(),
  timeSync: (_phase, work) => work(),
};
