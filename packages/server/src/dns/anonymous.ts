import { allowed } from '../acl/decide.js';
import { ANONYMOUS_ACCESSOR_ID } from '../acl/builtins.js';
import type { AclResolver, Authorizer } from '../acl/types.js';
import type { CatalogChange, CatalogReader, NodeEntry, ServiceEntry, ServiceSummary } from '../catalog/types.js';
import type { DnsCatalog, DnsFederation } from './backend.js';

type Source = DnsCatalog & Pick<CatalogReader, 'onChange'>;

/**
 * The catalog as DNS may show it with ACLs on: what the anonymous token may read (DNS carries no
 * token). A service it may not read looks absent (NXDOMAIN), as Consul answers; a node name needs
 * node read. Everything DNS reads goes through here, UDP worker processes included (their
 * replicas are fed from this view), so no worker holds a name it may not answer.
 *
 * When the anonymous token's rights change, every index moves up by one (an epoch added to the
 * catalog's): each cached answer, here and in the workers, fails its validity check at once, and
 * the workers get a fresh snapshot. Other datacenters and prepared queries go through the same
 * decision ({@link AnonymousDnsCatalog.federation}); their answers are never cached.
 */
export class AnonymousDnsCatalog implements Source {
  private authz: Authorizer;
  private epoch = 0;
  /** The decision per service name, so the fast path asks the rules once per name and ACL change. */
  private readonly readable = new Map<string, boolean>();
  private readonly listeners = new Set<(c: CatalogChange) => void>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly catalog: Source,
    private readonly acl: Pick<AclResolver, 'resolve' | 'onChange'>,
  ) {
    this.authz = acl.resolve(undefined);
    this.unsubscribe = acl.onChange((ids) => {
      if (ids !== 'all' && !ids.has(ANONYMOUS_ACCESSOR_ID)) return;
      this.authz = acl.resolve(undefined);
      this.readable.clear();
      this.epoch++;
      const reset: CatalogChange = { index: this.index, services: new Set(), events: [], instanceIds: new Set(), reset: true };
      for (const l of this.listeners) l(reset);
    });
  }

  get index(): number {
    return this.catalog.index + this.epoch;
  }

  service(name: string): ServiceEntry {
    return this.serviceOf(this.catalog, name, this.epoch);
  }

  services(): ServiceSummary[] {
    return this.catalog.services().filter((s) => this.mayRead(s.name));
  }

  node(name: string): NodeEntry | undefined {
    return this.nodeOf(this.catalog, name);
  }

  onChange(listener: (c: CatalogChange) => void): () => void {
    this.listeners.add(listener);
    const off = this.catalog.onChange((c) => listener({ ...c, index: c.index + this.epoch }));
    return () => {
      this.listeners.delete(listener);
      off();
    };
  }

  /**
   * Other datacenters as DNS may show them: a remote DC's service anonymous may not read looks
   * absent, as a local one does, and so does a prepared query whose service it may not read
   * (Consul runs a query over DNS with the anonymous token; a query's own name grants nothing).
   */
  federation(fed: DnsFederation): DnsFederation {
    return {
      remote: (dc) => {
        const view = fed.remote(dc);
        return view && this.filtered(view);
      },
      query: (name) => {
        const found = fed.query(name);
        return found && this.mayRead(found.service) ? found : undefined;
      },
    };
  }

  close(): void {
    this.unsubscribe();
    this.listeners.clear();
  }

  /** Another DC's view through the same decision; its indexes are its own (its answers are not cached). */
  private filtered(view: DnsCatalog): DnsCatalog {
    return {
      get index() {
        return view.index;
      },
      service: (name) => this.serviceOf(view, name, 0),
      services: () => view.services().filter((s) => this.mayRead(s.name)),
      node: (name) => this.nodeOf(view, name),
    };
  }

  private serviceOf(catalog: DnsCatalog, name: string, epoch: number): ServiceEntry {
    const entry = catalog.service(name);
    const index = entry.index + epoch;
    return this.mayRead(name) ? { ...entry, index } : { name, index, instances: [] };
  }

  private nodeOf(catalog: DnsCatalog, name: string): NodeEntry | undefined {
    return allowed(this.authz, 'node', name, 'read') ? catalog.node(name) : undefined;
  }

  private mayRead(service: string): boolean {
    let ok = this.readable.get(service);
    if (ok === undefined) {
      ok = allowed(this.authz, 'service', service, 'read');
      // Names come from queries: bound the memo so a scan of made-up names cannot grow it.
      if (this.readable.size >= 10_000) this.readable.clear();
      this.readable.set(service, ok);
    }
    return ok;
  }
}
