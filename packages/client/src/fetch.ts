import { fetch as undiciFetch, Headers, type Dispatcher, type RequestInit, type Response } from 'undici';
import { isBrokenCircuitError, isBulkheadRejectedError, isTaskCancelledError, wrap, type IPolicy } from 'cockatiel';
import { BeaconError, type Clock } from '@beacon/core';
import type { BeaconDispatcher } from './dispatcher.js';
import type { EndpointState } from './endpoint.js';
import { DEADLINE_HEADER, Deadline } from './resilience/deadline.js';
import { classifyError, isIdempotent } from './resilience/classify.js';
import { TimeoutPolicy } from './resilience/timeout.js';
import { neverAborted as NEVER } from './resilience/policy-base.js';
import type { RetryClass, Upstream } from './upstream.js';

/** Per-call options of `client.fetch`, next to the usual `RequestInit`. */
export interface CallOptions {
  /** Affinity key for consistent hashing. */
  key?: string;
  /** Treat the request as idempotent (retry it on resets, timeouts, 502/503/504) or not; default: by method or an `Idempotency-Key` header. */
  idempotent?: boolean;
  /** Overall time, retries included (default: the service's `timeoutMs`). */
  timeoutMs?: number;
  /** Time per attempt (default: the service's `attemptTimeoutMs`). */
  attemptTimeoutMs?: number;
  /** The caller's own deadline (e.g. from {@link readDeadline} on the incoming request), or its time in clock ms. */
  deadline?: Deadline | number;
  /** `false` disables retries for this call. */
  retry?: boolean;
}

/** `RequestInit` plus the SDK's per-call options under `beacon`. */
export type BeaconRequestInit = RequestInit & { beacon?: CallOptions };

/** What `client.fetch` needs from the client. */
export interface FetchSource {
  readonly clock: Clock;
  /** The client's dispatcher. */
  readonly dispatcher: BeaconDispatcher;
  isService(host: string): boolean;
  upstream(service: string): Upstream;
}

/**
 * Sends one attempt to a chosen endpoint through the client's dispatcher, which reports outcomes.
 * undici's fetch only calls `dispatch` on it, so it skips Dispatcher's EventEmitter set-up: one is
 * made per attempt.
 */
class PinnedDispatcher {
  used = false;
  constructor(
    private readonly base: BeaconDispatcher,
    private readonly upstream: Upstream,
    private readonly endpoint: EndpointState,
  ) {}
  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.used = true;
    return this.base.dispatchTo(this.upstream, this.endpoint, opts, handler);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The host of an http(s) URL string, without building a URL object (this runs on every call);
 * undefined for other schemes. Userinfo and port are stripped; IPv6 literals keep their brackets
 * (never a service name anyway).
 */
function hostOf(url: string): string | undefined {
  let start: number;
  if (url.startsWith('http://')) start = 7;
  else if (url.startsWith('https://')) start = 8;
  else return undefined;
  let end = url.length;
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
  }
  let authority = url.slice(start, end);
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const colon = authority.indexOf(':');
  return (colon >= 0 ? authority.slice(0, colon) : authority).toLowerCase();
}

/** Whether init headers (object, pairs or Headers) carry `name` (lower case). */
function hasHeader(headers: RequestInit['headers'], name: string): boolean {
  if (!headers) return false;
  if (typeof (headers as Headers).has === 'function') return (headers as Headers).has(name);
  const entries = Array.isArray(headers) ? headers : Object.entries(headers as Record<string, string>);
  for (const [k] of entries as [string, unknown][]) if (k.toLowerCase() === name) return true;
  return false;
}

/** Bodies that can be sent again as they are. */
function replayable(body: unknown): boolean {
  if (body == null || typeof body === 'string' || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return true;
  if (body instanceof URLSearchParams || body instanceof Blob) return true;
  return typeof FormData !== 'undefined' && body instanceof FormData;
}

/**
 * `fetch` with discovery, balancing and resilience: `http://<service>/path` goes to a healthy
 * instance; per service the call runs through cockatiel-composed policies — overall timeout →
 * bulkhead → retry (full-jitter backoff, retry budget; idempotent requests, connection failures
 * for others) — and each attempt gets its own timeout, the remaining budget in
 * `x-beacon-deadline-ms`, and a different instance than the attempts before it. Other URLs are
 * fetched as they are.
 *
 * @example
 * const res = await beaconFetch(client, 'http://payments/charge', {
 *   method: 'POST', body: JSON.stringify(order), headers: { 'idempotency-key': order.id },
 *   beacon: { timeoutMs: 2_000, attemptTimeoutMs: 500 },
 * });
 */
export async function beaconFetch(src: FetchSource, input: string | URL, init: BeaconRequestInit = {}): Promise<Response> {
  const host = typeof input === 'string' ? hostOf(input) : input.protocol === 'http:' || input.protocol === 'https:' ? input.hostname : undefined;
  const call = init.beacon ?? {};
  // fetch reads only the RequestInit members it knows, so `beacon` can ride along.
  const rest: RequestInit = init;
  if (host === undefined || !src.isService(host)) {
    return undiciFetch(input, { ...rest, dispatcher: src.dispatcher });
  }
  const service = host;
  const href = String(input);
  const up = src.upstream(service);
  const userSignal = rest.signal ?? undefined;
  const clock = src.clock;
  const policy = up.policy;
  const method = (rest.method ?? 'GET').toUpperCase();
  const cls: RetryClass =
    call.retry === false || !replayable(rest.body) ? 'none' : (call.idempotent ?? isIdempotent(method, hasHeader(rest.headers, 'idempotency-key'))) ? 'idempotent' : 'connect-only';

  // The call's time starts now: finding the service (discovery's first answer) spends it too.
  const started = clock.now();
  let deadlineAt = Infinity;
  const timeoutMs = call.timeoutMs ?? policy.timeoutMs;
  if (timeoutMs !== undefined) deadlineAt = started + timeoutMs;
  if (call.deadline !== undefined) deadlineAt = Math.min(deadlineAt, typeof call.deadline === 'number' ? call.deadline : call.deadline.at);
  const attemptTimeoutMs = call.attemptTimeoutMs ?? policy.attemptTimeoutMs;
  const deadlinePassed = () => new BeaconError('timeout', `${method} ${href}: deadline passed before an attempt`, { reason: 'deadline', service });
  if (!up.view.isSynced) {
    if (deadlineAt <= started) throw deadlinePassed();
    await up.whenReady(userSignal, deadlineAt - started);
  }

  const policies: IPolicy<any, any>[] = [];
  if (deadlineAt < Infinity) policies.push(new TimeoutPolicy(clock, Math.max(0, deadlineAt - clock.now()), `${method} ${service} (overall)`));
  if (up.bulkhead) policies.push(up.bulkhead);
  const retry = up.retryFor(cls);
  if (retry) policies.push(retry);

  // Instances this call has tried, so a retry goes elsewhere (allocated on the first retry).
  let tried: Set<string> | undefined;
  let last: string | undefined;
  const attempt = async ({ signal }: { signal: AbortSignal }): Promise<Response> => {
    const remaining = deadlineAt - clock.now();
    if (remaining <= 0) throw deadlinePassed();
    if (last !== undefined) (tried ??= new Set()).add(last);
    const ep = up.pick(call.key, tried);
    last = ep.id;
    const budget = Math.min(remaining, attemptTimeoutMs ?? Infinity);
    let h = rest.headers;
    if (budget < Infinity) {
      const withDeadline = new Headers(rest.headers);
      withDeadline.set(DEADLINE_HEADER, String(Math.max(1, Math.floor(budget))));
      h = withDeadline;
    }
    const pinned = new PinnedDispatcher(src.dispatcher, up, ep);
    const send = async (s: AbortSignal) => {
      try {
        return await undiciFetch(input, { ...rest, ...(h === undefined ? {} : { headers: h }), signal: s === NEVER ? null : s, dispatcher: pinned as unknown as Dispatcher });
      } finally {
        // Aborted before it was sent: the breaker's admission must not stay taken.
        if (!pinned.used) ep.breaker?.release();
      }
    };
    if (attemptTimeoutMs !== undefined && attemptTimeoutMs <= remaining) {
      return new TimeoutPolicy(clock, attemptTimeoutMs, `${method} ${service} attempt on ${ep.id}`).execute(({ signal: s }) => send(s), signal);
    }
    return send(signal);
  };

  try {
    if (policies.length === 0) return await attempt({ signal: userSignal ?? NEVER });
    if (policies.length === 1) return (await policies[0]!.execute(attempt as never, userSignal)) as Response;
    return (await wrap(...(policies as [IPolicy<any, any>])).execute(attempt as never, userSignal)) as Response;
  } catch (err) {
    throw translate(err, service, method, href);
  }
}

/** Errors leave as {@link BeaconError}s with a `details.reason`; the original stays in `cause`. */
function translate(err: unknown, service: string, method: string, href: string): unknown {
  if (err instanceof BeaconError) return err;
  let out: BeaconError;
  if (isBulkheadRejectedError(err)) out = new BeaconError('too_many_requests', `${service}: bulkhead full, request rejected`, { reason: 'bulkhead', service });
  else if (isBrokenCircuitError(err)) out = new BeaconError('unavailable', `${service}: circuit open`, { reason: 'circuit_open', service });
  else if (isTaskCancelledError(err)) out = new BeaconError('timeout', `${method} ${href} timed out`, { reason: 'timeout', service });
  else {
    const kind = classifyError(err);
    if (kind === 'cancelled') return err;
    const cause = (err as { cause?: { message?: string; code?: string } }).cause;
    out = new BeaconError(kind === 'timeout' ? 'timeout' : 'unavailable', `${method} ${href} failed: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { reason: kind, service });
  }
  Object.defineProperty(out, 'cause', { value: err, enumerable: false });
  return out;
}
