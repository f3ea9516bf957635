// The bare HTTP client only: a CLI command should not load the SDK's balancers and policies.
import { BeaconHttp } from '@beacon/client/http';

export interface GlobalOptions {
  server?: string;
  json?: boolean;
}

/** `--server URL[,URL…]`, else BEACON_HTTP_ADDR (a URL or host:port), else the default address. */
export function serverUrls(opt: string | undefined, env = process.env): string[] {
  const raw = opt ?? env.BEACON_HTTP_ADDR ?? 'http://127.0.0.1:8500';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (/^https?:\/\//.test(s) ? s : `http://${s}`));
}

export function connect(opts: GlobalOptions): BeaconHttp {
  return new BeaconHttp({ servers: serverUrls(opts.server) });
}

export function print(opts: GlobalOptions, value: unknown, human: () => string): void {
  process.stdout.write(opts.json ? JSON.stringify(value, null, 2) + '\n' : human());
}
