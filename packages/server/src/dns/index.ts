export { createDnsServer, type DnsServer, type DnsServerOptions } from './server.js';
export { parseDnsConfig, serviceTtlFor, parseTtlRules, DNS_DEFAULTS, type DnsConfig, type DnsConfigInput, type TtlRules } from './config.js';
export { DnsEngine, type DnsLogger, type DnsStats } from './engine.js';
export { CatalogBackend, type DnsCatalog, type Validity } from './backend.js';
export { chain, DnsRequest, type Plugin, type Handler, type DnsResult, type Answer } from './chain.js';
