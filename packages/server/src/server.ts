import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { systemClock, systemRandom, type CheckStatus, type Clock, type Random } from '@beacon/core';
import { CatalogView } from './catalog/view.js';
import { Registry } from './registry/registry.js';
import { buildHttpApp, type HttpAppOptions } from './http/app.js';
import { ServerMetrics } from './http/metrics.js';
import type { ApiDeps } from './http/deps.js';
import { openEmbeddedStore } from './store/embedded.js';
import type { Store } from './store/types.js';
import { formatHostPort, parseHostPort } from './addr.js';
import { VERSION } from './version.js';

export interface ServerConfig {
  /** Keep everything in memory (nothing written to disk). */
  dev?: boolean;
  /** Directory of the embedded store. Default ./beacon-data. */
  dataDir?: string;
  /** host:port of the HTTP API. Default 127.0.0.1:8500; port 0 picks a free one. */
  httpAddr?: string;
  nodeName?: string;
  initialCheckStatus?: CheckStatus;
  historySize?: number;
  logger?: FastifyBaseLogger;
  clock?: Clock;
  random?: Random;
  /** An already open store (tests, clustered mode); closed with the server. */
  store?: Store;
  plugins?: HttpAppOptions['plugins'];
}

export interface RunningServer {
  httpUrl: string;
  httpAddress: AddressInfo;
  app: FastifyInstance;
  registry: Registry;
  catalog: CatalogView;
  store: Store;
  deps: ApiDeps;
  /** Stops taking requests, ends watches, stops timers and closes the store. */
  close(): Promise<void>;
}

/** The server's composition root: store → catalog view → registry → HTTP. */
export async function startServer(config: ServerConfig = {}): Promise<RunningServer> {
  const clock = config.clock ?? systemClock;
  const random = config.random ?? systemRandom;
  const logger = config.logger;
  const node = config.nodeName ?? hostname();
  let store = config.store;
  if (!store) {
    let path = ':memory:';
    if (!config.dev) {
      const dir = config.dataDir ?? './beacon-data';
      mkdirSync(dir, { recursive: true });
      path = join(dir, 'beacon.db');
    }
    store = await openEmbeddedStore({ path, clock });
  }
  const catalog = new CatalogView({ store, clock, ...(config.historySize ? { historySize: config.historySize } : {}), ...(logger ? { logger } : {}) });
  await catalog.start();
  const registry = new Registry({
    store,
    catalog,
    clock,
    nodeName: node,
    ...(logger ? { logger } : {}),
    ...(config.initialCheckStatus ? { initialCheckStatus: config.initialCheckStatus } : {}),
  });
  registry.start();
  const metrics = new ServerMetrics(catalog);
  const deps: ApiDeps = { registry, catalog, store, clock, random, metrics, info: { version: VERSION, storeKind: store.kind, startedAt: clock.now(), node } };
  const app = await buildHttpApp(deps, { ...(logger ? { logger } : {}), ...(config.plugins ? { plugins: config.plugins } : {}) });
  const { host, port } = parseHostPort(config.httpAddr ?? '127.0.0.1:8500', 'HTTP address');
  try {
    await app.listen({ host, port });
  } catch (err) {
    registry.close();
    await catalog.close();
    await store.close();
    throw err;
  }
  const httpAddress = app.server.address() as AddressInfo;
  const httpUrl = `http://${formatHostPort(httpAddress.address, httpAddress.port)}`;
  let closing: Promise<void> | undefined;
  return {
    httpUrl,
    httpAddress,
    app,
    registry,
    catalog,
    store,
    deps,
    close() {
      closing ??= (async () => {
        await app.close();
        registry.close();
        await catalog.close();
        await store.close();
      })();
      return closing;
    },
  };
}
