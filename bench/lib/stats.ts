/** Order statistics for benchmark samples: nothing here knows what was measured. */

export interface Spread {
  min: number;
  median: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN };
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: percentileOfSorted(sorted, 50), max: sorted[sorted.length - 1]! };
}

/**
 * Nearest-rank percentile (the smallest sample with at least p % of the samples at or below it),
 * except the median, which averages the two middle samples of an even count.
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p === 50 && sorted.length % 2 === 0) {
    const mid = sorted.length / 2;
    return (sorted[mid - 1]! + sorted[mid]!) / 2;
  }
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted([...values].sort((a, b) => a - b), p);
}

/** Element-wise a[i] / b[i]: ratios of runs measured side by side (repeat i of each). */
export function ratios(subject: readonly number[], baseline: readonly number[]): number[] {
  const n = Math.min(subject.length, baseline.length);
  return Array.from({ length: n }, (_, i) => subject[i]! / baseline[i]!);
}

/** Nanoseconds from process.hrtime.bigint() to milliseconds. */
export const nsToMs = (ns: bigint): number => Number(ns) / 1e6;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
