import { describe, expect, it } from 'vitest';
import { parseName } from './names.js';

const p = (name: string, domain = 'consul') => parseName(name ? name.split('.') : [], domain.split('.'), 'dc1');

describe('parseName', () => {
  it('reads every supported form', () => {
    expect(p('consul')).toEqual({ kind: 'apex' });
    expect(p('ns.consul')).toEqual({ kind: 'ns' });
    expect(p('web.service.consul')).toEqual({ kind: 'service', service: 'web', tags: [] });
    expect(p('web.service.dc1.consul')).toEqual({ kind: 'service', service: 'web', tags: [] });
    expect(p('a.b.web.service.consul')).toEqual({ kind: 'service', service: 'web', tags: ['a', 'b'] });
    expect(p('_web._tcp.service.consul')).toEqual({ kind: 'service', service: 'web', tags: [] });
    expect(p('_web._v1.consul')).toEqual({ kind: 'service', service: 'web', tags: ['v1'] });
    expect(p('_web._tcp.dc1.consul')).toEqual({ kind: 'service', service: 'web', tags: [] });
    expect(p('_web._tcp.service.dc1.consul')).toEqual({ kind: 'service', service: 'web', tags: [] });
    expect(p('host-1.node.consul')).toEqual({ kind: 'node', node: 'host-1' });
    expect(p('host.example.node.dc1.consul')).toEqual({ kind: 'node', node: 'host.example' });
    expect(p('0a000001.addr.consul')).toMatchObject({ kind: 'addr' });
    expect(p('web.service.beacon.example', 'beacon.example')).toMatchObject({ kind: 'service', service: 'web' });
    // Another datacenter's services (answered through federation), and prepared queries.
    expect(p('web.service.dc2.consul')).toEqual({ kind: 'service', service: 'web', tags: [], dc: 'dc2' });
    expect(p('_web._tcp.service.eu-west.consul')).toEqual({ kind: 'service', service: 'web', tags: [], dc: 'eu-west' });
    expect(p('_web._tcp.dc2.consul')).toEqual({ kind: 'service', service: 'web', tags: [], dc: 'dc2' });
    expect(p('web-anywhere.query.consul')).toEqual({ kind: 'query', query: 'web-anywhere' });
  });

  it('tells names outside the domain from names inside it that name nothing', () => {
    expect(p('example.com')).toEqual({ kind: 'outside' });
    expect(p('')).toEqual({ kind: 'outside' });
    expect(p('consul.example')).toEqual({ kind: 'outside' });
    for (const n of ['web.consul', 'host.node.dc2.consul', '0a000001.addr.dc2.consul', 'a.b.query.consul', 'web.service.dc_2.consul', 'service.consul', 'x.addr.consul', '0a0000.addr.consul', 'Web_.service.consul', '_web._tcp.foo.bar.consul', 'a.b.c.consul', '\0.service.consul'])
      expect(p(n), n).toEqual({ kind: 'unknown' });
  });
});
