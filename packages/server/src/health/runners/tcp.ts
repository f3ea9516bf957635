import { connect, type Socket } from 'node:net';
import type { Clock } from '@beacon/core';
import { deadline } from '../deadline.js';
import type { Dial } from '../dial.js';
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
    private readonly deps: { clock: Clock; dial: Dial },
  ) {}

  run(signal?: AbortSignal): Promise<CheckResult> {
    const { clock } = this.deps;
    const { host, port, timeoutMs } = this.config;
    const at = clock.now();
    const label = `TCP connect ${host.includes(':') ? `[${host}]` : host}:${port}`;
    const d = deadline(clock, timeoutMs, signal);
    return new Promise<CheckResult>((resolve) => {
      let done = false;
      let socket: Socket | undefined;
      const end = (r: CheckResult): void => {
        if (done) return;
        done = true;
        d.dispose();
        socket?.destroy();
        resolve(r);
      };
      const fail = (err: unknown): void => end(finish(clock, at, 'critical', `${label}: ${describeError(err)}`));
      // The address the policy passed is the one dialled: a name is never looked up a second time.
      this.deps.dial(host, port).then((ip) => {
        if (done) return;
        socket = connect({ host: ip, port });
        socket.once('connect', () => end(finish(clock, at, 'passing', `${label}: Success`)));
        socket.once('error', fail);
      }, fail);
      const onAbort = (): void =>
        end(finish(clock, at, 'critical', d.cause === 'timeout' ? `${label}: timed out after ${timeoutMs} ms` : `${label}: cancelled`));
      if (d.signal.aborted) onAbort();
      else d.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
