import { readFileSync, statSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { errors, formatDuration, isBeaconError, parseDuration } from '@beacon/core';

/**
 * Argument parsers for commander: a flag's value is checked where it is typed, so the error
 * names the flag (commander prefixes `option '--ttl <duration>' argument '30' is invalid.`)
 * instead of a field of the HTTP API after a round trip.
 */

export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** A whole number from `min` to `max`. */
export function integer(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    return n;
  };
}

export const port = integer(0, 65535);

/**
 * Where a server listens: host:port, or the http:// URL clients are given, so that one
 * BEACON_HTTP_ADDR serves both the server and the commands that talk to it.
 */
export function listenAddress(v: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return v;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new InvalidArgumentError('Expected host:port, http://host:port or https://host:port.');
  }
  // https:// too: one BEACON_HTTP_ADDR names a TLS server for it and for its clients.
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search || !url.port) throw new InvalidArgumentError('Expected host:port, http://host:port or https://host:port.');
  return `${url.hostname}:${url.port}`;
}

/** A duration with its unit (`30s`, `1m30s`, `500ms`) from `min` to `max` milliseconds. */
export function duration(bounds: { minMs: number; maxMs: number }): (v: string) => number {
  const range = `from ${formatDuration(bounds.minMs)} to ${formatDuration(bounds.maxMs)}`;
  return (v) => {
    // A bare number is ambiguous between the API's milliseconds and the seconds people mean.
    if (/^\s*\d+(\.\d+)?\s*$/.test(v)) throw new InvalidArgumentError(`Give a unit: ${v.trim()}s, ${v.trim()}ms, ${v.trim()}m (${range}).`);
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (err) {
      if (isBeaconError(err)) throw new InvalidArgumentError(`Expected a duration such as 500ms, 30s or 1m30s (${range}).`);
      throw err;
    }
    if (ms < bounds.minMs || ms > bounds.maxMs) throw new InvalidArgumentError(`Expected a duration ${range}.`);
    return ms;
  };
}

/** RFC 2181 §8: a TTL is an unsigned 31-bit number of seconds. */
const DNS_TTL_MAX_S = 2 ** 31 - 1;

/** A DNS TTL: whole seconds (`30`, as DNS counts) or a duration (`1m`), passed on in seconds. */
export function ttlSeconds(v: string): number {
  const expected = `Expected whole seconds (30) or a duration (1m), at most ${DNS_TTL_MAX_S} seconds.`;
  let seconds: number;
  try {
    seconds = /^\s*\d+\s*$/.test(v) ? Number(v) : parseDuration(v) / 1000;
  } catch (err) {
    if (isBeaconError(err)) throw new InvalidArgumentError(expected);
    throw err;
  }
  if (!Number.isSafeInteger(seconds) || seconds > DNS_TTL_MAX_S) throw new InvalidArgumentError(expected);
  return seconds;
}

/** A repeatable `key=value` flag, collected into an object; `value` parses the right side. */
export function keyValue<T>(flag: string, value: (v: string) => T): (v: string, prev?: Record<string, T>) => Record<string, T> {
  return (v, prev = {}) => {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`Expected key=value for ${flag}.`);
    return { ...prev, [v.slice(0, eq)]: value(v.slice(eq + 1)) };
  };
}

/** A directory that exists (a typo in a path fails here, not as a scandir error later). */
export function existingDirectory(v: string): string {
  if (!statSync(v, { throwIfNoEntry: false })?.isDirectory()) throw new InvalidArgumentError('No such directory.');
  return v;
}

/** `--since`: a whole number is an index of the change history, a duration (`10m`) a time window. */
export function indexOrDuration(v: string): { kind: 'index'; index: number } | { kind: 'duration'; ms: number } {
  if (/^\s*\d+\s*$/.test(v)) return { kind: 'index', index: integer(0, Number.MAX_SAFE_INTEGER)(v) };
  try {
    return { kind: 'duration', ms: parseDuration(v) };
  } catch (err) {
    if (isBeaconError(err)) throw new InvalidArgumentError('Expected an index (42) or a duration (10m, 1h30m).');
    throw err;
  }
}

/**
 * A PEM file (certificate, key or CA), read when the flag is parsed: a wrong path fails naming the
 * flag, before a server binds or a command connects. The contents travel on, never the path.
 */
/** A secret kept in a file (a token): its first line; the file name is what settings show. */
export function secretFile(v: string): string {
  let text: string;
  try {
    text = readFileSync(v, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`Cannot read ${v}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`);
  }
  const secret = text.split(/\r?\n/)[0]!.trim();
  if (secret === '' || secret.length > 4096) throw new InvalidArgumentError(`${v} must hold the secret on its first line (1-4096 characters).`);
  return secret;
}

export function pemFile(v: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(v);
  } catch (err) {
    throw new InvalidArgumentError(`Cannot read ${v}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`);
  }
  if (!pem.includes('-----BEGIN ')) throw new InvalidArgumentError(`${v} is not a PEM file (no -----BEGIN line).`);
  return pem;
}

/** A value from the command line: the argument itself, `@path` a file's bytes, `-` standard input. */
export function readValue(arg: string): Buffer {
  if (arg === '-') return readFileSync(0);
  if (arg.startsWith('@')) {
    try {
      return readFileSync(arg.slice(1));
    } catch (err) {
      throw errors.invalid(`cannot read ${arg.slice(1)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return Buffer.from(arg, 'utf8');
}
