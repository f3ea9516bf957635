// The bare HTTP client only: a CLI command should not load the SDK's balancers and policies.
import { readFileSync } from 'node:fs';
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
  /** An ACL token's SecretID (`--token`, `BEACON_TOKEN`). */
  token?: string;
  /** The token read from `--token-file` (`BEACON_TOKEN_FILE`). */
  tokenFile?: string;
}

/** How commands reach an `https://` server; the variables are Consul's CONSUL_CACERT … renamed. */
export function tlsOptions(): Option[] {
  return [
    new Option('--ca <file>', 'CA certificate (PEM) that signed the servers\' TLS certificates').argParser(pemFile).env('BEACON_CACERT'),
    new Option('--cert <file>', 'client certificate (PEM), for servers run with --verify-incoming').argParser(pemFile).env('BEACON_CLIENT_CERT'),
    new Option('--key <file>', 'private key (PEM) of --cert').argParser(pemFile).env('BEACON_CLIENT_KEY'),
  ];
}

/** `--token` (or `BEACON_TOKEN`) and `--token-file` (or `BEACON_TOKEN_FILE`): the ACL token every client command and the agent send. */
export function tokenOptions(): Option[] {
  return [
    new Option('--token <secret>', "ACL token (SecretID) for servers run with --acl; prefer $BEACON_TOKEN or --token-file: arguments show in `ps`").env('BEACON_TOKEN'),
    new Option('--token-file <file>', 'read the ACL token from this file').argParser(tokenFile).env('BEACON_TOKEN_FILE'),
  ];
}

/** A token file's first line, trimmed; an empty or unreadable file is a usage error. */
function tokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const token = text.split('\n')[0]!.trim();
  if (!token) throw new InvalidArgumentError(`${file} holds no token`);
  return token;
}

/** The token the options give: --token wins over --token-file. */
export function clientToken(opts: { token?: string | undefined; tokenFile?: string | undefined }): string | undefined {
  return opts.token || opts.tokenFile || undefined;
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
  const token = clientToken(opts);
  return new BeaconHttp({ servers: serverUrls(opts.server), ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(tls ? { tls } : {}), ...(token ? { token } : {}) });
}
