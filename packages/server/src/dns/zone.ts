import type { CatalogBackend, Endpoint, Lookup, Validity } from './backend.js';
import type { Answer, DnsRequest, Plugin } from './chain.js';
import type { DnsConfig } from './config.js';
import { parseName, type DnsName } from './names.js';
import { emptySections, type ResourceRecord, type Sections } from './records.js';
import { QCLASS, QTYPE, RCODE } from './wire.js';

export interface ZoneOptions {
  backend: CatalogBackend;
  config: Pick<DnsConfig, 'domain' | 'datacenter' | 'nodeTtl' | 'negativeTtl'>;
  /** SOA serial: fixed for the life of the server (nothing transfers the zone). */
  serial: number;
  /** Glue for `ns.<domain>`: the address the server listens on, unless it is a wildcard. */
  nsAddress: Buffer | undefined;
}

const STATIC: Validity = { kind: 'static' };
const NO_WEIGHTS: readonly number[] = [];

/**
 * The authoritative part: names under the domain are answered from the catalog, everything
 * else goes to `next` (the recursor, or REFUSED). NXDOMAIN and NODATA carry the SOA.
 */
export function zonePlugin(opts: ZoneOptions): Plugin {
  const { config, backend } = opts;
  const domainLabels = config.domain.split('.');
  const nsName = `ns.${config.domain}`;
  const soa: ResourceRecord = {
    name: config.domain,
    ttl: config.negativeTtl,
    data: {
      type: 'SOA',
      mname: nsName,
      rname: `hostmaster.${config.domain}`,
      serial: opts.serial >>> 0,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: config.negativeTtl,
    },
  };
  const nsRecord: ResourceRecord = { name: config.domain, ttl: config.nodeTtl, data: { type: 'NS', target: nsName } };
  const glue: ResourceRecord[] = opts.nsAddress
    ? [{ name: nsName, ttl: config.nodeTtl, data: opts.nsAddress.length === 4 ? { type: 'A', address: opts.nsAddress } : { type: 'AAAA', address: opts.nsAddress } }]
    : [];

  const fixed = (rcode: number, validity: Validity, sections: Sections): Answer => ({
    rcode,
    authoritative: true,
    validity,
    weights: NO_WEIGHTS,
    build: () => sections,
  });
  const negative = (rcode: number, validity: Validity): Answer => fixed(rcode, validity, { answer: [], authority: [soa], additional: [] });

  const apex = (qtype: number): Answer => {
    switch (qtype) {
      case QTYPE.SOA:
        return fixed(RCODE.NOERROR, STATIC, { answer: [soa], authority: [], additional: [] });
      case QTYPE.NS:
        return fixed(RCODE.NOERROR, STATIC, { answer: [nsRecord], authority: [], additional: glue });
      // RFC 8482: one RRset, not every one the name has.
      case QTYPE.ANY:
        return fixed(RCODE.NOERROR, STATIC, { answer: [soa], authority: [], additional: [] });
      default:
        return negative(RCODE.NOERROR, STATIC);
    }
  };

  const nsHost = (qtype: number): Answer => {
    const want = glue.filter((g) => qtype === QTYPE.ANY || (qtype === QTYPE.A && g.data.type === 'A') || (qtype === QTYPE.AAAA && g.data.type === 'AAAA'));
    return want.length ? fixed(RCODE.NOERROR, STATIC, { answer: want, authority: [], additional: [] }) : negative(RCODE.NOERROR, STATIC);
  };

  const lookupAnswer = (name: Extract<DnsName, { kind: 'service' | 'node' | 'addr' | 'query' }>, owner: string, qtype: number): Answer => {
    const found = backend.lookup(name);
    if (!found.exists) return negative(RCODE.NXDOMAIN, found.validity);
    switch (qtype) {
      case QTYPE.A:
        return addresses(found, owner, 4) ?? negative(RCODE.NOERROR, found.validity);
      case QTYPE.AAAA:
        return addresses(found, owner, 16) ?? negative(RCODE.NOERROR, found.validity);
      // RFC 8482: one RRset (the addresses a client most likely wants, IPv4 first), so ANY
      // cannot be used to amplify a small query into every record of a name.
      case QTYPE.ANY:
        return addresses(found, owner, 4) ?? addresses(found, owner, 16) ?? negative(RCODE.NOERROR, found.validity);
      case QTYPE.SRV:
        return (name.kind === 'service' || name.kind === 'query' ? srv(found, owner) : undefined) ?? negative(RCODE.NOERROR, found.validity);
      case QTYPE.TXT:
        return txt(found, owner) ?? negative(RCODE.NOERROR, found.validity);
      default:
        return negative(RCODE.NOERROR, found.validity);
    }
  };

  return (next) => (req: DnsRequest) => {
    const { qtype, qclass } = req.query;
    const labels = req.labels();
    const name = parseName(labels, domainLabels, config.datacenter);
    if (name.kind === 'outside') return next(req);
    if (qclass !== QCLASS.IN && qclass !== QCLASS.ANY) return { kind: 'answer', answer: refused(RCODE.REFUSED) };
    if (qtype === QTYPE.AXFR || qtype === QTYPE.IXFR || qtype === QTYPE.MAILA || qtype === QTYPE.MAILB)
      return { kind: 'answer', answer: refused(RCODE.NOTIMP) };
    let answer: Answer;
    switch (name.kind) {
      case 'apex':
        answer = apex(qtype);
        break;
      case 'ns':
        answer = nsHost(qtype);
        break;
      case 'unknown':
        answer = negative(RCODE.NXDOMAIN, STATIC);
        break;
      case 'service':
      case 'query':
      case 'node':
      case 'addr':
        answer = lookupAnswer(name, labels.join('.'), qtype);
        break;
    }
    return { kind: 'answer', answer };
  };
}

/** A non-authoritative refusal (wrong class, zone transfer): no records, cached as static. */
function refused(rcode: number): Answer {
  return { rcode, authoritative: false, validity: STATIC, weights: NO_WEIGHTS, build: emptySections };
}

/** A/AAAA (family 4 or 16), one record per distinct address, weights summed. */
function addresses(found: Lookup, owner: string, family: 4 | 16): Answer | undefined {
  const byIp = new Map<string, { ip: Buffer; weight: number }>();
  for (const ep of found.endpoints) {
    if (!ep.ip || ep.ip.length !== family) continue;
    const k = ep.ip.toString('latin1');
    const cur = byIp.get(k);
    if (cur) cur.weight += ep.weight;
    else byIp.set(k, { ip: ep.ip, weight: ep.weight });
  }
  if (byIp.size === 0) return undefined;
  const list = [...byIp.values()];
  const ttl = found.ttl;
  return {
    rcode: RCODE.NOERROR,
    authoritative: true,
    validity: found.validity,
    weights: list.map((x) => x.weight),
    build(order) {
      const s = emptySections();
      for (const i of order) {
        const { ip } = list[i]!;
        s.answer.push({ name: owner, ttl, data: ip.length === 4 ? { type: 'A', address: ip } : { type: 'AAAA', address: ip } });
      }
      return s;
    },
  };
}

/** SRV: priority 1, weight and port of the instance; the target's address goes in the additional section. */
function srv(found: Lookup, owner: string): Answer | undefined {
  const list = found.endpoints.filter((ep) => ep.target !== '');
  if (list.length === 0) return undefined;
  const ttl = found.ttl;
  return {
    rcode: RCODE.NOERROR,
    authoritative: true,
    validity: found.validity,
    weights: list.map((ep) => ep.weight),
    build(order) {
      const s = emptySections();
      const glued = new Set<string>();
      for (const i of order) {
        const ep: Endpoint = list[i]!;
        s.answer.push({ name: owner, ttl, data: { type: 'SRV', priority: 1, weight: Math.min(ep.weight, 65535), port: ep.port, target: ep.target } });
        if (ep.ip && !glued.has(ep.target)) {
          glued.add(ep.target);
          s.additional.push({ name: ep.target, ttl, data: ep.ip.length === 4 ? { type: 'A', address: ep.ip } : { type: 'AAAA', address: ep.ip } });
        }
      }
      return s;
    },
  };
}

/** TXT: one record per distinct set of `k=v` strings; a string over 255 bytes is split. */
function txt(found: Lookup, owner: string): Answer | undefined {
  const seen = new Set<string>();
  const records: ResourceRecord[] = [];
  for (const ep of found.endpoints) {
    if (ep.txt.length === 0) continue;
    const k = ep.txt.join('\n');
    if (seen.has(k)) continue;
    seen.add(k);
    const strings: Buffer[] = [];
    for (const t of ep.txt) {
      const b = Buffer.from(t, 'utf8');
      for (let i = 0; i < b.length; i += 255) strings.push(b.subarray(i, i + 255));
    }
    records.push({ name: owner, ttl: found.ttl, data: { type: 'TXT', strings } });
  }
  if (records.length === 0) return undefined;
  return {
    rcode: RCODE.NOERROR,
    authoritative: true,
    validity: found.validity,
    weights: NO_WEIGHTS,
    build: () => ({ answer: records, authority: [], additional: [] }),
  };
}
