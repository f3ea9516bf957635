import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { decodeSnapshot, encodeSnapshot, restoreSnapshot, SNAPSHOT_MEDIA_TYPE, takeSnapshot } from '../../snapshot/index.js';

type Deps = Pick<ApiDeps, 'store' | 'catalog' | 'clock' | 'snapshotRestored'>;

/** A restore body is read whole (it is checked whole before anything is written). */
export const SNAPSHOT_BODY_LIMIT = 512 * 1024 * 1024;

/**
 * `GET /snapshot` answers a snapshot file, `PUT /snapshot` restores one: mounted under /api/v1
 * and under Consul's /v1, whose snapshot endpoints have the same shape (the body is Beacon's
 * format, not Consul's archive).
 */
export async function snapshotRoutes(app: FastifyInstance, { store, catalog, clock, snapshotRestored }: Deps): Promise<void> {
  // Any content type: `curl --data-binary @file` sends form-urlencoded, and the body is never parsed as such.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: SNAPSHOT_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.get('/snapshot', { schema: { hide: true } }, async (_req, reply) => {
    const snapshot = await takeSnapshot(store, clock);
    reply.type(SNAPSHOT_MEDIA_TYPE).header('x-beacon-index', String(snapshot.header.revision));
    return encodeSnapshot(snapshot);
  });

  app.put('/snapshot', { schema: { hide: true }, bodyLimit: SNAPSHOT_BODY_LIMIT }, async (req) => {
    const snapshot = decodeSnapshot(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
    const index = await restoreSnapshot(store, snapshot, clock);
    // Answer once the catalog shows the restored state, so a read right after sees it.
    await catalog.waitForIndex(index);
    snapshotRestored?.();
    return { index, keys: snapshot.kvs.length, leases: snapshot.leases.length, revision: snapshot.header.revision };
  });
}
