import { assertDatacenterName, errors } from '@beacon/core';

/** A remote datacenter as configured: its name and the servers to follow it through (failing over in RTT order). */
export interface RemoteDatacenter {
  name: string;
  servers: string[];
  /** Sent to this DC's servers as `Authorization: Bearer` (else the federation-wide token). */
  token?: string;
}


/**
 * Parses `--federate NAME=URL[,URL…]` (repeatable): each remote DC once, never the local one,
 * every URL http:// or https://.
 *
 * @example
 * parseFederate(['dc2=http://10.0.2.1:8500,http://10.0.2.2:8500'], 'dc1');
 */
export function parseFederate(specs: readonly string[], local: string): RemoteDatacenter[] {
  const out: RemoteDatacenter[] = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw errors.invalid(`--federate ${JSON.stringify(spec)}: use NAME=https://server[,https://server…]`);
    const name = spec.slice(0, eq).trim().toLowerCase();
    assertDatacenterName(name);
    if (name === local) throw errors.invalid(`--federate ${name}: that is this server's own datacenter (--datacenter)`);
    if (out.some((d) => d.name === name)) throw errors.invalid(`--federate ${name} is given twice: list all its servers in one flag, comma-separated`);
    const servers = spec
      .slice(eq + 1)
      .split(',')
      .map((s) => s.trim().replace(/\/+$/, ''))
      .filter((s) => s !== '');
    if (servers.length === 0) throw errors.invalid(`--federate ${name}: no server URL given`);
    for (const s of servers) {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        throw errors.invalid(`--federate ${name}: invalid server URL ${JSON.stringify(s)}`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw errors.invalid(`--federate ${name}: ${JSON.stringify(s)} is not http:// or https://`);
    }
    out.push({ name, servers });
  }
  return out;
}
