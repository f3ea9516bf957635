export { createDnsServer, type DnsServer, type DnsServerOptions } from './server.js';
export { parseDnsConfig, serviceTtlFor, DNS_DEFAULTS, type DnsConfig, type DnsConfigInput, type TtlRules } from './config.js';
export { DnsEngine, type DnsLogger, type DnsStats } from './engine.js';
export type { DnsCatalog } from './backend.js';
export { chain as dnsChain, DnsRequest, type Plugin as DnsPlugin, type Handler as DnsHandler, type DnsResult } from './chain.js';
