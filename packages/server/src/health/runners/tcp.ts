import { connect } from 'node:net';
import type { Clock } from '@beacon/core';
import { deadline } from '../deadline.js';
import type { CheckResult, CheckRunner } from '../types.js';
import { describeError, finish } from './result.js';

export interface TcpCheckConfig {
  host: string;
  port: number;
  timeoutMs: number;
}

/** A TCP check: passing when a connection is established, critical otherwise. */
export class TcpCheckRunner implements CheckRunner {
  readonly kind = 'tcp' as const;

  constructor(
    private readonly config: TcpCheckConfig,
    private readonly deps: { clock: Clock },
  ) {}

  run(signal?: AbortSignal): Promise<CheckResult> {
    const { clock } = this.deps;
    const { host, port, timeoutMs } = this.config;
    const at = clock.now();
    const label = `TCP connect ${host.includes(':') ? `[${host}]` : host}:${port}`;
    const d = deadline(clock, timeoutMs, signal);
    return new Promise<CheckResult>((resolve) => {
      let done = false;
      const socket = connect({ host, port });
      const end = (r: CheckResult): void => {
        if (done) return;
        done = true;
        d.dispose();
        socket.destroy();
        resolve(r);
      };
      socket.once('connect', () => end(finish(clock, at, 'passing', `${label}: Success`)));
      socket.once('error', (err) => end(finish(clock, at, 'critical', `${label}: ${describeError(err)}`)));
      const onAbort = (): void =>
        end(finish(clock, at, 'critical', d.cause === 'timeout' ? `${label}: timed out after ${timeoutMs} ms` : `${label}: cancelled`));
      if (d.signal.aborted) onAbort();
      else d.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
