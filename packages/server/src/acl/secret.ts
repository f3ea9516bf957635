import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';

/**
 * The secret a request presents, in the places Consul's and Eureka's clients put it:
 * `X-Consul-Token`, `Authorization: Bearer …`, HTTP basic auth's password (Eureka clients), `?token=`.
 */
export function presentedSecret(req: Pick<FastifyRequest, 'headers' | 'query'>): string | undefined {
  return headerSecret(req.headers) ?? querySecret(req.query);
}

/** The secret in a request's headers (`X-Consul-Token`, then `Authorization`), if any. */
export function headerSecret(headers: IncomingHttpHeaders): string | undefined {
  const consul = headers['x-consul-token'];
  if (typeof consul === 'string' && consul !== '') return consul;
  const auth = headers.authorization;
  return typeof auth === 'string' ? authorizationSecret(auth) : undefined;
}

/** The secret given as `?token=`, if any. */
export function querySecret(query: unknown): string | undefined {
  const token = (query as Record<string, unknown> | undefined)?.token;
  return typeof token === 'string' && token !== '' ? token : undefined;
}

/** The secret in an `Authorization` header: a bearer token, or basic auth's password. */
function authorizationSecret(auth: string): string | undefined {
  // What every client here sends, checked without the lower-casing and slicing of the general case
  // (this runs on every request).
  if (auth.startsWith('Bearer ')) return nonEmpty(trimmed(auth.slice(7)));
  const space = auth.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = auth.slice(0, space).toLowerCase();
  const value = trimmed(auth.slice(space + 1));
  if (scheme === 'bearer') return nonEmpty(value);
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && colon < decoded.length - 1 ? decoded.slice(colon + 1) : undefined;
}

/** `s` without surrounding white space; `s` itself when it ends in printable ASCII (the usual case: no new string). */
function trimmed(s: string): string {
  return s.length > 0 && printable(s.charCodeAt(0)) && printable(s.charCodeAt(s.length - 1)) ? s : s.trim();
}

function printable(c: number): boolean {
  return c > 32 && c < 127;
}

function nonEmpty(s: string): string | undefined {
  return s === '' ? undefined : s;
}
