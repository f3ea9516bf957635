import type { Clock } from '@beacon/core';
import { parseHostPort } from '../addr.js';
import { allowed } from '../acl/decide.js';
import { ALLOW_ALL, type Authorizer } from '../acl/types.js';
import { RESOURCE_TYPES, resourceTypeOf, TYPE_URLS, type ResourceType } from './protos.js';
import { deniedTarget, ingressListener, ingressRoutes, INGRESS, resource, versionOf, type Profile, type Resource } from './resources.js';
import type { XdsSnapshot } from './snapshot.js';

/** A DiscoveryRequest as proto-loader decodes it (keepCase, enums as strings). */
export interface DiscoveryRequest {
  version_info?: string;
  node?: NodeMessage | null;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

export interface NodeMessage {
  id?: string;
  cluster?: string;
  user_agent_name?: string;
  /** A Struct: protobufjs's built-in google/protobuf/struct.proto names Value's fields in camelCase, whatever keepCase says. */
  metadata?: { fields?: Record<string, { stringValue?: string; kind?: string }> } | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: Resource['any'][];
  type_url: string;
  nonce: string;
}

/** The node metadata keys Beacon reads (docs/xds.md, "Bootstrap"). */
export const NODE_META = { profile: 'beacon.profile', ingress: 'beacon.ingress' } as const;
/** Resource names one request may subscribe to (a service has a name per named port). */
export const MAX_NAMES = 10_000;
/** What a client may make this server keep and log of its own text (node id, NACK message), in characters. */
const MAX_TEXT = 1024;
const DEFAULT_INGRESS = { host: '127.0.0.1', port: 15001 };

interface Mark {
  version: string;
  nonce: string;
  at: number;
}

interface TypeState {
  /** LDS/CDS asked with no names: every resource of the type. */
  wildcard: boolean;
  names: Set<string>;
  sent?: Mark;
  ack?: Mark;
  nack?: Mark & { message: string };
  nacks: number;
  /** The snapshot generation `sent` was made from. */
  generation?: number;
}

/** One client as the admin endpoint shows it. */
export interface XdsClientInfo {
  stream: number;
  peer: string;
  node: { id: string; cluster: string; userAgent: string };
  profile: Profile;
  /** The AccessorID of the stream's token (`anonymous` without one, `acl-disabled` with ACLs off); never the secret. */
  accessor: string;
  connectedAt: number;
  types: {
    type: ResourceType;
    subscribed: string[] | '*';
    sent?: Mark;
    ack?: Mark;
    nack?: Mark & { message: string };
    nacks: number;
  }[];
}

export interface StreamEvents {
  sent(type: ResourceType, count: number): void;
  acked(type: ResourceType): void;
  nacked(info: { stream: number; node: string; type: ResourceType; version: string; nonce: string; message: string }): void;
  /** A request the stream could not use (unknown type, bad node metadata): said once per stream. */
  refused(info: { stream: number; node: string; reason: string }): void;
}

/**
 * The state of the world protocol for one ADS stream: subscriptions, nonces, ACK and NACK per
 * type. A NACK leaves the stream on its last good configuration: the same content is not sent
 * again, only a change (or a new subscription) makes a new response.
 */
export class XdsStream {
  private readonly types = new Map<ResourceType, TypeState>();
  private nonce = 0;
  private node: NodeMessage = {};
  private profile: Profile = 'grpc';
  private ingress: Resource | undefined;
  /** Reasons already reported on this stream (16 at most): a client repeating a bad request is logged once. */
  private readonly refusals = new Set<string>();
  readonly connectedAt: number;
  private authz: Authorizer;
  /** The ACL decision per service name for {@link authz}: asked once per name, not once per push. */
  private readonly readable = new Map<string, boolean>();

  constructor(
    readonly id: number,
    readonly peer: string,
    private readonly deps: {
      snapshot: XdsSnapshot;
      clock: Clock;
      send: (res: DiscoveryResponse) => void;
      events: StreamEvents;
      /** The stream's token: it is sent only services it may read (`service:S read`). Default: everything (ACLs off). */
      authz?: Authorizer;
    },
  ) {
    this.connectedAt = deps.clock.now();
    this.authz = deps.authz ?? ALLOW_ALL;
  }

  get accessorId(): string {
    return this.authz.accessorId;
  }

  /**
   * The token's rights changed: every type is worked out again and sent where what the stream may
   * see is different now (a service it lost reads as absent, one it gained appears).
   */
  reauthorize(authz: Authorizer): void {
    this.authz = authz;
    this.readable.clear();
    for (const st of this.types.values()) st.generation = undefined;
    this.push();
  }

  onRequest(req: DiscoveryRequest): void {
    if (req.node && this.types.size === 0) this.setNode(req.node);
    const type = resourceTypeOf(req.type_url ?? '');
    if (!type) {
      this.refuse({ stream: this.id, node: this.nodeId, reason: `unknown resource type ${JSON.stringify(req.type_url)}` });
      return;
    }
    let st = this.types.get(type);
    const nonce = req.response_nonce ?? '';
    // A reply to an older response: a newer one is on its way to the client, which will answer it.
    if (st?.sent && nonce !== '' && nonce !== st.sent.nonce) return;
    if (!st) this.types.set(type, (st = { wildcard: false, names: new Set(), nacks: 0 }));
    const now = this.deps.clock.now();
    let ackedClusters = false;
    if (st.sent && nonce === st.sent.nonce) {
      if (req.error_detail) {
        const message = cap(req.error_detail.message ?? '', MAX_TEXT);
        st.nack = { version: st.sent.version, nonce, at: now, message };
        st.nacks++;
        this.deps.events.nacked({ stream: this.id, node: this.nodeId, type, version: st.sent.version, nonce, message });
      } else {
        st.ack = { version: req.version_info ?? '', nonce, at: now };
        this.deps.events.acked(type);
        ackedClusters = type === 'cluster';
      }
    }
    const names = req.resource_names ?? [];
    if (names.length > MAX_NAMES) {
      this.refuse({ stream: this.id, node: this.nodeId, reason: `${names.length} resource names in one request; at most ${MAX_NAMES}` });
      return;
    }
    // Empty names ask for everything only in a first request for LDS or CDS (the legacy wildcard);
    // later, they unsubscribe from everything (grpc-js sends that when its last watcher goes).
    const first = !st.sent;
    const wildcard = (type === 'listener' || type === 'cluster') && ((first && names.length === 0) || names.includes('*') || (st.wildcard && names.length === 0));
    const changed = wildcard !== st.wildcard || names.length !== st.names.size || names.some((n) => !st.names.has(n));
    st.wildcard = wildcard;
    st.names = new Set(names.filter((n) => n !== '*'));
    // The first request, or a new subscription, always gets an answer (the client waits for it).
    this.respond(type, first || changed);
    // Envoy warms a changed cluster until it gets its endpoints again, even when they did not change.
    if (ackedClusters && this.profile === 'envoy' && this.types.has('endpoint')) this.respond('endpoint', true);
  }

  /** The catalog changed: send every type whose answer is different now. */
  push(): void {
    for (const type of RESOURCE_TYPES) if (this.types.has(type)) this.respond(type, false);
  }

  info(): XdsClientInfo {
    return {
      stream: this.id,
      peer: this.peer,
      node: { id: this.nodeId, cluster: cap(this.node.cluster ?? '', MAX_TEXT), userAgent: cap(this.node.user_agent_name ?? '', MAX_TEXT) },
      profile: this.profile,
      accessor: this.authz.accessorId,
      connectedAt: this.connectedAt,
      types: [...this.types].map(([type, st]) => ({
        type,
        subscribed: st.wildcard ? '*' : [...st.names].sort(),
        ...(st.sent ? { sent: st.sent } : {}),
        ...(st.ack ? { ack: st.ack } : {}),
        ...(st.nack ? { nack: st.nack } : {}),
        nacks: st.nacks,
      })),
    };
  }

  private refuse(info: { stream: number; node: string; reason: string }): void {
    if (this.refusals.has(info.reason) || this.refusals.size >= 16) return;
    this.refusals.add(info.reason);
    this.deps.events.refused(info);
  }

  private get nodeId(): string {
    return cap(this.node.id ?? '', MAX_TEXT);
  }

  private setNode(node: NodeMessage): void {
    this.node = node;
    const meta = (key: string) => node.metadata?.fields?.[key]?.stringValue;
    const asked = meta(NODE_META.profile);
    switch (asked) {
      case 'envoy':
      case 'grpc':
        this.profile = asked;
        break;
      case undefined:
        this.profile = node.user_agent_name === 'envoy' ? 'envoy' : 'grpc';
        break;
      default:
        this.refuse({ stream: this.id, node: this.nodeId, reason: `node metadata ${NODE_META.profile}=${JSON.stringify(asked)}: grpc or envoy expected; serving grpc` });
    }
    if (this.profile !== 'envoy') return;
    let at = DEFAULT_INGRESS;
    const raw = meta(NODE_META.ingress);
    if (raw !== undefined) {
      try {
        at = parseHostPort(raw, `node metadata ${NODE_META.ingress}`);
      } catch (err) {
        this.refuse({ stream: this.id, node: this.nodeId, reason: `${(err as Error).message}; listening on the default` });
      }
    }
    this.ingress = resource('listener', INGRESS, ingressListener(at.host, at.port));
  }

  /** Sends the type's current answer if it differs from the last one sent, or always when `force`. */
  private respond(type: ResourceType, force: boolean): void {
    const st = this.types.get(type)!;
    const generation = this.deps.snapshot.generation(this.profile, type);
    if (!force && st.generation === generation) return;
    st.generation = generation;
    const resources = this.select(type, st);
    const version = versionOf(resources);
    if (!force && st.sent?.version === version) return;
    const nonce = `${this.id}-${++this.nonce}`;
    st.sent = { version, nonce, at: this.deps.clock.now() };
    this.deps.send({ version_info: version, resources: resources.map((r) => r.any), type_url: TYPE_URLS[type], nonce });
    this.deps.events.sent(type, resources.length);
  }

  /**
   * Every subscribed resource that exists and that the token may read, sorted by name. A wildcard
   * lists only what it may read. A proxyless client that names a target it may not read gets
   * {@link deniedTarget} (its calls fail at once, and it learns nothing of the service), and no
   * cluster or endpoints of it.
   */
  private select(type: ResourceType, st: TypeState): Resource[] {
    const { snapshot } = this.deps;
    const all = this.profile === 'envoy' ? this.envoyResources(type) : snapshot.resources('grpc', type);
    const out: Resource[] = [];
    if (st.wildcard) {
      for (const r of all.values()) if (this.mayRead(r.name)) out.push(r);
    } else {
      for (const n of st.names) {
        const r = all.get(n);
        if (this.mayRead(n)) {
          if (r) out.push(r);
        } else if (this.profile === 'grpc' && (type === 'listener' || type === 'route')) {
          out.push(deniedTarget(type, n));
        }
      }
    }
    return out.sort(byName);
  }

  /** Whether the token may read the service a resource is made from (`S`, or `S:port` for a named port). */
  private mayRead(name: string): boolean {
    if (this.authz.management || name === INGRESS) return true;
    let ok = this.readable.get(name);
    if (ok === undefined) {
      const colon = name.indexOf(':');
      ok = allowed(this.authz, 'service', colon < 0 ? name : name.slice(0, colon), 'read');
      // Names come from the client's requests as well: bounded, so made-up names cannot grow it.
      if (this.readable.size >= MAX_NAMES) this.readable.clear();
      this.readable.set(name, ok);
    }
    return ok;
  }

  private envoyResources(type: ResourceType): ReadonlyMap<string, Resource> {
    const { snapshot } = this.deps;
    switch (type) {
      case 'listener':
        return new Map([[INGRESS, this.ingress!]]);
      case 'route':
        return new Map([[INGRESS, this.authz.management ? snapshot.ingress : resource('route', INGRESS, ingressRoutes(snapshot.known.filter((s) => this.mayRead(s))))]]);
      case 'cluster':
      case 'endpoint':
        return snapshot.resources('envoy', type);
    }
  }
}

function byName(a: Resource, b: Resource): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function cap(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
