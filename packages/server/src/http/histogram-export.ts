/** One sample of a histogram as prom-client's registry formats it. */
export interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * The `_bucket`, `_sum` and `_count` samples of one histogram series from per-bucket counts kept
 * elsewhere (`counts[i]` for `bounds[i]`, the last one past every bound: +Inf), for metrics that
 * count in plain arrays and register their own `get()`: prom-client's Histogram only observes.
 */
export function histogramSeries(name: string, labels: Record<string, string>, bounds: readonly number[], counts: ArrayLike<number>, sum: number): HistogramValue[] {
  let cumulative = 0;
  const values: HistogramValue[] = bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: (cumulative += counts[i] ?? 0) }));
  const count = cumulative + (counts[bounds.length] ?? 0);
  values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
  values.push({ metricName: `${name}_sum`, labels, value: sum }, { metricName: `${name}_count`, labels, value: count });
  return values;
}
