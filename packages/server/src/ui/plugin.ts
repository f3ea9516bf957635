import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '@beacon/core';
import { loadAssets, negotiate, type Asset } from './assets.js';

/**
 * Scripts, styles and data only from this server, nothing inline, no frames, no forms, no base
 * rewrites: a registry string that somehow became markup still could not run or send anything.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface UiOptions {
  /** The built UI (packages/ui/dist); undefined when it is not built, and /ui says so. */
  dir: string | undefined;
}

/** The web UI at /ui (static files, compressed, cached by content), and `/` redirecting there. */
export function uiPlugin(opts: UiOptions) {
  return async (app: FastifyInstance): Promise<void> => {
    let assets: Map<string, Asset> | undefined;
    let loadError: string | undefined;
    try {
      assets = opts.dir === undefined ? undefined : loadAssets(opts.dir);
      if (assets && !assets.has('index.html')) throw new Error(`${opts.dir} has no index.html`);
    } catch (err) {
      assets = undefined;
      loadError = (err as Error).message;
    }

    const serve = (path: string, req: FastifyRequest, reply: FastifyReply) => {
      if (!assets) throw errors.unavailable(`the web UI is not built (${loadError ?? 'packages/ui/dist is missing'}): run npm run build`);
      const a = assets.get(path);
      if (!a) throw errors.notFound(`no file ${path} in the web UI`);
      reply
        .header('Content-Security-Policy', UI_CSP)
        .header('X-Content-Type-Options', 'nosniff')
        .header('Referrer-Policy', 'no-referrer')
        .header('Cross-Origin-Opener-Policy', 'same-origin')
        .header('Vary', 'Accept-Encoding')
        .header('ETag', a.etag)
        // Hashed assets never change; index.html is revalidated so a new build is picked up at once.
        .header('Cache-Control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
        .type(a.type);
      if (req.headers['if-none-match'] === a.etag) return reply.status(304).send();
      const enc = negotiate(req.headers['accept-encoding']);
      const body = a.body(enc);
      if (body !== a.body('identity')) reply.header('Content-Encoding', enc);
      return reply.send(body);
    };

    // The UI's files hold no data (its pages read the API with the user's token): open with --acl.
    const open = { acl: 'open' as const };
    app.get('/', { config: open, schema: { hide: true } }, (_req, reply) => reply.redirect('/ui/'));
    app.get('/ui', { config: open, schema: { hide: true } }, (_req, reply) => reply.redirect('/ui/'));
    app.get('/ui/', { config: open, schema: { hide: true } }, (req, reply) => serve('index.html', req, reply));
    app.get<{ Params: { '*': string } }>('/ui/*', { config: open, schema: { hide: true } }, (req, reply) => serve(req.params['*'], req, reply));
  };
}
