import { errors, parseDuration } from '@beacon/core';

/** Formats milliseconds as Go's time.Duration.String() does: `10s`, `1m30s`, `1h0m0s`, `500ms`, `0s`. */
export function goDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  if (ms < 1000) return `${trim(ms)}ms`;
  const totalS = ms / 1000;
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS - h * 3600) / 60);
  const s = totalS - h * 3600 - m * 60;
  const sec = `${trim(s)}s`;
  if (h > 0) return `${h}h${m}m${sec}`;
  if (m > 0) return `${m}m${sec}`;
  return sec;
}

function trim(x: number): string {
  return String(Math.round(x * 1000) / 1000);
}

/**
 * A duration in a Consul body: a Go duration string (`10s`, `1m`), or a number of nanoseconds
 * (what Go clients marshal a time.Duration to). Empty or absent is undefined.
 */
export function bodyDuration(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw errors.invalid(`${field}: invalid duration ${v}`);
    return Math.round(v / 1e6);
  }
  if (typeof v !== 'string') throw errors.invalid(`${field}: a duration must be a string such as "10s"`);
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v.trim()) && v.trim() !== '0') throw errors.invalid(`${field}: invalid duration ${JSON.stringify(v)}: use forms like 10s, 1m30s`);
  return parseDuration(v);
}
