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
