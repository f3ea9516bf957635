/** Beacon's version, reported by the CLI, /api/v1/status and the Consul-compatible agent. */
export const VERSION = '0.1.0';
