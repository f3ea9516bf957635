import { allowed } from '../acl/decide.js';
import { ANONYMOUS_ACCESSOR_ID } from '../acl/builtins.js';
import type { AclResolver, Authorizer } from '../acl/types.js';
import type { CatalogChange, CatalogReader, NodeEntry, ServiceEntry, ServiceSummary } from '../catalog/types.js';
import type { DnsCatalog } from './backend.js';

type Source = DnsCatalog & Pick<CatalogReader, 'onChange'>;

/**
 * The catalog as DNS may show it with ACLs on: what the anonymous token may read (DNS carries no
 * token). A service it may not read looks absent (NXDOMAIN), as Consul answers; a node name needs
 * node read. Everything DNS reads goes through here, UDP worker processes included (their
 * replicas are fed from this view), so no worker holds a name it may not answer.
 *
 * When the anonymous token's rights change, every index moves up by one (an epoch added to the
 * catalog's): each cached answer, here and in the workers, fails its validity check at once, and
 * the workers get a fresh snapshot.
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
    const entry = this.catalog.service(name);
    const index = entry.index + this.epoch;
    return this.mayRead(name) ? { ...entry, index } : { name, index, instances: [] };
  }

  services(): ServiceSummary[] {
    return this.catalog.services().filter((s) => this.mayRead(s.name));
  }

  node(name: string): NodeEntry | undefined {
    return allowed(this.authz, 'node', name, 'read') ? this.catalog.node(name) : undefined;
  }

  onChange(listener: (c: CatalogChange) => void): () => void {
    this.listeners.add(listener);
    const off = this.catalog.onChange((c) => listener({ ...c, index: c.index + this.epoch }));
    return () => {
      this.listeners.delete(listener);
      off();
    };
  }

  close(): void {
    this.unsubscribe();
    this.listeners.clear();
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
