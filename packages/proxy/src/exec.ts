import { assertServiceName, errors } from '@beacon/core';
import type { ListenerConfig } from './config.js';

/** A service `beacon exec` makes reachable, and the local port (0: any free one). */
export interface ExecService {
  service: string;
  port: number;
}

/**
 * `payments` or `payments=15001`.
 *
 * @example
 * parseExecService('payments=15001'); // { service: 'payments', port: 15001 }
 */
export function parseExecService(flag: string): ExecService {
  const [service = '', port] = flag.split('=', 2);
  assertServiceName(service);
  if (port === undefined) return { service, port: 0 };
  const n = Number(port);
  if (!/^\d{1,5}$/.test(port) || n > 65535) throw errors.invalid(`--service ${JSON.stringify(flag)}: the local port must be 0-65535`);
  return { service, port: n };
}

/** One loopback HTTP listener per service. */
export function execListeners(services: readonly ExecService[]): ListenerConfig[] {
  const seen = new Set<string>();
  for (const s of services) {
    if (seen.has(s.service)) throw errors.invalid(`--service ${s.service} is given twice`);
    seen.add(s.service);
  }
  return services.map((s) => ({ listen: `127.0.0.1:${s.port}`, protocol: 'http', service: s.service }));
}

/**
 * The variables a program finds a service by, as Kubernetes names them for a Service
 * (`PAYMENTS_SERVICE_HOST`, `PAYMENTS_SERVICE_PORT`), plus a ready-made `PAYMENTS_URL`.
 *
 * @example
 * serviceEnv('user-db', '127.0.0.1', 40001); // { USER_DB_SERVICE_HOST: '127.0.0.1', USER_DB_SERVICE_PORT: '40001', USER_DB_URL: 'http://127.0.0.1:40001' }
 */
export function serviceEnv(service: string, host: string, port: number): Record<string, string> {
  const name = service.toUpperCase().replace(/-/g, '_');
  return { [`${name}_SERVICE_HOST`]: host, [`${name}_SERVICE_PORT`]: String(port), [`${name}_URL`]: `http://${host}:${port}` };
}
