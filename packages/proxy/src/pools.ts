import { Pool } from 'undici';

/**
 * Keep-alive connection pools to instances, one per `host:port`, made on first use. An instance
 * that leaves keeps its pool until its idle connections time out; `close` ends them all.
 *
 * @example
 * const pools = new Pools();
 * pools.get('10.0.0.7', 8080).dispatch(options, handler);
 */
export class Pools {
  private readonly byTarget = new Map<string, Pool>();

  constructor(private readonly options: Pool.Options = { keepAliveTimeout: 10_000, pipelining: 1 }) {}

  get(host: string, port: number): Pool {
    const key = `${host}\0${port}`;
    let pool = this.byTarget.get(key);
    if (!pool) {
      const origin = host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
      this.byTarget.set(key, (pool = new Pool(origin, this.options)));
    }
    return pool;
  }

  async close(): Promise<void> {
    const all = [...this.byTarget.values()];
    this.byTarget.clear();
    await Promise.all(all.map((p) => p.destroy()));
  }
}
