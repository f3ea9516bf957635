import { errors, type CheckSpec, type Clock } from '@beacon/core';
import { Agent, buildConnector } from 'undici';
import type { Dial } from '../dial.js';
import { splitHostPort } from '../addr.js';
import type { CheckRunner, RunnerFactory } from '../types.js';
import { GrpcCheckRunner } from './grpc.js';
import { HttpCheckRunner } from './http.js';
import { ScriptCheckRunner } from './script.js';
import { TcpCheckRunner } from './tcp.js';

export interface CheckRunnersOptions {
  clock: Clock;
  /** Resolves and vets every address a check connects to (a CheckDialer's `dial`). */
  dial: Dial;
  /** Script checks run only when this is true (`--enable-script-checks`). */
  enableScriptChecks?: boolean;
  /**
   * Reuse HTTP connections between runs. Default false, as Consul does: a fresh connection per
   * run also proves the server still accepts connections.
   */
  httpKeepAlive?: boolean;
  /** Timeout when a spec names none. Default 10 s. */
  defaultTimeoutMs?: number;
}

/**
 * Builds one runner per check from its spec. Owns the HTTP connection pools (one verifying TLS,
 * one not, for `tlsSkipVerify`), so `close()` it when the health checker shuts down.
 */
export class CheckRunners implements RunnerFactory {
  private verifying: Agent | undefined;
  private skipping: Agent | undefined;
  private closed = false;

  constructor(private readonly opts: CheckRunnersOptions) {}

  create(spec: CheckSpec): CheckRunner {
    if (this.closed) throw errors.unavailable('the check runners are closed');
    const clock = this.opts.clock;
    const timeoutMs = spec.timeoutMs ?? this.opts.defaultTimeoutMs ?? 10_000;
    switch (spec.kind) {
      case 'ttl':
        throw errors.invalid(`check ${spec.id} is a ttl check; the instance reports it, Beacon does not run it`);
      case 'http':
        if (!spec.url) throw errors.invalid(`check ${spec.id}: http checks need a url`);
        return new HttpCheckRunner(
          { url: spec.url, method: spec.method, headers: spec.headers, body: spec.body, timeoutMs },
          { clock, dispatcher: this.agent(!!spec.tlsSkipVerify) },
        );
      case 'tcp': {
        const hp = this.hostPort(spec);
        return new TcpCheckRunner({ host: hp.host, port: hp.port, timeoutMs }, { clock, dial: this.opts.dial });
      }
      case 'grpc': {
        const hp = this.hostPort(spec);
        // Consul's form `host:port/service` names the service in the target.
        const service = spec.grpcService ?? hp.rest;
        return new GrpcCheckRunner(
          { host: hp.host, port: hp.port, service, useTls: spec.grpcUseTls, tlsSkipVerify: spec.tlsSkipVerify, timeoutMs },
          { clock, dial: this.opts.dial },
        );
      }
      case 'script':
        if (!this.opts.enableScriptChecks)
          throw errors.forbidden(`check ${spec.id}: script checks are disabled; start the server with --enable-script-checks to run them`);
        if (!spec.args?.length) throw errors.invalid(`check ${spec.id}: script checks need args`);
        return new ScriptCheckRunner({ args: spec.args, timeoutMs }, { clock });
    }
  }

  /** Closes the HTTP pools; runs still in flight are ended by their own timeouts or signals. */
  async close(): Promise<void> {
    this.closed = true;
    const agents = [this.verifying, this.skipping].filter((a): a is Agent => !!a);
    this.verifying = this.skipping = undefined;
    await Promise.all(agents.map((a) => a.destroy()));
  }

  private hostPort(spec: CheckSpec): { host: string; port: number; rest: string } {
    const hp = spec.target ? splitHostPort(spec.target) : undefined;
    if (!hp) throw errors.invalid(`check ${spec.id}: ${spec.kind} checks need target host:port`);
    return hp;
  }

  private agent(skipVerify: boolean): Agent {
    const make = (): Agent => {
      const connector = buildConnector({ rejectUnauthorized: !skipVerify });
      return new Agent({
        // pipelining 0 turns keep-alive off in undici.
        pipelining: this.opts.httpKeepAlive ? 1 : 0,
        // Every connection goes through the dialer and to the address it vetted; `host` (and so
        // the Host header and TLS SNI) stays the name from the URL.
        connect: (opts, cb) => {
          const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
          this.opts.dial(opts.hostname, port).then(
            (ip) => connector({ ...opts, hostname: ip }, cb),
            (err: Error) => cb(err, null),
          );
        },
      });
    };
    if (skipVerify) return (this.skipping ??= make());
    return (this.verifying ??= make());
  }
}
