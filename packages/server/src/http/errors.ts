import { BeaconError, codeForHttpStatus, errors, isBeaconError, type ErrorBody, type ErrorCode } from '@beacon/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Prefixes whose plugins answer errors as plain text, the way Consul and Eureka do. Only
 * framework errors raised before routing (a malformed URL) need this list: everything routed
 * under these prefixes reaches the plugin's own error handler.
 */
const PLAIN_TEXT_PREFIXES = ['/v1/', '/eureka/'] as const;

/** The catalog code for a failure Fastify raised itself (parsing, routing, validation). */
function frameworkCode(err: FastifyError): ErrorCode {
  if (err.validation) return 'invalid_argument';
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'payload_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    // A path that does not decode, or a path parameter over the router's limit, is a bad argument
    // like any other bad id; answering the catalog's 400 keeps one status per code.
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return 'invalid_argument';
    default:
      return codeForHttpStatus(err.statusCode ?? 500);
  }
}

function frameworkMessage(err: FastifyError, req: FastifyRequest): string {
  if (err.validation) return `${err.validationContext ?? 'request'}: ${err.message}`;
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return `content type ${req.headers['content-type'] ?? '(none)'} is not accepted: send application/json`;
  return err.message;
}

/** Turns any error into a catalog error; `undefined` when it is an unexpected server fault. */
function asBeaconError(err: FastifyError, req: FastifyRequest): BeaconError | undefined {
  if (isBeaconError(err)) return err;
  const status = err.statusCode ?? 500;
  if (!err.validation && (status < 400 || status >= 500)) return undefined;
  return new BeaconError(frameworkCode(err), frameworkMessage(err, req));
}

function sendNative(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = asBeaconError(err, req);
  if (known) return reply.status(known.httpStatus).send(known.toJSON());
  req.log.error({ err }, 'request failed');
  return reply.status(500).send({ error: { code: 'internal', message: 'internal error' } } satisfies ErrorBody);
}

/**
 * Fastify answers a URL it cannot decode before any route or scope is chosen, with its own body;
 * this gives it the shape of the API the path belongs to.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = req.raw.url ?? '/';
  if (!PLAIN_TEXT_PREFIXES.some((p) => path.startsWith(p))) return sendNative(err, req, reply);
  const known = asBeaconError(err, req) ?? errors.invalid(err.message);
  return reply.status(known.httpStatus).type('text/plain; charset=utf-8').send(known.message);
}

/**
 * The only place native HTTP answers are made from errors: every failure becomes `{error:{code,message}}`.
 * `onNotFound` sees every request no route matched (no route's own hooks run for them).
 */
export function installErrorHandling(app: FastifyInstance, onNotFound?: (req: FastifyRequest, reply: FastifyReply) => void): void {
  app.setErrorHandler(sendNative);
  app.setNotFoundHandler((req, reply) => {
    onNotFound?.(req, reply);
    reply.status(404).send(errors.notFound(`no route ${req.method} ${req.url.split('?')[0]}`).toJSON());
  });
}
