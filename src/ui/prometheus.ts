/**
 * The console's reading of a member's /metrics (Prometheus text): single samples by name, and
 * a latency histogram's mean over each scrape interval (the change of its _sum over the change
 * of its _count), kept for the last SERIES_POINTS scrapes. Pure, without the DOM.
 */

/** Scrapes kept per series. */
export const SERIES_POINTS = 60;

/** The value of the unlabelled sample `name`, if the text has it. */
export function sampleOf(text: string, name: string): number | undefined {
  const prefix = `${name} `;
  for (const line of text.split('\n')) {
    if (line.startsWith(prefix)) {
      const v = Number(line.slice(prefix.length).trim().split(' ')[0]);
      return Number.isFinite(v) ? v : undefined;
    }
  }
  return undefined;
}

/** A histogram's mean latency per scrape interval, in seconds; null for an interval without observations. */
export class MeanSeries {
  readonly points: (number | null)[] = [];
  private last: { sum: number; count: number } | undefined;

  constructor(private readonly histogram: string) {}

  /** Adds the interval ending with this scrape (the first scrape only sets the base). */
  add(metricsText: string): void {
    const sum = sampleOf(metricsText, `${this.histogram}_sum`);
    const count = sampleOf(metricsText, `${this.histogram}_count`);
    if (sum === undefined || count === undefined) return;
    const prev = this.last;
    this.last = { sum, count };
    if (!prev) return;
    // A restarted member's counters start again from zero: that interval has no mean.
    const n = count - prev.count;
    this.points.push(n > 0 && sum >= prev.sum ? (sum - prev.sum) / n : null);
    if (this.points.length > SERIES_POINTS) this.points.shift();
  }

  /** The latest interval's mean, if it had observations. */
  latest(): number | null {
    return this.points.at(-1) ?? null;
  }
}
