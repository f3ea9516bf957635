import { BeaconError, codeForHttpStatus, isErrorCode, type ErrorBody } from '@beacon/core';

export interface BeaconHttpOptions {
  /** Base URLs of Beacon servers, e.g. `['http://127.0.0.1:8500']`. Tried in order, failing over on network errors and 5xx. */
  servers: string[];
  /** Per-request timeout in milliseconds (default 10 s; blocking reads add their wait). */
  timeoutMs?: number;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | string[] | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface HttpAnswer<T> {
  status: number;
  body: T;
  headers: Headers;
  server: string;
}

/**
 * The low-level HTTP client for Beacon's native API: JSON in and out, errors turned back into
 * {@link BeaconError}, failover across servers.
 *
 * @example
 * const http = new BeaconHttp({ servers: ['http://127.0.0.1:8500'] });
 * const { body } = await http.request('GET', '/api/v1/services');
 */
export class BeaconHttp {
  private preferred = 0;
  readonly servers: string[];

  constructor(private readonly opts: BeaconHttpOptions) {
    if (!opts.servers.length) throw new BeaconError('invalid_argument', 'at least one server URL is required');
    this.servers = opts.servers.map((s) => s.replace(/\/+$/, ''));
  }

  /** Sends one request, trying each server once, starting with the last one that answered. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<HttpAnswer<T>> {
    let lastErr: unknown;
    for (let k = 0; k < this.servers.length; k++) {
      const idx = (this.preferred + k) % this.servers.length;
      const server = this.servers[idx]!;
      try {
        const answer = await this.once<T>(server, method, path, opts);
        this.preferred = idx;
        return answer;
      } catch (err) {
        lastErr = err;
        if (opts.signal?.aborted) throw err;
        if (err instanceof BeaconError && !err.retryable) throw err;
      }
    }
    throw lastErr;
  }

  url(server: string, path: string, query?: RequestOptions['query']): string {
    const u = new URL(path, server + '/');
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const x of v) u.searchParams.append(k, x);
      else u.searchParams.set(k, String(v));
    }
    return u.toString();
  }

  private async once<T>(server: string, method: string, path: string, opts: RequestOptions): Promise<HttpAnswer<T>> {
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.opts.timeoutMs ?? 10_000);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(this.url(server, path, opts.query), {
        method,
        headers: { accept: 'application/json', ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const timedOut = timeout.aborted;
      throw new BeaconError(timedOut ? 'timeout' : 'unavailable', `${server}: ${timedOut ? 'timed out' : (err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (!res.ok) throw toError(res.status, body, server);
    return { status: res.status, body: body as T, headers: res.headers, server };
  }
}

function toError(status: number, body: unknown, server: string): BeaconError {
  const e = (body as Partial<ErrorBody> | undefined)?.error;
  if (e && isErrorCode(e.code)) return new BeaconError(e.code, e.message, e.details);
  return new BeaconError(codeForHttpStatus(status), `${server}: HTTP ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`);
}
