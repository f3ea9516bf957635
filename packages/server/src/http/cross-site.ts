import type { onRequestHookHandler } from 'fastify';
import { errors } from '@beacon/core';

/** The header the web UI sends with every write; a page on another site cannot send it without a CORS preflight this server never grants. */
export const UI_WRITE_HEADER = 'x-beacon-ui';

export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses writes a browser makes on behalf of another site. A cross-site HTML form (or a no-cors
 * fetch) can POST `text/plain`, form or multipart bodies to any route without a preflight; Consul's
 * and Eureka's routes read such bodies. Requests from a browser carry `Origin` or `Sec-Fetch-Site`
 * (curl, the SDKs and Consul/Eureka clients send neither, and are not affected): such a write must
 * carry `X-Beacon-UI`, which only a same-origin page can add.
 */
export const crossSiteGuard: onRequestHookHandler = (req, _reply, done) => {
  if (SAFE_METHODS.has(req.method)) return done();
  const h = req.headers;
  const fromBrowser = h.origin !== undefined || h['sec-fetch-site'] !== undefined;
  if (!fromBrowser || h[UI_WRITE_HEADER] !== undefined) return done();
  done(errors.forbidden(`a ${req.method} from a browser page must carry the ${UI_WRITE_HEADER} header (refused so that another site's form cannot write here)`));
};
