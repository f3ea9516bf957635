import { signal } from '@preact/signals';

const TOKEN_KEY = 'beacon.token';

/** The ACL token of this tab (sessionStorage: gone when the tab closes, never shared with other tabs). */
export const token = signal<string | null>(sessionStorage.getItem(TOKEN_KEY));
/** False once a write was refused with 403: the write buttons hide rather than fail again. */
export const canWrite = signal(true);

export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  token.value = t;
}

/** What `GET /api/v1/acl/tokens/self` says about the token. */
export type TokenCheck = 'acl-off' | 'accepted' | 'refused';

/**
 * Asks the server about a token. A server without ACLs answers the ACL API 401 (`ACL support
 * disabled`; 404 from servers older than the ACL API): everything is allowed. With ACLs, an unknown
 * token is 403; an accepted one keeps the write buttons until a write is refused (which write a
 * token may do is the server's decision).
 */
export async function checkToken(secret: string | null): Promise<TokenCheck> {
  const res = await fetch('/api/v1/acl/tokens/self', { headers: secret ? { authorization: `Bearer ${secret}` } : {}, cache: 'no-store' });
  if (res.status === 404 || res.status === 401) {
    canWrite.value = true;
    return 'acl-off';
  }
  if (res.status === 403) return 'refused';
  if (!res.ok) throw await failure(res);
  canWrite.value = true;
  return 'accepted';
}

/** A refused or failed request, with the server's catalog code (`conflict`, `forbidden`…). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function authHeaders(): Record<string, string> {
  return token.value ? { authorization: `Bearer ${token.value}` } : {};
}

type Method = 'GET' | 'PUT' | 'DELETE';

export interface CallOptions {
  method?: Method;
  /** Sent as JSON (native API). */
  json?: unknown;
  /** Sent as is (Consul's KV takes the raw value). */
  text?: string;
  signal?: AbortSignal;
}

/** Errors are `{error:{code,message}}` on the native API and plain text on Consul's. */
async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.code) return new ApiError(res.status, body.error.code, body.error.message ?? text);
  } catch {
    // Not JSON: Consul's plain-text errors.
  }
  return new ApiError(res.status, res.status === 403 ? 'forbidden' : res.status === 404 ? 'not_found' : 'error', text || res.statusText);
}

/** One call to this server's public HTTP API with the tab's token. Writes carry `X-Beacon-UI`, which the server requires of browser writes. */
export async function call(path: string, req: CallOptions = {}): Promise<Response> {
  const method = req.method ?? 'GET';
  const headers: Record<string, string> = { ...authHeaders() };
  let body: string | undefined;
  if (method !== 'GET') headers['x-beacon-ui'] = '1';
  if (req.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(req.json);
  } else if (req.text !== undefined) body = req.text;
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body } : {}), ...(req.signal ? { signal: req.signal } : {}), cache: 'no-store' });
  if (!res.ok) {
    const err = await failure(res);
    if (method !== 'GET' && err.status === 403) canWrite.value = false;
    throw err;
  }
  return res;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await call(path, signal ? { signal } : {})).json() as Promise<T>;
}

export const enc = encodeURIComponent;
