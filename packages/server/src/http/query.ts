import { errors, parseDuration, type Random } from '@beacon/core';

export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 10 * 60_000;

/** Parses `?wait=` (Go duration) and adds Consul's jitter of up to wait/16, so parked readers do not all return at once. */
export function blockingWait(wait: string | undefined, random: Random): number {
  let ms = DEFAULT_WAIT_MS;
  if (wait !== undefined && wait !== '') {
    try {
      ms = parseDuration(wait);
    } catch {
      throw errors.invalid(`invalid wait ${JSON.stringify(wait)}: use a duration such as 30s`);
    }
  }
  ms = Math.min(Math.max(ms, 0), MAX_WAIT_MS);
  return ms + Math.floor(random.next() * (ms / 16));
}

/** Presence-style boolean: `?passing`, `?passing=true`, `?passing=1` are true; `false`/`0` false. */
export function flag(v: unknown): boolean {
  if (v === undefined) return false;
  const s = Array.isArray(v) ? String(v[v.length - 1]) : String(v);
  return s !== 'false' && s !== '0';
}

export function list(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}
