import type { CheckSpec, CheckStatus, InstanceSource } from './model.js';

/**
 * A check as a registration may give it: the check's definition with everything but `kind`
 * optional (defaults are filled by the registry), plus the status it starts in.
 */
export type CheckInput = Pick<CheckSpec, 'kind'> &
  Partial<Omit<CheckSpec, 'kind'>> & {
    /** Status of a new check until its first result; the server default applies when absent. */
    status?: CheckStatus;
  };

/** A registration as it arrives from any front end (HTTP body, SDK, agent file, Consul/Eureka adapter). */
export interface RegistrationInput {
  id?: string;
  service: string;
  address: string;
  port: number;
  ports?: Record<string, number>;
  tags?: string[];
  meta?: Record<string, string>;
  weight?: number;
  zone?: string;
  node?: string;
  source?: InstanceSource;
  ttlMs?: number;
  checks?: CheckInput[];
}

/** Leases and TTL checks: from 1 s (a shorter one lapses between heartbeats) to 24 h. */
export const TTL_BOUNDS = { minMs: 1_000, maxMs: 24 * 3_600_000 } as const;
