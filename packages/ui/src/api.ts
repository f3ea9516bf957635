import { signal } from '@preact/signals';

const TOKEN_KEY = 'beacon.token';

/** The ACL token of this tab (sessionStorage: gone when the tab closes, never shared with other tabs). */
export const token = signal<string | null>(sessionStorage.getItem(TOKEN_KEY));
/** The anonymous token's AccessorID: what the server answers `tokens/self` for a request without a token. */
const ANONYMOUS_ACCESSOR = '00000000-0000-0000-0000-000000000002';

/** Who the server says this tab is: not asked yet, a server without ACLs, or a token (the anonymous one when none is set). */
export type Session = { kind: 'unknown' } | { kind: 'acl-off' } | { kind: 'token'; anonymous: boolean; accessorId: string; description: string };
export const session = signal<Session>({ kind: 'unknown' });
/** Bumped when rights may have changed (another token, a write refused with 403): pages ask again what they may write. */
export const rightsEpoch = signal(0);

export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  token.value = t;
  rightsEpoch.value++;
}

/**
 * Asks the server about a token (none: the anonymous one). A server without ACLs answers the ACL
 * API 401 (`ACL support disabled`; 404 from servers older than the ACL API). With ACLs an unknown
 * token is 403 `ACL not found`: `refused`, and the session is left as it was.
 */
export async function checkToken(secret: string | null): Promise<Session | 'refused'> {
  const res = await fetch('/api/v1/acl/tokens/self', { headers: secret ? { authorization: `Bearer ${secret}` } : {}, cache: 'no-store' });
  if (res.status === 403) return 'refused';
  let next: Session;
  if (res.status === 404 || res.status === 401) next = { kind: 'acl-off' };
  else if (!res.ok) throw await failure(res);
  else {
    const t = (await res.json()) as { accessorId: string; description: string };
    next = { kind: 'token', anonymous: t.accessorId === ANONYMOUS_ACCESSOR, accessorId: t.accessorId, description: t.description };
  }
  session.value = next;
  return next;
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
    // A refused write: the token's rights changed since the page asked.
    if (method !== 'GET' && err.status === 403) rightsEpoch.value++;
    throw err;
  }
  return res;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await call(path, signal ? { signal } : {})).json() as Promise<T>;
}

export const enc = encodeURIComponent;

/** What the UI writes: an instance's service (maintenance, drain, deregister) or a KV key. */
export type WriteTarget = { resource: 'service' | 'key'; name: string };

/**
 * Whether the tab's token may write `target`, by the server's own decision (`GET
 * /api/v1/acl/authorize`): the UI never evaluates a rule. Without ACLs (401) everything may be tried.
 */
export async function mayWrite(target: WriteTarget, signal?: AbortSignal): Promise<boolean> {
  try {
    const q = new URLSearchParams({ ...target, access: 'write' });
    return (await getJson<{ allowed: boolean }>(`/api/v1/acl/authorize?${q}`, signal)).allowed;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return true;
    throw e;
  }
}
