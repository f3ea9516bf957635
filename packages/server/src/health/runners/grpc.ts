import type { Clock } from '@beacon/core';
import { isIP, isIPv6 } from 'node:net';
import { Client, credentials, Metadata, status as GrpcStatus, type ChannelCredentials, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { deadline } from '../deadline.js';
import type { Dial } from '../dial.js';
import { decodeHealthCheckResponse, encodeHealthCheckRequest, HEALTH_CHECK_METHOD, servingStatusName } from '../grpc-health-codec.js';
import type { CheckResult, CheckRunner } from '../types.js';
import { describeError, finish } from './result.js';

export interface GrpcCheckConfig {
  host: string;
  port: number;
  /** Service name sent in the request; empty asks about the server as a whole. */
  service?: string;
  useTls?: boolean;
  tlsSkipVerify?: boolean;
  timeoutMs: number;
}

const CHANNEL_OPTIONS = {
  // Each run gets its own channel and a private subchannel, so no reconnect backoff left by an
  // earlier failure (this check's or another's on the same target) can delay seeing a recovery.
  'grpc.use_local_subchannel_pool': 1,
  'grpc.enable_retries': 0,
  'grpc.service_config_disable_resolution': 1,
  'grpc.max_receive_message_length': 64 * 1024,
} as const;

/** A gRPC check through the standard `grpc.health.v1.Health/Check`: SERVING passing, anything else critical. */
export class GrpcCheckRunner implements CheckRunner {
  readonly kind = 'grpc' as const;
  private readonly address: string;
  private readonly creds: ChannelCredentials;
  /** TLS name and :authority when the target is a name: the channel itself dials an IP. */
  private readonly nameOptions: Record<string, string>;

  constructor(
    private readonly config: GrpcCheckConfig,
    private readonly deps: { clock: Clock; dial: Dial },
  ) {
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    this.address = `${host}:${config.port}`;
    this.creds = config.useTls
      ? credentials.createSsl(null, null, null, config.tlsSkipVerify ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : {})
      : credentials.createInsecure();
    this.nameOptions = isIP(config.host) ? {} : { 'grpc.ssl_target_name_override': config.host, 'grpc.default_authority': this.address };
  }

  run(signal?: AbortSignal): Promise<CheckResult> {
    const { clock } = this.deps;
    const { timeoutMs, port, service = '' } = this.config;
    const at = clock.now();
    const label = `gRPC health ${this.address}${service ? ` service ${JSON.stringify(service)}` : ''}`;
    const d = deadline(clock, timeoutMs, signal);
    return new Promise<CheckResult>((resolve) => {
      let done = false;
      let client: Client | undefined;
      let call: ClientUnaryCall | undefined;
      const end = (r: CheckResult): void => {
        if (done) return;
        done = true;
        d.dispose();
        call?.cancel();
        client?.close();
        resolve(r);
      };
      const onAbort = (): void =>
        end(finish(clock, at, 'critical', d.cause === 'timeout' ? `${label}: timed out after ${timeoutMs} ms` : `${label}: cancelled`));
      if (d.signal.aborted) return onAbort();
      d.signal.addEventListener('abort', onAbort, { once: true });
      this.deps.dial(this.config.host, port).then(
        (ip) => {
          if (done) return;
          // An explicit ipv4:/ipv6: target: grpc-js resolves nothing and reads no scheme (`unix:`) from it.
          const target = isIPv6(ip) ? `ipv6:[${ip}]:${port}` : `ipv4:${ip}:${port}`;
          client = new Client(target, this.creds, { ...CHANNEL_OPTIONS, ...this.nameOptions });
          call = client.makeUnaryRequest(
            HEALTH_CHECK_METHOD,
            (req: string) => encodeHealthCheckRequest(req),
            (buf: Buffer) => decodeHealthCheckResponse(buf),
            service,
            new Metadata(),
            {},
            (err: ServiceError | null, res?: { status: number }) => {
              if (err) {
                const code = GrpcStatus[err.code] ?? String(err.code);
                const hint =
                  err.code === GrpcStatus.UNIMPLEMENTED ? ' (the server does not implement grpc.health.v1)' :
                  err.code === GrpcStatus.NOT_FOUND ? ' (unknown service)' : '';
                end(finish(clock, at, 'critical', `${label}: ${code}: ${err.details || err.message}${hint}`));
                return;
              }
              const s = res?.status ?? 0;
              end(finish(clock, at, s === 1 ? 'passing' : 'critical', `${label}: ${servingStatusName(s)}`));
            },
          );
        },
        (err: unknown) => end(finish(clock, at, 'critical', `${label}: ${describeError(err)}`)),
      );
    });
  }
}
