import type { FastifyInstance } from 'fastify';

/** A route's path pattern as Fastify holds it (`/v1/kv/*`, `/v1/agent/check/pass/:id`), as a matcher for concrete paths. */
function matcher(url: string): RegExp {
  const body = url
    .split('/')
    .map((seg) => (seg === '*' ? '.*' : seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${body}$`);
}

/**
 * Remembers every route registered in this scope (and those below it), so a request that found no
 * route can tell a path Consul does not have (404) from a known path asked with the wrong method:
 * Consul answers that with 405, `method X not allowed` and an `Allow` header, and OPTIONS with 200
 * and the same header. Must be installed before the routes are.
 */
export class MethodTable {
  private readonly routes: { re: RegExp; methods: Set<string> }[] = [];

  install(app: FastifyInstance): void {
    app.addHook('onRoute', (r) => {
      const methods = Array.isArray(r.method) ? r.method : [r.method];
      const re = matcher(r.url);
      let entry = this.routes.find((x) => x.re.source === re.source);
      if (!entry) this.routes.push((entry = { re, methods: new Set() }));
      for (const m of methods) entry.methods.add(m.toUpperCase());
    });
  }

  /** The methods a concrete path is served with (OPTIONS included), or undefined when no route has it. */
  allowed(path: string): string[] | undefined {
    const methods = new Set<string>();
    for (const r of this.routes) if (r.re.test(path)) for (const m of r.methods) methods.add(m);
    if (methods.size === 0) return undefined;
    methods.add('OPTIONS');
    return [...methods].sort();
  }
}
