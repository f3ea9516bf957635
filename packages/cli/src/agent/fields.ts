import { errors, parseDuration } from '@beacon/core';

/** A plain JSON/YAML object (not an array, not null). */
export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Where a value sits in a file, for error messages: `checks[1].url`. */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

export function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw errors.invalid(`${path} must be a string`);
  return v;
}

export function int(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw errors.invalid(`${path} must be an integer`);
  return v;
}

export function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw errors.invalid(`${path} must be true or false`);
  return v;
}

export function strList(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) throw errors.invalid(`${path} must be a list of strings`);
  return v.map((x, k) => str(x, at(path, k)));
}

export function strMap(v: unknown, path: string): Record<string, string> {
  if (!isObj(v)) throw errors.invalid(`${path} must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) out[k] = str(x, at(path, k));
  return out;
}

/** HTTP headers as `{name: value}` or `{name: [values]}`; Beacon's model keeps lists. */
export function headerMap(v: unknown, path: string): Record<string, string[]> {
  if (!isObj(v)) throw errors.invalid(`${path} must be a map of header names to a string or a list of strings`);
  const out: Record<string, string[]> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? [x] : strList(x, at(path, k));
  return out;
}

/** A duration as milliseconds (a number) or a Go-style string (`10s`, `1m30s`, `250ms`). */
export function millis(v: unknown, path: string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw errors.invalid(`${path} must be a non-negative number of milliseconds`);
    return v;
  }
  if (typeof v === 'string') {
    try {
      return parseDuration(v);
    } catch {
      throw errors.invalid(`${path}: invalid duration ${JSON.stringify(v)}: use forms like 500ms, 10s, 1m30s`);
    }
  }
  throw errors.invalid(`${path} must be a duration (e.g. 10s) or a number of milliseconds`);
}

/** A duration that must be written as a string (Consul's files: a bare number there means nanoseconds). */
export function durationString(v: unknown, path: string): number {
  if (typeof v !== 'string') throw errors.invalid(`${path} must be a duration string such as "10s"`);
  return millis(v, path);
}
