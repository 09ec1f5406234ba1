// Small statistics helpers for the benchmark report. Pure.

/** The median of `values` (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100) of already sorted values; NaN when empty. */
export function percentileSorted(sorted: Float64Array | readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  const index = Math.min(sorted.length - 1, Math.max(0, rank - 1));
  return sorted[index] as number;
}

/** A latency recorder that keeps every sample (runs are short, so this stays small). */
export class LatencyRecorder {
  private samples = new Float64Array(4096);
  private n = 0;

  record(ms: number): void {
    if (this.n === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  summary(): { p50: number; p99: number; max: number } {
    const sorted = this.samples.slice(0, this.n).sort();
    return { p50: percentileSorted(sorted, 50), p99: percentileSorted(sorted, 99), max: this.n > 0 ? (sorted[this.n - 1] as number) : Number.NaN };
  }
}
