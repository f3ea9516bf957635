import { STATUS_CODES } from 'node:http';
import type { CheckStatus, Clock } from '@beacon/core';
import { request, type Dispatcher } from 'undici';
import { deadline } from '../deadline.js';
import { OutputBuffer } from '../output.js';
import type { CheckResult, CheckRunner } from '../types.js';
import { describeError, finish } from './result.js';

export interface HttpCheckConfig {
  url: string;
  /** Default GET. */
  method?: string;
  headers?: Record<string, string[]>;
  body?: string;
  timeoutMs: number;
}

export interface HttpRunnerDeps {
  clock: Clock;
  /** The undici dispatcher to send through (TLS verification and keep-alive are its settings). */
  dispatcher: Dispatcher;
}

const DEFAULT_HEADERS: Record<string, string> = {
  'user-agent': 'Beacon Health Check',
  accept: 'text/plain, text/*, */*',
};

/** Consul's rule: 2xx passing, 429 warning (the service asks for less load), anything else critical. */
export function httpStatusToCheck(code: number): CheckStatus {
  if (code >= 200 && code <= 299) return 'passing';
  if (code === 429) return 'warning';
  return 'critical';
}

/**
 * An HTTP(S) check. Redirects are not followed: a 3xx is critical, because following one could
 * take the probe to a host the target policy never approved.
 */
export class HttpCheckRunner implements CheckRunner {
  readonly kind = 'http' as const;
  private readonly method: string;
  private readonly headers: Record<string, string | string[]>;

  constructor(
    private readonly config: HttpCheckConfig,
    private readonly deps: HttpRunnerDeps,
  ) {
    this.method = (config.method ?? 'GET').toUpperCase();
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(config.headers ?? {})) headers[k.toLowerCase()] = v;
    for (const [k, v] of Object.entries(DEFAULT_HEADERS)) if (!(k in headers)) headers[k] = v;
    this.headers = headers;
  }

  async run(signal?: AbortSignal): Promise<CheckResult> {
    const { clock } = this.deps;
    const at = clock.now();
    const label = `HTTP ${this.method} ${this.config.url}`;
    const d = deadline(clock, this.config.timeoutMs, signal);
    try {
      const res = await request(this.config.url, {
        method: this.method as Dispatcher.HttpMethod,
        headers: this.headers,
        body: this.config.body,
        dispatcher: this.deps.dispatcher,
        signal: d.signal,
      });
      const out = new OutputBuffer();
      const statusLine = `${res.statusCode} ${STATUS_CODES[res.statusCode] ?? ''}`.trimEnd();
      out.push(`${label}: ${statusLine} Output: `);
      // Read only as much body as the output can hold; leaving the loop early destroys the
      // stream, which discards the rest (and the connection with it).
      for await (const chunk of res.body) {
        out.push(chunk as Buffer);
        if (out.full) break;
      }
      return finish(clock, at, httpStatusToCheck(res.statusCode), out.text());
    } catch (err) {
      if (d.cause === 'timeout') return finish(clock, at, 'critical', `${label}: timed out after ${this.config.timeoutMs} ms`);
      if (d.cause === 'cancelled') return finish(clock, at, 'critical', `${label}: cancelled`);
      return finish(clock, at, 'critical', `${label}: ${describeError(err)}`);
    } finally {
      d.dispose();
    }
  }
}
