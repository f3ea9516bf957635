import { isIP } from 'node:net';
import type { Check, CheckStatus, Instance } from '@beacon/core';
import type { CatalogReader } from '../../catalog/types.js';
import type { Registry } from '../../registry/registry.js';
import type { NodeInfo, NodeSource } from '../nodes.js';
import { goDuration } from './duration.js';
import { consulServiceId } from './names.js';

export interface Advertised {
  address: string;
  port: number;
}

/** What the Consul views read: this DC's catalog view, or another DC's followed one. */
export type ViewCatalog = Pick<CatalogReader, 'service' | 'services'> & {
  nodeChecks(node: string): Check[];
  nodeCheck(checkId: string): { createIndex: number; modifyIndex: number } | undefined;
};

export interface ViewDeps {
  catalog: ViewCatalog;
  registry: Pick<Registry, 'liveOutput'>;
  nodes: NodeSource;
  datacenter: string;
  /** The server's own node: Consul's "local agent". */
  serverNode: string;
  /** False for another datacenter's view: this server is not one of its nodes or its `consul` service. */
  local: boolean;
  advertise: () => Advertised;
}

/** Marks node maintenance set by /v1/agent/maintenance on each instance, so service maintenance stays distinct. */
export const NODE_MAINTENANCE_REASON = 'node maintenance';

type Json = Record<string, unknown>;

export interface HealthCheckJson {
  Node: string;
  CheckID: string;
  Name: string;
  Status: CheckStatus;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  Type: string;
  Interval: string;
  Timeout: string;
  ExposedPort: number;
  Definition: Json;
  CreateIndex: number;
  ModifyIndex: number;
}

/**
 * Renders Beacon's catalog in the JSON shapes Consul clients parse: Node, AgentService,
 * ServiceNode (catalog), HealthCheck and health entries. Empty lists are `[]`, never null.
 */
export class ConsulView {
  constructor(private readonly d: ViewDeps) {}

  get datacenter(): string {
    return this.d.datacenter;
  }

  get serverNode(): string {
    return this.d.serverNode;
  }

  /** The server itself as the `consul` service on its node, as Consul lists its servers. */
  consulInstance(): Instance {
    const { address, port } = this.d.advertise();
    const node = this.d.nodes.info(this.d.serverNode);
    return {
      id: 'consul',
      service: 'consul',
      address,
      port,
      ports: {},
      tags: [],
      meta: {},
      weight: 1,
      zone: '',
      node: this.d.serverNode,
      source: 'api',
      checks: [],
      registeredAt: 0,
      change: { kind: 'registered', reason: 'the Beacon server', at: 0 },
      status: 'passing',
      conditions: { ready: true, serving: true, terminating: false },
      createIndex: node.createIndex,
      modifyIndex: node.createIndex,
    };
  }

  /** A service's instances, with the server's own `consul` service added; index per service. */
  service(name: string): { index: number; instances: readonly Instance[] } {
    const entry = this.d.catalog.service(name);
    if (name !== 'consul' || !this.d.local) return entry;
    const self = this.consulInstance();
    return { index: Math.max(entry.index, self.modifyIndex), instances: [self, ...entry.instances.filter((i) => i.id !== 'consul')] };
  }

  /** Every instance the catalog holds, plus the server's `consul` service. */
  *allInstances(): Iterable<Instance> {
    if (this.d.local) yield this.consulInstance();
    for (const s of this.d.catalog.services()) {
      for (const i of this.d.catalog.service(s.name).instances) if (!(s.name === 'consul' && i.id === 'consul')) yield i;
    }
  }

  nodeInfo(name: string, inst?: Instance): NodeInfo {
    if (this.d.local && name === this.d.serverNode && !this.d.nodes.record(name)) {
      const { address } = this.d.advertise();
      return this.d.nodes.info(name, { address, createIndex: 1, modifyIndex: 1 });
    }
    return this.d.nodes.info(name, inst ? { address: inst.address, createIndex: inst.createIndex, modifyIndex: inst.createIndex } : undefined);
  }

  /** Node names: the server, recorded nodes and every node an instance names. */
  nodeNames(): string[] {
    const names = new Set<string>(this.d.local ? [this.d.serverNode] : []);
    for (const n of this.d.nodes.names()) names.add(n);
    for (const i of this.allInstances()) names.add(i.node);
    return [...names].sort();
  }

  nodeExists(name: string): boolean {
    if ((this.d.local && name === this.d.serverNode) || this.d.nodes.record(name)) return true;
    for (const i of this.allInstances()) if (i.node === name) return true;
    return false;
  }

  nodeJson(info: NodeInfo): Json {
    return {
      ID: info.id,
      Node: info.name,
      Address: info.address,
      Datacenter: this.d.datacenter,
      TaggedAddresses: taggedNode(info),
      Meta: info.meta,
      CreateIndex: info.createIndex,
      ModifyIndex: info.modifyIndex,
    };
  }

  /** The AgentService shape (/v1/agent/services and the Service of health entries). */
  agentService(i: Instance, extra: { indexes?: boolean; datacenter?: boolean } = {}): Json {
    const out: Json = {
      ID: consulServiceId(i),
      Service: i.service,
      Tags: i.tags,
      Meta: i.meta,
      Port: i.port,
      Address: i.address,
      TaggedAddresses: taggedService(i),
      Weights: { Passing: i.weight, Warning: 1 },
      EnableTagOverride: false,
    };
    if (extra.datacenter) out.Datacenter = this.d.datacenter;
    if (extra.indexes) {
      out.Proxy = { Mode: '', MeshGateway: {}, Expose: {} };
      out.Connect = {};
      out.PeerName = '';
      out.CreateIndex = i.createIndex;
      out.ModifyIndex = i.modifyIndex;
    }
    return out;
  }

  /** The ServiceNode shape of /v1/catalog/service. */
  serviceNode(i: Instance): Json {
    const n = this.nodeInfo(i.node, i);
    return {
      ID: n.id,
      Node: n.name,
      Address: n.address,
      Datacenter: this.d.datacenter,
      TaggedAddresses: taggedNode(n),
      NodeMeta: n.meta,
      ServiceKind: '',
      ServiceID: consulServiceId(i),
      ServiceName: i.service,
      ServiceTags: i.tags,
      ServiceAddress: i.address,
      ServiceTaggedAddresses: taggedService(i),
      ServiceWeights: { Passing: i.weight, Warning: 1 },
      ServiceMeta: i.meta,
      ServicePort: i.port,
      ServiceSocketPath: '',
      ServiceEnableTagOverride: false,
      ServiceProxy: { Mode: '', MeshGateway: {}, Expose: {} },
      ServiceConnect: {},
      CreateIndex: i.createIndex,
      ModifyIndex: i.modifyIndex,
    };
  }

  /** Node-level checks: `serfHealth` on the server's node, the node checks registered for it, `_node_maintenance` when on. */
  nodeChecks(node: string): HealthCheckJson[] {
    const out: HealthCheckJson[] = [];
    const info = this.d.nodes.info(node);
    if (this.d.local && node === this.d.serverNode) {
      out.push(this.check(node, { id: 'serfHealth', name: 'Serf Health Status', status: 'passing', output: 'Agent alive and reachable', index: info.createIndex }));
    }
    for (const c of this.d.catalog.nodeChecks(node)) {
      const e = this.d.catalog.nodeCheck(c.id);
      out.push(this.checkJson(node, c, undefined, { create: e?.createIndex ?? 1, modify: e?.modifyIndex ?? 1 }));
    }
    if (info.maintenance) {
      out.push(
        this.check(node, {
          id: '_node_maintenance',
          name: 'Node Maintenance Mode',
          status: 'critical',
          notes: info.maintenance.reason,
          output: '',
          index: info.modifyIndex,
        }),
      );
    }
    return out;
  }

  /** The instance's own checks, plus Consul's maintenance check and Beacon's draining check when they apply. */
  serviceChecks(i: Instance): HealthCheckJson[] {
    const out = i.checks.map((c) => this.beaconCheck(i, c));
    if (i.maintenance && !i.maintenance.reason.startsWith(NODE_MAINTENANCE_REASON)) {
      out.push(
        this.check(i.node, {
          id: `_service_maintenance:${consulServiceId(i)}`,
          name: 'Service Maintenance Mode',
          status: 'critical',
          notes: i.maintenance.reason,
          output: '',
          index: i.modifyIndex,
          service: i,
        }),
      );
    }
    if (i.draining) {
      out.push(
        this.check(i.node, {
          id: `_service_draining:${consulServiceId(i)}`,
          name: 'Service Draining',
          status: 'critical',
          notes: i.draining.reason,
          output: 'draining: takes no new traffic',
          index: i.modifyIndex,
          service: i,
        }),
      );
    }
    return out;
  }

  /** What Consul's health endpoints return per instance: node checks first, then the service's. */
  allChecks(i: Instance): HealthCheckJson[] {
    return [...this.nodeChecks(i.node), ...this.serviceChecks(i)];
  }

  healthEntry(i: Instance): Json {
    return { Node: this.nodeJson(this.nodeInfo(i.node, i)), Service: this.agentService(i, { indexes: true }), Checks: this.allChecks(i) };
  }

  beaconCheck(i: Instance, c: Check): HealthCheckJson {
    return this.checkJson(i.node, c, i, { create: i.createIndex, modify: i.modifyIndex });
  }

  /** A Beacon check as Consul shows it; `service` is absent for a node-level check. */
  private checkJson(node: string, c: Check, i: Instance | undefined, index: { create: number; modify: number }): HealthCheckJson {
    const live = this.d.registry.liveOutput(c.id);
    const output = live && live.status === c.status ? live.output : c.output;
    const def: Json = {};
    if (c.url) def.HTTP = c.url;
    if (c.method && c.kind === 'http') def.Method = c.method;
    if (c.headers) def.Header = c.headers;
    if (c.body) def.Body = c.body;
    if (c.tlsSkipVerify) def.TLSSkipVerify = true;
    if (c.kind === 'tcp') def.TCP = c.target;
    if (c.kind === 'grpc') {
      def.GRPC = c.grpcService ? `${c.target}/${c.grpcService}` : c.target;
      def.GRPCUseTLS = !!c.grpcUseTls;
    }
    if (c.args) def.ScriptArgs = c.args;
    if (c.intervalMs) def.Interval = goDuration(c.intervalMs);
    if (c.timeoutMs) def.Timeout = goDuration(c.timeoutMs);
    if (c.ttlMs) def.TTL = goDuration(c.ttlMs);
    if (c.deregisterCriticalAfterMs) def.DeregisterCriticalServiceAfter = goDuration(c.deregisterCriticalAfterMs);
    return {
      Node: node,
      CheckID: c.id,
      Name: c.name,
      Status: c.status,
      Notes: c.notes ?? '',
      Output: output === 'awaiting first result' ? '' : output,
      ServiceID: i ? consulServiceId(i) : '',
      ServiceName: i?.service ?? '',
      ServiceTags: i?.tags ?? [],
      Type: c.kind,
      Interval: c.intervalMs ? goDuration(c.intervalMs) : '',
      Timeout: c.timeoutMs ? goDuration(c.timeoutMs) : '',
      ExposedPort: 0,
      Definition: def,
      CreateIndex: index.create,
      ModifyIndex: index.modify,
    };
  }

  private check(
    node: string,
    c: { id: string; name: string; status: CheckStatus; output: string; notes?: string; index: number; service?: Instance },
  ): HealthCheckJson {
    return {
      Node: node,
      CheckID: c.id,
      Name: c.name,
      Status: c.status,
      Notes: c.notes ?? '',
      Output: c.output,
      ServiceID: c.service ? consulServiceId(c.service) : '',
      ServiceName: c.service?.service ?? '',
      ServiceTags: c.service?.tags ?? [],
      Type: c.id === 'serfHealth' ? '' : 'maintenance',
      Interval: '',
      Timeout: '',
      ExposedPort: 0,
      Definition: {},
      CreateIndex: c.index,
      ModifyIndex: c.index,
    };
  }
}

function taggedNode(n: NodeInfo): Record<string, string> {
  const out: Record<string, string> = { ...n.taggedAddresses };
  const v = isIP(n.address);
  if (v === 4) {
    out.lan ??= n.address;
    out.lan_ipv4 ??= n.address;
    out.wan ??= n.address;
    out.wan_ipv4 ??= n.address;
  } else if (v === 6) {
    out.lan ??= n.address;
    out.lan_ipv6 ??= n.address;
    out.wan ??= n.address;
    out.wan_ipv6 ??= n.address;
  }
  return out;
}

function taggedService(i: Instance): Record<string, { Address: string; Port: number }> {
  const v = isIP(i.address);
  if (v === 4) return { lan_ipv4: { Address: i.address, Port: i.port }, wan_ipv4: { Address: i.address, Port: i.port } };
  if (v === 6) return { lan_ipv6: { Address: i.address, Port: i.port }, wan_ipv6: { Address: i.address, Port: i.port } };
  return {};
}

/** Consul's aggregate: the worst status of a set of checks (maintenance counts as critical). */
export function worstStatus(checks: readonly { Status: CheckStatus }[]): CheckStatus {
  let s: CheckStatus = 'passing';
  for (const c of checks) {
    if (c.Status === 'critical') return 'critical';
    if (c.Status === 'warning') s = 'warning';
  }
  return s;
}
