import { describe, expect, it } from 'vitest';
import { applyFailoverFlags, listenFlag, parseConfig, type ProxyConfig } from './config.js';

const err = (text: string) => {
  try {
    parseConfig(text, 'proxy.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};

describe('proxy configuration', () => {
  it('reads YAML and JSON alike', () => {
    const yaml = parseConfig('listeners:\n  - listen: 127.0.0.1:15001\n    service: payments\n', 'p.yaml');
    const json = parseConfig('{"listeners":[{"listen":"127.0.0.1:15001","service":"payments"}]}', 'p.json');
    expect(yaml).toEqual(json);
  });

  it('names the file, the line and the key of every mistake', () => {
    expect(err('listeners:\n  - listen: 127.0.0.1:1\n    protocol: udp\n    service: x\n')).toBe("proxy.yaml:3: listeners/0/protocol: must be one of 'http', 'tcp', got \"udp\"");
    expect(err('listeners:\n  - listen: 127.0.0.1:1\n    service: x\n    policy:\n      balancer: fastest\n')).toMatch(/^proxy\.yaml:5: listeners\/0\/policy\/balancer: must be one of 'round-robin', /);
    expect(err('listeners:\n  - listen: 127.0.0.1:1\n    service: x\n    colour: red\n')).toBe('proxy.yaml:4: listeners/0/colour: unknown key');
    expect(err('listeners:\n  - listen: 127.0.0.1:1\n    service: Bad_Name\n')).toMatch(/^proxy\.yaml:3: listeners\/0\/service: .*a service name/);
    expect(err('listeners:\n  - listen: nowhere\n    service: x\n')).toMatch(/^proxy\.yaml:2: listeners\/0\/listen: "nowhere" is not HOST:PORT/);
    expect(err('listeners:\n  - listen: 127.0.0.1:1\n    protocol: tcp\n    routes:\n      - service: x\n')).toBe('proxy.yaml:5: listeners/0/routes: a tcp listener forwards to one service (give service, not routes)');
    expect(err('listeners:\n  - listen: 127.0.0.1:1\n    routes:\n      - service: x\n        stripPrefix: true\n')).toBe('proxy.yaml:5: listeners/0/routes/0/stripPrefix: needs match.pathPrefix');
    const route = (extra: string) => err(`listeners:\n  - listen: 127.0.0.1:1\n    routes:\n      - service: x\n${extra}`);
    expect(route('        failover: { nearest: 0 }\n')).toBe('proxy.yaml:5: listeners/0/routes/0/failover/nearest: expected integer to be greater or equal to 1');
    expect(route('        failover:\n          datacenters: [eu-west, EU]\n')).toMatch(/^proxy\.yaml:6: listeners\/0\/routes\/0\/failover\/datacenters\/1: .*\(a datacenter name/);
    expect(route('        failover: {}\n')).toBe('proxy.yaml:5: listeners/0/routes/0/failover: give nearest: N and/or datacenters: [...]');
    expect(route('        dc: eu-west\n        failover: { nearest: 1 }\n')).toBe(
      "proxy.yaml:6: listeners/0/routes/0/failover: give dc or failover, not both: failover starts from the server's own datacenter",
    );
    expect(err('listeners:\n  - listen: 127.0.0.1:1\n    dc: eu-west\n    routes:\n      - service: x\n')).toBe('proxy.yaml:3: listeners/0/dc: goes with service; give each route its own');
    expect(err('listeners: [\n')).toMatch(/^proxy\.yaml:2: /);
    expect(err('zone: a\n')).toMatch(/^proxy\.yaml:1: listeners: expected required property/);
  });

  it('reads --listen flags', () => {
    expect(listenFlag('127.0.0.1:15001=payments')).toEqual({ listen: '127.0.0.1:15001', protocol: 'http', service: 'payments' });
    expect(listenFlag('[::1]:15002=tcp:postgres')).toEqual({ listen: '[::1]:15002', protocol: 'tcp', service: 'postgres' });
    expect(listenFlag('127.0.0.1:15001=payments@eu-west')).toEqual({ listen: '127.0.0.1:15001', protocol: 'http', service: 'payments', dc: 'eu-west' });
    expect(listenFlag('127.0.0.1:15002=tcp:postgres@eu-west')).toMatchObject({ protocol: 'tcp', service: 'postgres', dc: 'eu-west' });
    expect(() => listenFlag('127.0.0.1:15001=payments@')).toThrow(/"" is not a datacenter name/);
    expect(() => listenFlag('127.0.0.1:15001')).toThrow(/ADDRESS:PORT=SERVICE/);
    expect(() => listenFlag('127.0.0.1:15001=udp:dns')).toThrow(/not http or tcp/);
  });

  it('applies --failover SERVICE=POLICY to the listeners and routes of SERVICE that say nothing of DCs', () => {
    const config: ProxyConfig = {
      listeners: [
        listenFlag('127.0.0.1:0=web'),
        listenFlag('127.0.0.1:0=web@eu-west'),
        { listen: '127.0.0.1:0', routes: [{ service: 'web' }, { service: 'web', failover: { datacenters: ['ap'] } }, { service: 'api' }] },
      ],
    };
    applyFailoverFlags(config, ['web=nearest:2,us-east']);
    expect(config.listeners[0]!.failover).toEqual({ nearest: 2, datacenters: ['us-east'] });
    expect(config.listeners[1]!.failover).toBeUndefined();
    expect(config.listeners[2]!.routes!.map((r) => r.failover)).toEqual([{ nearest: 2, datacenters: ['us-east'] }, { datacenters: ['ap'] }, undefined]);
    applyFailoverFlags(config, ['api=eu-west']);
    expect(config.listeners[2]!.routes![2]!.failover).toEqual({ datacenters: ['eu-west'] });
    expect(() => applyFailoverFlags(config, ['db=nearest:1'])).toThrow(/no listener or route sends to db/);
    expect(() => applyFailoverFlags(config, ['nearest:1'])).toThrow(/use SERVICE=nearest:N/);
    expect(() => applyFailoverFlags(config, ['web=nearest'])).toThrow(/write nearest:N/);
  });
});
