import { Server as TlsServer } from 'node:tls';
import type { Server } from 'node:net';
import { isBeaconError, type Clock } from '@beacon/core';
import { formatHostPort } from '../addr.js';
import type { CatalogView } from '../catalog/view.js';
import type { ServerInfo } from '../http/deps.js';
import { isActiveKind } from '../health/types.js';
import type { Store } from '../store/types.js';
import type { ClusterInfo } from './membership.js';

/** The URL clients reach a server's HTTP API at: https:// when that listener serves TLS. */
export function serverUrl(server: Server, host: string, port: number): string {
  return `${server instanceof TlsServer ? 'https' : 'http'}://${formatHostPort(host, port)}`;
}

/** One server as `beacon members`, `/api/v1/members` and Consul's `/v1/agent/members` show it. */
export interface MemberView {
  node: string;
  httpUrl: string;
  version: string;
  startedAt: number;
  /** Store revision at which it joined the cluster (0 for an embedded server). */
  joinedIndex: number;
  self: boolean;
  leader: boolean;
  /** Instances whose lease, TTL-check and deregister timers it keeps. */
  instances: number;
  /** Active checks (http, tcp, grpc, script) it runs. */
  checks: number;
  /** When it last renewed its membership (null when its lease has just gone). */
  lastSeenAt: number | null;
}

export interface MembersDeps {
  catalog: CatalogView;
  store: Store;
  clock: Clock;
  info: ServerInfo;
  cluster?: ClusterInfo;
}

/**
 * The servers and what each owns. Embedded mode has one server, which owns everything; in
 * clustered mode ownership is the same rendezvous hashing the servers use to split the work, so
 * the counts are the work each one does, as this server sees the membership.
 */
export async function listMembers(deps: MembersDeps, selfUrl: string): Promise<MemberView[]> {
  const { catalog, clock, info, cluster } = deps;
  const owner = (key: string) => (cluster ? cluster.owner(key) : info.node);
  const instances = new Map<string, number>();
  const checks = new Map<string, number>();
  const bump = (m: Map<string, number>, node: string | undefined) => node !== undefined && m.set(node, (m.get(node) ?? 0) + 1);
  for (const s of catalog.services()) {
    for (const i of catalog.service(s.name).instances) {
      bump(instances, owner(i.id));
      // An agent runs its instances' checks on its own host; no server does.
      if (i.source !== 'agent') for (const c of i.checks) if (isActiveKind(c.kind)) bump(checks, owner(c.id));
    }
  }
  const counts = (node: string) => ({ instances: instances.get(node) ?? 0, checks: checks.get(node) ?? 0 });
  if (!cluster) {
    return [{ node: info.node, httpUrl: selfUrl, version: info.version, startedAt: info.startedAt, joinedIndex: 0, self: true, leader: true, ...counts(info.node), lastSeenAt: clock.now() }];
  }
  const leader = cluster.leader()?.node;
  return Promise.all(
    cluster.members().map(async (m) => ({
      node: m.node,
      httpUrl: m.httpUrl,
      version: m.version,
      startedAt: m.startedAt,
      joinedIndex: m.joinedIndex,
      self: m.node === cluster.self,
      leader: m.node === leader,
      ...counts(m.node),
      lastSeenAt: await lastRenewal(deps.store, m.lease, clock),
    })),
  );
}

/** A lease's remaining time counts down from its last renewal, which is when its holder was last heard from. */
async function lastRenewal(store: Store, lease: number, clock: Clock): Promise<number | null> {
  try {
    const l = await store.leaseInfo(lease);
    return l ? clock.now() - Math.max(0, l.ttlMs - l.remainingMs) : null;
  } catch (err) {
    if (isBeaconError(err) && err.code === 'not_found') return null;
    throw err;
  }
}
