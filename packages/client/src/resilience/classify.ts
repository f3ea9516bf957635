import { isBeaconError } from '@beacon/core';
import { isTaskCancelledError } from 'cockatiel';
import type { Outcome } from './outlier.js';

const CONNECT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT = new Set(['ETIMEDOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const CANCELLED = new Set(['UND_ERR_ABORTED', 'ABORT_ERR']);

/** The `code` of an error or of anything in its `cause` chain. */
function codes(err: unknown): string[] {
  const out: string[] = [];
  let e = err as { code?: unknown; cause?: unknown; name?: unknown } | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === 'string') out.push(e.code);
    if (e.name === 'AbortError') out.push('ABORT_ERR');
    if (isBeaconError(e) && e.code === 'timeout') out.push('ETIMEDOUT');
    e = e.cause as typeof e;
  }
  return out;
}

/**
 * What a failed request says about the instance: `connect` (the request never reached it —
 * always safe to retry elsewhere), `reset` (the connection broke: it may have been processed),
 * `timeout`, or `cancelled` (the caller gave up: says nothing about the instance).
 *
 * @example
 * classifyError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })); // 'connect'
 */
export function classifyError(err: unknown): Exclude<Outcome, 'success' | 'http-5xx'> {
  const cs = codes(err);
  if (cs.some((c) => CONNECT.has(c))) return 'connect';
  if (cs.some((c) => TIMEOUT.has(c))) return 'timeout';
  if (cs.some((c) => CANCELLED.has(c))) return 'cancelled';
  if (cs.some((c) => RESET.has(c))) return 'reset';
  if (isTaskCancelledError(err)) return 'timeout';
  return 'reset';
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * RFC 9110 idempotent methods, or any method carrying an `Idempotency-Key` header.
 *
 * @example
 * isIdempotent('POST', { 'idempotency-key': 'order-17' }); // true
 */
export function isIdempotent(method: string, hasIdempotencyKey = false): boolean {
  return IDEMPOTENT.has(method.toUpperCase()) || hasIdempotencyKey;
}
