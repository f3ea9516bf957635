import { inAnswers, type Clock, type Instance } from '@beacon/core';
import type { CatalogReader, NodeEntry } from '../catalog/types.js';
import { serviceTtlFor, type DnsConfig } from './config.js';
import { addressHex, isHostname, type DnsName } from './names.js';
import { ipBytes } from './wire.js';

const NODE_SCANS_PER_SECOND = 200;
const UNCACHED: Validity = { kind: 'uncached' };

/** What the DNS front end reads from the catalog: the narrow part of {@link CatalogReader}. */
export type DnsCatalog = Pick<CatalogReader, 'index' | 'service' | 'services' | 'node'>;

/** What DNS reads of other datacenters: their followed views, and prepared queries (which may fail over to them). */
export interface DnsFederation {
  /** A remote DC's catalog; undefined when the DC is unknown or its view has not arrived. */
  remote(dc: string): DnsCatalog | undefined;
  /** Runs the prepared query named `name`: its service, the instances it answers with and their DC; undefined when no such query. */
  query(name: string): { service: string; datacenter: string; instances: readonly Instance[]; ttl: number | undefined } | undefined;
}

/**
 * What an answer was built from, so a cached answer can be checked on every hit:
 * a service's index moves exactly when that service changes; node answers follow the
 * global index (nodes have no index of their own); `static` answers never change.
 */
export type Validity =
  | { kind: 'service'; service: string; index: number }
  | { kind: 'catalog'; index: number }
  | { kind: 'static' }
  /** Not to be cached (an answer given under load shedding). */
  | { kind: 'uncached' };

export function isValid(v: Validity, catalog: DnsCatalog): boolean {
  switch (v.kind) {
    case 'service':
      return catalog.service(v.service).index === v.index;
    case 'catalog':
      return catalog.index === v.index;
    case 'static':
      return true;
    case 'uncached':
      return false;
  }
}

/** One thing a name resolves to: an instance, a node, or a literal address. */
export interface Endpoint {
  /** 4 or 16 bytes, or undefined when the address is a hostname. */
  ip: Buffer | undefined;
  /** The SRV target: `<hex>.addr.<dc>.<domain>` for an IP, else the hostname. */
  target: string;
  port: number;
  weight: number;
  /** `k=v` strings for TXT. */
  txt: readonly string[];
}

export interface Lookup {
  /** False: NXDOMAIN. True with no endpoint of the asked family: NODATA. */
  exists: boolean;
  endpoints: readonly Endpoint[];
  ttl: number;
  validity: Validity;
}

/**
 * The one backend lookup (CoreDNS `backend_lookup` style): a name resolves to endpoints once,
 * and every record type (A, AAAA, SRV, TXT, ANY) is built from the same list.
 */
export class CatalogBackend {
  private nodeNames: { index: number; byLower: Map<string, string> } | undefined;

  /** Full scans for node names no instance carries (node records only), per second. */
  private scans = { second: -1, left: 0 };

  constructor(
    private readonly catalog: DnsCatalog,
    private readonly config: Pick<DnsConfig, 'domain' | 'datacenter' | 'onlyPassing' | 'serviceTtl' | 'nodeTtl'>,
    private readonly clock: Clock,
    private readonly federation?: DnsFederation,
  ) {
  }

  lookup(name: Extract<DnsName, { kind: 'service' | 'node' | 'addr' | 'query' }>): Lookup {
    switch (name.kind) {
      case 'service':
        return name.dc === undefined ? this.service(name.service, name.tags) : this.remoteService(name.dc, name.service, name.tags);
      case 'query':
        return this.query(name.query);
      case 'node':
        return this.node(name.node);
      case 'addr':
        return {
          exists: true,
          endpoints: [{ ip: name.address, target: this.addrTarget(name.address), port: 0, weight: 1, txt: [] }],
          ttl: this.config.nodeTtl,
          validity: { kind: 'static' },
        };
    }
  }

  private service(service: string, tags: readonly string[]): Lookup {
    const entry = this.catalog.service(service);
    return this.instancesLookup(entry.instances, tags, this.config.datacenter, serviceTtlFor(this.config.serviceTtl, service), { kind: 'service', service, index: entry.index });
  }

  /** Another DC's service, from its followed view: never cached here (its changes do not move this DC's indexes). */
  private remoteService(dc: string, service: string, tags: readonly string[]): Lookup {
    const remote = this.federation?.remote(dc);
    if (!remote) return { exists: false, endpoints: [], ttl: this.config.nodeTtl, validity: UNCACHED };
    return this.instancesLookup(remote.service(service).instances, tags, dc, serviceTtlFor(this.config.serviceTtl, service), UNCACHED);
  }

  /** A prepared query's answer: from whichever DC its failover picked, not cached (it depends on several DCs). */
  private query(name: string): Lookup {
    const found = this.federation?.query(name);
    if (!found) return { exists: false, endpoints: [], ttl: this.config.nodeTtl, validity: UNCACHED };
    return this.instancesLookup(found.instances, [], found.datacenter, found.ttl ?? serviceTtlFor(this.config.serviceTtl, name), UNCACHED);
  }

  private instancesLookup(instances: readonly Instance[], tags: readonly string[], dc: string, ttl: number, validity: Validity): Lookup {
    const endpoints: Endpoint[] = [];
    for (const inst of instances) {
      if (!inAnswers(inst, this.config.onlyPassing) || !hasTags(inst, tags)) continue;
      const ep = this.endpoint(inst, dc);
      if (ep) endpoints.push(ep);
    }
    return { exists: endpoints.length > 0, endpoints, ttl, validity };
  }

  private endpoint(inst: Instance, dc: string): Endpoint | undefined {
    const ip = ipBytes(inst.address);
    let target: string;
    if (ip) target = this.addrTarget(ip, dc);
    else if (isHostname(inst.address)) target = inst.address.toLowerCase().replace(/\.$/, '');
    else return undefined;
    const keys = Object.keys(inst.meta).sort();
    return { ip, target, port: inst.port, weight: inst.weight, txt: keys.map((k) => `${k}=${inst.meta[k]}`) };
  }

  private node(name: string): Lookup {
    const validity: Validity = { kind: 'catalog', index: this.catalog.index };
    const real = this.nodeName(name);
    let node: NodeEntry | undefined;
    if (real !== undefined) node = this.catalog.node(real);
    else if (this.takeScan()) node = this.catalog.node(name);
    // A flood of made-up node names must not turn into a catalog scan each: past the budget,
    // names no instance carries get an NXDOMAIN that is not cached.
    else return { exists: false, endpoints: [], ttl: this.config.nodeTtl, validity: { kind: 'uncached' } };
    if (!node) return { exists: false, endpoints: [], ttl: this.config.nodeTtl, validity };
    const ip = ipBytes(node.address);
    const keys = Object.keys(node.meta).sort();
    const txt = keys.map((k) => `${k}=${node.meta[k]}`);
    const target = ip ? this.addrTarget(ip) : isHostname(node.address) ? node.address.toLowerCase() : '';
    return { exists: true, endpoints: [{ ip, target, port: 0, weight: 1, txt }], ttl: this.config.nodeTtl, validity };
  }

  /**
   * DNS is case-insensitive but node names (often hostnames) need not be lower-case: map the
   * lower-cased names of nodes that hold instances to their real names, once per catalog index.
   */
  private nodeName(lower: string): string | undefined {
    const index = this.catalog.index;
    if (this.nodeNames?.index !== index) {
      const byLower = new Map<string, string>();
      for (const s of this.catalog.services())
        for (const i of this.catalog.service(s.name).instances) if (!byLower.has(i.node.toLowerCase())) byLower.set(i.node.toLowerCase(), i.node);
      this.nodeNames = { index, byLower };
    }
    return this.nodeNames.byLower.get(lower);
  }

  private takeScan(): boolean {
    const second = Math.floor(this.clock.now() / 1000);
    if (second !== this.scans.second) this.scans = { second, left: NODE_SCANS_PER_SECOND };
    if (this.scans.left <= 0) return false;
    this.scans.left--;
    return true;
  }

  private addrTarget(ip: Uint8Array, dc = this.config.datacenter): string {
    return `${addressHex(ip)}.addr.${dc}.${this.config.domain}`;
  }
}

function hasTags(inst: Instance, tags: readonly string[]): boolean {
  for (const t of tags) if (!inst.tags.some((x) => x.toLowerCase() === t)) return false;
  return true;
}
