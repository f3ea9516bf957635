import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { ApiDeps } from '../deps.js';
import { readErrors, writeErrors } from '../schemas.js';
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

  app.get(
    '/snapshot',
    {
      schema: {
        operationId: 'saveSnapshot',
        tags: ['snapshot'],
        summary: 'Take a snapshot of the catalog, KV and sessions',
        description: 'One consistent read at one store revision (header `X-Beacon-Index`), taken while writes go on. The format is in docs/operations.md (Backups).',
        response: {
          200: { description: 'The snapshot file', content: { [SNAPSHOT_MEDIA_TYPE]: { schema: Type.String({ format: 'binary' }) } } },
          ...readErrors(),
        },
      },
    },
    async (_req, reply) => {
      const snapshot = await takeSnapshot(store, clock);
      reply.type(SNAPSHOT_MEDIA_TYPE).header('x-beacon-index', String(snapshot.header.revision));
      return encodeSnapshot(snapshot);
    },
  );

  app.put(
    '/snapshot',
    {
      bodyLimit: SNAPSHOT_BODY_LIMIT,
      schema: {
        operationId: 'restoreSnapshot',
        tags: ['snapshot'],
        summary: 'Restore a snapshot',
        description:
          'The body is a file from `GET /snapshot` (any content type, up to 512 MiB). Replaces everything the snapshot covers; leased keys get a fresh lease of their TTL. ' +
          'A truncated or damaged file is refused whole (400) and changes nothing. Answers once this server\'s catalog shows the restored state.',
        response: {
          200: Type.Object({
            index: Type.Integer({ description: "the store's revision after the restore" }),
            keys: Type.Integer(),
            leases: Type.Integer(),
            revision: Type.Integer({ description: 'the revision the snapshot was taken at' }),
          }),
          ...writeErrors(),
        },
      },
    },
    async (req) => {
      const snapshot = decodeSnapshot(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
      const index = await restoreSnapshot(store, snapshot, clock);
      // Answer once the catalog shows the restored state, so a read right after sees it.
      await catalog.waitForIndex(index);
      await snapshotRestored?.();
      return { index, keys: snapshot.kvs.length, leases: snapshot.leases.length, revision: snapshot.header.revision };
    },
  );
}
