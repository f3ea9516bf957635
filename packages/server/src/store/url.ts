import { errors, type Clock, type Random } from '@beacon/core';
import { formatHostPort, parseHostPort } from '../addr.js';
import type { EtcdStore, EtcdStoreOptions } from './etcd.js';
import type { Store } from './types.js';

export interface EtcdStoreUrl {
  kind: 'etcd';
  /** `host:port` of each member. */
  endpoints: string[];
  /** Key namespace ('' for none), from the URL's path: `etcd://h:2379/prod` keeps keys under `/prod`. */
  prefix: string;
  /** `etcds://`: TLS to every member. */
  tls: boolean;
}

/**
 * Parses `--store`: `etcd://host:port,host:port,…[/prefix]` (IPv6 hosts in brackets), or
 * `etcds://…` for TLS. The port defaults to etcd's 2379 when left out.
 */
export function parseStoreUrl(url: string): EtcdStoreUrl {
  const m = /^etcd(s?):\/\/([^/]+)(\/.*)?$/.exec(url.trim());
  if (!m) throw errors.invalid(`invalid store URL ${JSON.stringify(url)}: use etcd://host:port,host:port,… (etcds:// for TLS)`);
  const endpoints = m[2]!.split(',').map((hp) => {
    const s = hp.trim();
    if (!s) throw errors.invalid(`invalid store URL ${JSON.stringify(url)}: an empty endpoint`);
    const hasPort = s.startsWith('[') ? /\]:\d+$/.test(s) : s.includes(':');
    const withPort = hasPort ? s : `${s}:2379`;
    const { host, port } = parseHostPort(withPort, 'etcd endpoint');
    return formatHostPort(host, port);
  });
  const prefix = m[3] && m[3] !== '/' ? m[3].replace(/\/+$/, '') : '';
  return { kind: 'etcd', endpoints, prefix, tls: m[1] === 's' };
}

/**
 * Opens a store on an etcd cluster. etcd3 and the gRPC and protobuf code under it are loaded
 * here, on first use, not when the server starts: a server on the embedded store never needs
 * them, and they cost it ~10 MB resident (measured in docs/benchmarks.md).
 */
export async function openEtcdStore(opts: EtcdStoreOptions): Promise<EtcdStore> {
  const etcd = await import('./etcd.js');
  return etcd.openEtcdStore(opts);
}

/** Opens the store a URL names. */
export async function openStoreUrl(
  url: string,
  opts: { clock: Clock; random?: Random } & Pick<EtcdStoreOptions, 'callDeadlineMs' | 'connectTimeoutMs' | 'tls' | 'auth'>,
): Promise<Store> {
  const parsed = parseStoreUrl(url);
  switch (parsed.kind) {
    case 'etcd': {
      const { tls, ...rest } = opts;
      // A CA or client certificate for a plaintext URL would be silently unused: say so instead.
      if (tls && !parsed.tls) throw errors.invalid(`the etcd CA and client certificate need an etcds:// store URL, not ${JSON.stringify(url)}`);
      return openEtcdStore({ endpoints: parsed.endpoints, prefix: parsed.prefix, ...rest, ...(parsed.tls ? { tls: tls ?? {} } : {}) });
    }
  }
}
