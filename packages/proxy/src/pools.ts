import type { EndpointState } from '@beacon/client';
import { HttpPool, type HttpPoolOptions } from './upstream-http.js';

/**
 * Keep-alive connection pools to instances, one per `host:port`, made on first use. An instance
 * that leaves keeps its pool until its idle connections time out; `close` ends them all.
 *
 * @example
 * const pools = new Pools();
 * pools.get(endpoint).request(req, handler);
 */
export class Pools {
  private readonly byTarget = new Map<string, HttpPool>();

  constructor(private readonly options: Partial<HttpPoolOptions> = {}) {}

  /** The pool of an instance's address, keyed by the origin string the endpoint keeps ready. */
  get(ep: EndpointState): HttpPool {
    const key = ep.origin('http:');
    let pool = this.byTarget.get(key);
    if (!pool) {
      const { host, port } = ep.target;
      this.byTarget.set(key, (pool = new HttpPool(host, port, this.options)));
    }
    return pool;
  }

  close(): void {
    for (const p of this.byTarget.values()) p.close();
    this.byTarget.clear();
  }
}
