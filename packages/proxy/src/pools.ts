import { HttpPool, type HttpPoolOptions } from './upstream-http.js';

/**
 * Keep-alive connection pools to instances, one per `host:port`, made on first use. An instance
 * that leaves keeps its pool until its idle connections time out; `close` ends them all.
 *
 * @example
 * const pools = new Pools();
 * pools.get('10.0.0.7', 8080).request(req, handler);
 */
export class Pools {
  private readonly byTarget = new Map<string, HttpPool>();

  constructor(private readonly options: Partial<HttpPoolOptions> = {}) {}

  get(host: string, port: number): HttpPool {
    const key = `${host}\0${port}`;
    let pool = this.byTarget.get(key);
    if (!pool) this.byTarget.set(key, (pool = new HttpPool(host, port, this.options)));
    return pool;
  }

  close(): void {
    for (const p of this.byTarget.values()) p.close();
    this.byTarget.clear();
  }
}
