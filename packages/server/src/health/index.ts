/**
 * Active health checking, as independent pieces with narrow interfaces:
 *
 *   CheckTargetPolicy  registration-time gate (own address / --check-allow CIDRs / script opt-in);
 *                      `asCheckPolicy()` fits RegistryOptions.checkPolicy.
 *   CheckDialer        run-time gate: resolves a target once, vets every address with the
 *                      policy, and hands the runner the one IP to dial.
 *   CheckRunners       RunnerFactory: one CheckRunner per kind (http, tcp, grpc, script), each
 *                      with its own timeout; results never reject.
 *   StatusHandler      thresholds (Consul semantics) + flap damping; pure, clock-driven.
 *   HealthScheduler    timers, in-flight cap, add/update/remove/close; reports every result
 *                      through `onResult` and only status changes through `onStatusChange`.
 *
 * Wiring (composition root): build the policy from flags and hand it to the registry; build
 * CheckRunners and a HealthScheduler whose listener calls `registry.setCheckStatus` on change;
 * add checks from the catalog (`start: 'spread'` for those loaded at startup, `'now'` for new
 * registrations, passing their stored status), remove them when instances leave, and close the
 * scheduler, then the runners, on shutdown.
 */
export * from './types.js';
export * from './output.js';
export * from './deadline.js';
export * from './addr.js';
export * from './grpc-health-codec.js';
export * from './runners/http.js';
export * from './runners/tcp.js';
export * from './runners/grpc.js';
export * from './runners/script.js';
export * from './runners/factory.js';
export * from './thresholds.js';
export * from './flap.js';
export * from './status.js';
export * from './scheduler.js';
export * from './target-policy.js';
export * from './dial.js';
export * from './active-checks.js';
