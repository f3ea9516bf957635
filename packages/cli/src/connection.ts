// The bare HTTP client only: a CLI command should not load the SDK's balancers and policies.
import { InvalidArgumentError, Option } from 'commander';
import { BeaconHttp, type TlsOptions } from '@beacon/client/http';
import type { OutputOptions } from './output.js';
import { pemFile } from './flags.js';

export interface GlobalOptions extends OutputOptions {
  server?: string;
  /** PEM contents of `--ca`, `--cert`, `--key` (read by {@link pemFile}). */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** How commands reach an `https://` server; the variables are Consul's CONSUL_CACERT … renamed. */
export function tlsOptions(): Option[] {
  return [
    new Option('--ca <file>', 'CA certificate (PEM) that signed the servers\' TLS certificates').argParser(pemFile).env('BEACON_CACERT'),
    new Option('--cert <file>', 'client certificate (PEM), for servers run with --verify-incoming').argParser(pemFile).env('BEACON_CLIENT_CERT'),
    new Option('--key <file>', 'private key (PEM) of --cert').argParser(pemFile).env('BEACON_CLIENT_KEY'),
  ];
}

/** The TLS settings the options give, if any. */
export function clientTls(opts: Pick<GlobalOptions, 'ca' | 'cert' | 'key'>): TlsOptions | undefined {
  if ((opts.cert === undefined) !== (opts.key === undefined)) throw new InvalidArgumentError('--cert and --key go together (or BEACON_CLIENT_CERT and BEACON_CLIENT_KEY).');
  if (!opts.ca && !opts.cert) return undefined;
  return { ...(opts.ca ? { ca: opts.ca } : {}), ...(opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {}) };
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
  const tls = clientTls(opts);
  return new BeaconHttp({ servers: serverUrls(opts.server), ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(tls ? { tls } : {}) });
}
