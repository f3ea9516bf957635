import { errors } from '@beacon/core';

/** Parses `host:port`, `[v6]:port` or `:port` (host defaults to 127.0.0.1). */
export function parseHostPort(s: string, what = 'address'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw errors.invalid(`invalid ${what} ${JSON.stringify(s)}: use host:port, e.g. 127.0.0.1:8500`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
