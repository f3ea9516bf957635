import type { Logger } from 'pino';
import type { AccessLogLevel } from './config.js';
import type { ProxyRequest } from './downstream.js';

/** One line per request or connection, through pino, at the configured level (or none). */
export interface AccessLog {
  /** `dc`: the datacenter the instance was in, for routes that name one or fail over (else undefined). */
  request(req: ProxyRequest, status: number, ms: number, route: string, instance: string, tries: number, dc: string | undefined, reply?: string): void;
  connection(listener: string, client: string, route: string, instance: string, ms: number, bytesIn: number, bytesOut: number, reply?: string, dc?: string): void;
}

/**
 * An access log writing to `logger` at `level`; `off` writes nothing and costs nothing, and no
 * line object is built while the logger's level is above `level`.
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
        request(req, status, ms, route, instance, tries, dc, reply) {
          if (!enabled()) return;
          const h = req.head;
          write({ method: h.method, host: h.host, path: h.target, status, ms: Math.round(ms * 1000) / 1000, route, instance, ...(dc !== undefined ? { dc } : {}), tries, client: req.remoteAddress, ...(reply ? { reply } : {}) }, 'request');
        },
        connection(listener, client, route, instance, ms, bytesIn, bytesOut, reply, dc) {
          if (!enabled()) return;
          write({ listener, client, route, instance, ...(dc !== undefined ? { dc } : {}), ms: Math.round(ms), bytesIn, bytesOut, ...(reply ? { reply } : {}) }, 'connection');
        },
      };
    }
  }
}
