import type { BeaconHttp } from '@beacon/client/http';
import type { CheckStatus, Instance } from '@beacon/core';
import type { RegistrationInput } from '@beacon/server';

/** The calls an agent makes to its Beacon servers; every failure is a BeaconError. */
export interface AgentApi {
  /** Registers or updates an instance; returns it as stored (check statuses included). */
  register(body: RegistrationInput): Promise<{ instance: Instance; created: boolean }>;
  /** Renews the lease; rejects with `not_found` when the server has forgotten the instance. */
  heartbeat(id: string): Promise<void>;
  report(checkId: string, status: CheckStatus, note: string): Promise<void>;
  drain(id: string, reason: string): Promise<void>;
  deregister(id: string): Promise<void>;
}

const VERB: Record<CheckStatus, string> = { passing: 'pass', warning: 'warn', critical: 'fail' };

/** {@link AgentApi} over the native HTTP API, with BeaconHttp's failover across `--server` URLs. */
export class HttpAgentApi implements AgentApi {
  constructor(private readonly http: Pick<BeaconHttp, 'request'>) {}

  async register(body: RegistrationInput): Promise<{ instance: Instance; created: boolean }> {
    const { body: r } = await this.http.request<{ created: boolean; instance: Instance }>('PUT', '/api/v1/instances', { body });
    return { instance: r.instance, created: r.created };
  }

  async heartbeat(id: string): Promise<void> {
    await this.http.request('PUT', `/api/v1/instances/${encodeURIComponent(id)}/heartbeat`);
  }

  async report(checkId: string, status: CheckStatus, note: string): Promise<void> {
    await this.http.request('PUT', `/api/v1/checks/${encodeURIComponent(checkId)}/${VERB[status]}`, { body: { note } });
  }

  async drain(id: string, reason: string): Promise<void> {
    await this.http.request('PUT', `/api/v1/instances/${encodeURIComponent(id)}/drain`, { body: { reason, enable: true } });
  }

  async deregister(id: string): Promise<void> {
    await this.http.request('DELETE', `/api/v1/instances/${encodeURIComponent(id)}`);
  }
}
