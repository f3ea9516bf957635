// The bare HTTP client only: a CLI command should not load the SDK's balancers and policies.
import { InvalidArgumentError } from 'commander';
import { BeaconHttp } from '@beacon/client/http';
import type { OutputOptions } from './output.js';

export interface GlobalOptions extends OutputOptions {
  server?: string;
}

/** `--server URL[,URL…]`, else BEACON_HTTP_ADDR (a URL or host:port), else the default address. */
export function serverUrls(opt: string | undefined, env = process.env): string[] {
  const raw = opt ?? env.BEACON_HTTP_ADDR ?? 'http://127.0.0.1:8500';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      if (/^https?:\/\//i.test(s)) return s;
      // Any other scheme is a mistake, not a host name to put behind http://.
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw new InvalidArgumentError(`--server: Beacon servers are http:// or https:// URLs (or host:port), got ${JSON.stringify(s)}`);
      return `http://${s}`;
    });
}

export function connect(opts: GlobalOptions, timeoutMs?: number): BeaconHttp {
  return new BeaconHttp({ servers: serverUrls(opts.server), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
}
