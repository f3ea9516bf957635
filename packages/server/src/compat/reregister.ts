import type { Check, Instance } from '@beacon/core';
import type { CheckInput, RegistrationInput } from '../registry/normalize.js';
import type { Registry, RegisterOptions, RegisterResult } from '../registry/registry.js';

/** A check as a registration would give it, so an instance can be registered again with changes. */
export function checkToInput(c: Check): CheckInput {
  const out: CheckInput = {
    id: c.id,
    name: c.name,
    kind: c.kind,
    role: c.role,
    successesBeforePassing: c.successesBeforePassing,
    failuresBeforeWarning: c.failuresBeforeWarning,
    failuresBeforeCritical: c.failuresBeforeCritical,
  };
  if (c.ttlMs !== undefined) out.ttlMs = c.ttlMs;
  if (c.url !== undefined) out.url = c.url;
  if (c.method !== undefined) out.method = c.method;
  if (c.headers !== undefined) out.headers = c.headers;
  if (c.body !== undefined) out.body = c.body;
  if (c.tlsSkipVerify !== undefined) out.tlsSkipVerify = c.tlsSkipVerify;
  if (c.target !== undefined) out.target = c.target;
  if (c.grpcService !== undefined) out.grpcService = c.grpcService;
  if (c.grpcUseTls !== undefined) out.grpcUseTls = c.grpcUseTls;
  if (c.args !== undefined) out.args = c.args;
  if (c.intervalMs !== undefined) out.intervalMs = c.intervalMs;
  if (c.timeoutMs !== undefined) out.timeoutMs = c.timeoutMs;
  if (c.deregisterCriticalAfterMs !== undefined) out.deregisterCriticalAfterMs = c.deregisterCriticalAfterMs;
  if (c.notes !== undefined) out.notes = c.notes;
  return out;
}

export function toRegistrationInput(inst: Instance): RegistrationInput {
  const out: RegistrationInput = {
    id: inst.id,
    service: inst.service,
    address: inst.address,
    port: inst.port,
    ports: { ...inst.ports },
    tags: [...inst.tags],
    meta: { ...inst.meta },
    weight: inst.weight,
    zone: inst.zone,
    node: inst.node,
    source: inst.source,
    checks: inst.checks.map(checkToInput),
  };
  if (inst.ttlMs !== undefined) out.ttlMs = inst.ttlMs;
  return out;
}

/**
 * Registers an instance again with a change (a check added or removed, metadata). Check states and
 * maintenance survive re-registration in the registry; draining is put back here, since the
 * instance is the same process.
 */
export async function reregister(
  registry: Registry,
  inst: Instance,
  patch: (input: RegistrationInput) => RegistrationInput,
  opts: Pick<RegisterOptions, 'checkTargets'> = {},
): Promise<RegisterResult> {
  const res = await registry.register(patch(toRegistrationInput(inst)), opts);
  if (inst.draining && !res.instance.draining) await registry.setDraining(inst.id, true, inst.draining.reason);
  return res;
}
