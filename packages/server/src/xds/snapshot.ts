import type { CatalogReader } from '../catalog/types.js';
import type { PolicyProblem } from './policy.js';
import type { ResourceType } from './protos.js';
import { buildService, ingressRoutes, INGRESS, PROFILES, resource, type Profile, type Resource } from './resources.js';

export interface SnapshotLogger {
  warn(obj: unknown, msg?: string): void;
}

/**
 * Every resource derived from the catalog, per profile: rebuilt one service at a time when the
 * catalog says it changed, so a push costs the changed services, not the whole catalog.
 */
export class XdsSnapshot {
  /** Profile → type → name → resource. */
  private readonly byProfile = new Map<Profile, Record<ResourceType, Map<string, Resource>>>();
  /** Service → the resource names it produced, to drop a named port that went away. */
  private readonly namesOf = new Map<string, Record<ResourceType, string[]>>();
  /**
   * Services that ever had an instance since start. One that empties keeps its resources with an
   * empty ClusterLoadAssignment: grpc-js never re-adds a deleted resource that comes back identical.
   */
  private readonly knownServices = new Set<string>();
  private ingressRoute: Resource | undefined;
  /**
   * Bumped per profile and type whenever a resource of it changes: a stream whose answer was made
   * at the current generation need not make it again (most pushes change endpoints only).
   */
  private readonly generations = new Map<string, number>();

  constructor(
    private readonly catalog: Pick<CatalogReader, 'services' | 'service'>,
    private readonly logger?: SnapshotLogger,
  ) {
    for (const p of PROFILES) this.byProfile.set(p, { listener: new Map(), route: new Map(), cluster: new Map(), endpoint: new Map() });
    this.update(catalog.services().map((s) => s.name));
  }

  /** Rebuilds the named services from the catalog. */
  update(services: Iterable<string>): void {
    let added = false;
    for (const name of services) {
      const entry = this.catalog.service(name);
      if (entry.instances.length === 0 && !this.knownServices.has(name)) continue;
      if (!this.knownServices.has(name)) {
        this.knownServices.add(name);
        added = true;
      }
      for (const profile of PROFILES) {
        const built = buildService(entry, profile);
        const maps = this.byProfile.get(profile)!;
        const before = this.namesOf.get(`${profile}/${name}`);
        const after = { listener: [], route: [], cluster: [], endpoint: [] } as Record<ResourceType, string[]>;
        for (const type of Object.keys(maps) as ResourceType[]) {
          const was = new Map<string, string>();
          for (const old of before?.[type] ?? []) {
            was.set(old, maps[type].get(old)!.hash);
            maps[type].delete(old);
          }
          let changed = was.size !== built.resources[type].length;
          for (const r of built.resources[type]) {
            maps[type].set(r.name, r);
            after[type].push(r.name);
            if (was.get(r.name) !== r.hash) changed = true;
          }
          if (changed) this.bump(profile, type);
        }
        this.namesOf.set(`${profile}/${name}`, after);
        if (profile === 'grpc') this.report(name, built.problems, built.skipped);
      }
    }
    if (added || !this.ingressRoute) {
      this.ingressRoute = resource('route', INGRESS, ingressRoutes(this.known));
      this.bump('envoy', 'route');
    }
  }

  /** Changes whenever a resource of this profile and type does. */
  generation(profile: Profile, type: ResourceType): number {
    return this.generations.get(`${profile}/${type}`) ?? 0;
  }

  private bump(profile: Profile, type: ResourceType): void {
    const key = `${profile}/${type}`;
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
  }

  /** The resources of one type for a profile, by name. */
  resources(profile: Profile, type: ResourceType): ReadonlyMap<string, Resource> {
    return this.byProfile.get(profile)![type];
  }

  /** Services that ever had an instance since start, sorted: those the ingress route has a virtual host for. */
  get known(): string[] {
    return [...this.knownServices].sort();
  }

  /** Envoy's ingress route configuration: a virtual host per known service. */
  get ingress(): Resource {
    return this.ingressRoute!;
  }

  private report(service: string, problems: PolicyProblem[], skipped: string[]): void {
    for (const p of problems) this.logger?.warn({ service, key: p.key, value: p.value }, `xDS: service meta ${p.key} ignored: ${p.reason}`);
    if (skipped.length > 0) this.logger?.warn({ service, instances: skipped }, 'xDS: instances without an IP-literal address left out of the endpoints');
  }
}
