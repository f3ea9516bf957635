import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { AccessLogLevel } from './config.js';

/** One line per request or connection, through pino, at the configured level (or none). */
export interface AccessLog {
  request(req: IncomingMessage, status: number, ms: number, route: string, instance: string, tries: number, reply?: string): void;
  connection(listener: string, client: string, route: string, instance: string, ms: number, bytesIn: number, bytesOut: number, reply?: string): void;
}

/**
 * An access log writing to `logger` at `level`; `off` writes nothing and costs nothing.
 *
 * @example
 * const log = accessLog(pino(), 'info');
 */
export function accessLog(logger: Logger, level: AccessLogLevel): AccessLog {
  switch (level) {
    case 'off':
      return { request() {}, connection() {} };
    case 'info':
    case 'debug': {
      const write = logger[level].bind(logger);
      const enabled = () => logger.isLevelEnabled(level);
      return {
        request(req, status, ms, route, instance, tries, reply) {
          if (!enabled()) return;
          write({ method: req.method, host: req.headers.host, path: req.url, status, ms: Math.round(ms * 1000) / 1000, route, instance, tries, client: req.socket.remoteAddress, ...(reply ? { reply } : {}) }, 'request');
        },
        connection(listener, client, route, instance, ms, bytesIn, bytesOut, reply) {
          if (!enabled()) return;
          write({ listener, client, route, instance, ms: Math.round(ms), bytesIn, bytesOut, ...(reply ? { reply } : {}) }, 'connection');
        },
      };
    }
  }
}
