import { describe, expect, it } from 'vitest';
import * as packet from 'dns-packet';
import { MessageWriter } from './writer.js';
import { decode } from '../../test/dns-fixtures.js';
import type { ResourceRecord } from './records.js';

const question = (name: string, qtype = 33) => {
  const labels = name.split('.');
  const wire = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, qtype >> 8, qtype & 255, 0, 1])]);
  return { wire, labels };
};

const srv = (i: number): ResourceRecord[] => [
  { name: 'web.service.consul', ttl: 5, data: { type: 'SRV', priority: 1, weight: 1, port: 8000 + i, target: `0a00000${i}.addr.dc1.consul` } },
];

describe('MessageWriter', () => {
  it('compresses owner names and lets glue point into SRV targets, which stay uncompressed', () => {
    const w = new MessageWriter();
    const answer = [1, 2, 3].flatMap(srv);
    const additional: ResourceRecord[] = [1, 2, 3].map((i) => ({ name: `0a00000${i}.addr.dc1.consul`, ttl: 5, data: { type: 'A', address: Buffer.from([10, 0, 0, i]) } }));
    const { bytes, truncated } = w.encode({ flags: 0x0400, rcode: 0, question: question('web.service.consul'), sections: { answer, authority: [], additional } });
    expect(truncated).toBe(false);
    const m = decode(bytes);
    expect(m.flag_aa).toBe(true);
    expect(m.answers!.map((a) => `${a.name} ${(a as packet.SrvAnswer).data.target}`)).toEqual([1, 2, 3].map((i) => `web.service.consul 0a00000${i}.addr.dc1.consul`));
    expect(m.additionals!.map((a) => `${a.name} ${(a as { data: string }).data}`)).toEqual([1, 2, 3].map((i) => `0a00000${i}.addr.dc1.consul 10.0.0.${i}`));
    // Every SRV target is written out in full: no pointer byte inside any SRV RDATA.
    const off = bytes.indexOf(Buffer.from('0a000001'));
    expect([...bytes.subarray(off + 8, off + 8 + 17)]).toEqual([4, ...Buffer.from('addr'), 3, ...Buffer.from('dc1'), 6, ...Buffer.from('consul'), 0]);
    // Owner names and glue are 2-byte pointers: 12 + question 24 + 3 × (12 + 6 + 26) + 3 × (2 + 10 + 4).
    expect(bytes.length).toBe(12 + 24 + 3 * 44 + 3 * 16);
  });

  it('stops adding records at the size limit and sets TC', () => {
    const w = new MessageWriter(200);
    const answer = Array.from({ length: 20 }, (_, i) => ({ name: 'a.consul', ttl: 0, data: { type: 'A' as const, address: Buffer.from([10, 0, 0, i]) } }));
    const { bytes, truncated } = w.encode({ flags: 0, rcode: 0, question: question('a.consul', 1), sections: { answer, authority: [], additional: [] } });
    expect(truncated).toBe(true);
    expect(bytes.length).toBeLessThanOrEqual(200);
    const m = decode(bytes);
    expect(m.flag_tc).toBe(true);
    expect(m.answers!.length).toBe(Math.floor((200 - 12 - 14) / 16));
  });

  it('encodes TXT, SOA, NS and AAAA the way dns-packet reads them', () => {
    const w = new MessageWriter();
    const { bytes } = w.encode({
      flags: 0,
      rcode: 3,
      question: question('x.consul', 16),
      sections: {
        answer: [{ name: 'x.consul', ttl: 1, data: { type: 'TXT', strings: [Buffer.from('a=b'), Buffer.from('c=')] } }],
        authority: [{ name: 'consul', ttl: 9, data: { type: 'SOA', mname: 'ns.consul', rname: 'hostmaster.consul', serial: 7, refresh: 1, retry: 2, expire: 3, minimum: 9 } }],
        additional: [
          { name: 'consul', ttl: 9, data: { type: 'NS', target: 'ns.consul' } },
          { name: 'ns.consul', ttl: 9, data: { type: 'AAAA', address: Buffer.from('20010db8000000000000000000000001', 'hex') } },
        ],
      },
    });
    const m = decode(bytes);
    expect(m.rcode).toBe('NXDOMAIN');
    expect((m.answers![0] as { data: Buffer[] }).data.map(String)).toEqual(['a=b', 'c=']);
    expect((m.authorities![0] as { data: { serial: number; minimum: number; mname: string } }).data).toMatchObject({ serial: 7, minimum: 9, mname: 'ns.consul' });
    expect((m.additionals![1] as { data: string }).data).toBe('2001:db8::1');
  });

  it('refuses to encode a name with an empty or oversized label', () => {
    const w = new MessageWriter();
    const bad = (name: string) => () =>
      w.encode({ flags: 0, rcode: 0, question: question('a.consul', 5), sections: { answer: [{ name: 'a.consul', ttl: 0, data: { type: 'CNAME', target: name } }], authority: [], additional: [] } });
    expect(bad('a..b')).toThrow();
    expect(bad('x'.repeat(64))).toThrow();
  });
});
