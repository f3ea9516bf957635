import { BeaconError, isErrorCode, systemClock, type Clock, type ErrorBody } from '@beacon/core';
import type { Dispatcher } from 'undici';
import { clockTimeout } from './time.js';

/** PEM contents (not file names) for `https://` servers: whom to trust, and this client's own certificate. */
export interface TlsOptions {
  /** CA certificate(s) that signed the servers' certificates (else the system's trusted CAs). */
  ca?: string | Buffer;
  /** Client certificate, for servers run with `--verify-incoming`. Needs `key`. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface BeaconHttpOptions {
  /** Base URLs of Beacon servers, e.g. `['http://127.0.0.1:8500']`. Tried in order, failing over on network errors and 5xx. */
  servers: string[];
  /** Per-request timeout in milliseconds (default 10 s; blocking reads add their wait). */
  timeoutMs?: number;
  /** Drives request timeouts (default: the system clock). */
  clock?: Clock;
  /** Trust and client certificate for `https://` servers. */
  tls?: TlsOptions;
  /** An ACL token's SecretID, sent as `Authorization: Bearer …` on every call (servers run with `--acl`). */
  token?: string;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | string[] | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Ask this server only (no failover); the caller does its own. */
  server?: string;
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
  private readonly clock: Clock;
  /** Only with `tls`: loaded on first use, so plain `http://` callers (the CLI) never load undici. */
  private dispatcher: Promise<Dispatcher> | undefined;

  constructor(private readonly opts: BeaconHttpOptions) {
    if (!opts.servers.length) throw new BeaconError('invalid_argument', 'at least one server URL is required');
    this.servers = opts.servers.map((s) => s.replace(/\/+$/, ''));
    for (const s of this.servers) {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        throw new BeaconError('invalid_argument', `invalid server URL ${JSON.stringify(s)}: use http://host:port`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BeaconError('invalid_argument', `invalid server URL ${JSON.stringify(s)}: use http:// or https://`);
    }
    const tls = opts.tls;
    if (tls && (tls.cert === undefined) !== (tls.key === undefined)) throw new BeaconError('invalid_argument', 'a client certificate needs both cert and key');
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * `fetch` to a Beacon server with this client's TLS settings: every call to the servers (requests,
   * watch streams, raw bodies) goes through here, so none of them skips the CA or the client certificate.
   *
   * @example
   * const res = await http.fetch(http.url(server, '/api/v1/watch', { service: 'api' }), { headers: { accept: 'text/event-stream' } });
   */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    init = this.withToken(init);
    const tls = this.opts.tls;
    if (!tls) return fetch(url, init);
    this.dispatcher ??= import('undici').then(({ Agent }) => new Agent({ connect: { ...tls } }));
    // Node's fetch takes undici's dispatcher; its types (undici-types) are a separate copy of undici's.
    return fetch(url, { ...init, dispatcher: await this.dispatcher } as unknown as RequestInit);
  }

  /** The call with this client's token, unless the caller set an Authorization header of its own. */
  private withToken(init: RequestInit): RequestInit {
    if (!this.opts.token) return init;
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${this.opts.token}`);
    return { ...init, headers };
  }

  /**
   * Closes the TLS connection pool, if one was opened (idle keep-alive sockets would hold the process).
   *
   * @example
   * await http.close();
   */
  async close(): Promise<void> {
    const d = this.dispatcher;
    this.dispatcher = undefined;
    if (d) await (await d).close();
  }

  /**
   * The servers in the order to try them: the last one that answered first.
   *
   * @example
   * for (const server of http.orderedServers()) console.log(server);
   */
  orderedServers(): string[] {
    const n = this.servers.length;
    return Array.from({ length: n }, (_, k) => this.servers[(this.preferred + k) % n]!);
  }

  /**
   * Remembers `server` as the one to try first (a long-lived stream to it just succeeded).
   *
   * @example
   * http.prefer('http://127.0.0.1:8500');
   */
  prefer(server: string): void {
    const idx = this.servers.indexOf(server);
    if (idx >= 0) this.preferred = idx;
  }

  /**
   * Sends one request, trying each server once, starting with the last one that answered.
   *
   * @example
   * const { body } = await http.request<{ index: number }>('PUT', '/api/v1/instances', { body: { service: 'api', address: '127.0.0.1', port: 8080 } });
   */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<HttpAnswer<T>> {
    if (opts.server !== undefined) return this.once<T>(opts.server.replace(/\/+$/, ''), method, path, opts);
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

  /**
   * Builds the URL of `path` on `server` with a query string (arrays repeat the key).
   *
   * @example
   * http.url('http://127.0.0.1:8500', '/api/v1/watch', { service: ['api'] });
   */
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
    const timeout = clockTimeout(this.clock, opts.timeoutMs ?? this.opts.timeoutMs ?? 10_000, `${method} ${server}${path}`, opts.signal);
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(this.url(server, path, opts.query), {
        method,
        headers: { accept: 'application/json', ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal: timeout.signal,
      });
      text = await res.text();
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const timedOut = timeout.signal.aborted;
      throw new BeaconError(timedOut ? 'timeout' : 'unavailable', `${server}: ${timedOut ? 'timed out' : describeFetchError(err, server)}`);
    } finally {
      timeout.cancel();
    }
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (!res.ok) throw toError(res.status, body, server, res.headers.get('content-type'));
    return { status: res.status, body: body as T, headers: res.headers, server };
  }
}

/**
 * A fetch failure's message with its cause (undici hides the useful part, ECONNREFUSED …, there).
 *
 * @example
 * describeFetchError(err, 'http://127.0.0.1:8500'); // 'fetch failed (ECONNREFUSED)'
 */
export function describeFetchError(err: unknown, url?: string): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e?.cause;
  if (cause && (cause.code || cause.message)) {
    const hint = tlsHint(cause.code, cause.message, url?.startsWith('https:') ?? false);
    return `${e.message} (${cause.code ?? cause.message})${hint ? `: ${hint}` : ''}`;
  }
  return e?.message ?? String(err);
}

/** Node's certificate verification failures (tls.checkServerIdentity and OpenSSL's X509 codes). */
const UNTRUSTED_CERT = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * What to do about a TLS failure, which undici reports only as a code: the usual causes are a
 * missing CA, a missing client certificate, or a scheme that does not match the server's.
 */
function tlsHint(code: string | undefined, message: string | undefined, https: boolean): string | undefined {
  if (code && UNTRUSTED_CERT.has(code)) return "the server's TLS certificate is not signed by a trusted CA; give the CA certificate (--ca, BEACON_CACERT, or the SDK's tls.ca)";
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return "the server's TLS certificate does not name this host or IP (its subjectAltName)";
  if (code === 'CERT_HAS_EXPIRED') return "the server's TLS certificate has expired";
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(message ?? '')) return 'the server does not speak TLS; use http://';
  if (code !== 'UND_ERR_SOCKET') return undefined;
  // Closed without an answer. Over TLS 1.3 a refused client certificate shows only as this: the
  // server's alert comes after the client's handshake has ended. Over plain HTTP, a TLS server
  // drops the request it cannot read.
  return https
    ? 'the server closed the connection without answering; if it verifies clients (--verify-incoming), give a certificate signed by its CA (--cert and --key, BEACON_CLIENT_CERT and BEACON_CLIENT_KEY, or the SDK\'s tls.cert and tls.key)'
    : 'the server closed the connection without answering; if it serves TLS, use https://';
}

function toError(status: number, body: unknown, server: string, contentType: string | null): BeaconError {
  const e = (body as Partial<ErrorBody> | undefined)?.error;
  if (e && isErrorCode(e.code)) return new BeaconError(e.code, e.message, e.details);
  // Every Beacon error carries {error:{code,message}}: anything else came from something else at
  // that address (another program, a proxy). Its page is no answer; what answered is the news.
  const what = contentType?.split(';')[0]?.trim() || 'no content type';
  return new BeaconError('unavailable', `${server}: HTTP ${status} (${what}) is not a Beacon answer; is ${server} a Beacon server?`);
}
