import { errors, type Clock, type Random } from '@beacon/core';
import { formatHostPort, parseHostPort } from '../addr.js';
import { openEtcdStore, type EtcdStoreOptions } from './etcd.js';
import type { Store } from './types.js';

export interface EtcdStoreUrl {
  kind: 'etcd';
  /** `host:port` of each member. */
  endpoints: string[];
  /** Key namespace ('' for none), from the URL's path: `etcd://h:2379/prod` keeps keys under `/prod`. */
  prefix: string;
}

/**
 * Parses `--store`: `etcd://host:port,host:port,…[/prefix]` (IPv6 hosts in brackets). The port
 * defaults to etcd's 2379 when left out.
 */
export function parseStoreUrl(url: string): EtcdStoreUrl {
  const m = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(url.trim());
  if (!m) throw errors.invalid(`invalid store URL ${JSON.stringify(url)}: use etcd://host:port,host:port,…`);
  const endpoints = m[1]!.split(',').map((hp) => {
    const s = hp.trim();
    if (!s) throw errors.invalid(`invalid store URL ${JSON.stringify(url)}: an empty endpoint`);
    const hasPort = s.startsWith('[') ? /\]:\d+$/.test(s) : s.includes(':');
    const withPort = hasPort ? s : `${s}:2379`;
    const { host, port } = parseHostPort(withPort, 'etcd endpoint');
    return formatHostPort(host, port);
  });
  const prefix = m[2] && m[2] !== '/' ? m[2].replace(/\/+$/, '') : '';
  return { kind: 'etcd', endpoints, prefix };
}

/** Opens the store a URL names. */
export async function openStoreUrl(
  url: string,
  opts: { clock: Clock; random?: Random } & Pick<EtcdStoreOptions, 'callDeadlineMs' | 'connectTimeoutMs'>,
): Promise<Store> {
  const parsed = parseStoreUrl(url);
  switch (parsed.kind) {
    case 'etcd':
      return openEtcdStore({ endpoints: parsed.endpoints, prefix: parsed.prefix, ...opts });
  }
}
