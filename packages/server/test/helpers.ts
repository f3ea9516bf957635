import { expect } from 'vitest';
import { parseSse, type SseEvent } from '@beacon/client';
import { startServer, type RunningServer, type ServerConfig } from '../src/server.js';

/** Starts an in-memory server on a free loopback port; the caller must close it. */
export async function devServer(config: ServerConfig = {}): Promise<RunningServer> {
  return startServer({ dev: true, httpAddr: '127.0.0.1:0', nodeName: 'test-node', ...config });
}

export async function api<T = any>(
  server: { httpUrl: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(server.httpUrl + path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Polls until `ok` holds (or `ms` pass), then returns the last value for the assertion to judge. */
export async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A server with ACLs on, its bootstrap (management) secret, and a way to make tokens with given rules. */
export interface AclTestServer {
  server: RunningServer;
  /** SecretID of the bootstrap token (global-management). */
  management: string;
  /**
   * Creates a policy with these rules (HCL or JSON, as `beacon acl policy create --rules`) and a
   * token linking it; resolves to the token's SecretID and AccessorID.
   */
  token(rules: string, description?: string): Promise<{ secret: string; accessorId: string }>;
  close(): Promise<void>;
}

let aclPolicies = 0;

/** Starts an in-memory server with `acl: true`, bootstrapped; the caller must close it. */
export async function aclServer(config: ServerConfig = {}): Promise<AclTestServer> {
  const server = await devServer({ ...config, acl: true });
  const admin = server.deps.aclAdmin!;
  const boot = await admin.bootstrap();
  return {
    server,
    management: boot.secretId!,
    async token(rules, description = '') {
      const policy = await admin.createPolicy({ name: `test-policy-${++aclPolicies}`, rules });
      const t = await admin.createToken({ description, policies: [{ id: policy.id }] });
      return { secret: t.secretId!, accessorId: t.accessorId };
    },
    close: () => server.close(),
  };
}

/** The header a native client sends its token in. */
export const bearer = (secret: string): Record<string, string> => ({ authorization: `Bearer ${secret}` });

/** Opens an SSE stream and collects its events until it ends (or `signal` aborts it). */
export async function openStream(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<{ events: SseEvent[]; ended: Promise<void> }> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal });
  expect(res.status).toBe(200);
  const events: SseEvent[] = [];
  const ended = (async () => {
    try {
      for await (const e of parseSse(res.body!)) events.push(e);
    } catch {
      /* aborted by the test */
    }
  })();
  return { events, ended };
}
