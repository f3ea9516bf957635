import { codeForHttpStatus, isBeaconError, type ErrorBody } from '@beacon/core';
import type { FastifyError, FastifyInstance } from 'fastify';

/** The only place HTTP answers are made from errors: every failure becomes `{error:{code,message}}`. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isBeaconError(err)) return reply.status(err.httpStatus).send(err.toJSON());
    if (err.validation) {
      const body: ErrorBody = { error: { code: 'invalid_argument', message: `${err.validationContext ?? 'request'}: ${err.message}` } };
      return reply.status(400).send(body);
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'payload_too_large' : codeForHttpStatus(status);
      return reply.status(status).send({ error: { code, message: err.message } } satisfies ErrorBody);
    }
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'internal', message: 'internal error' } } satisfies ErrorBody);
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } } satisfies ErrorBody);
  });
}
