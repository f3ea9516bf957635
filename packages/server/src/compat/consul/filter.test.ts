import { describe, expect, it } from 'vitest';
import { applyFilter, evaluate, parseFilter } from './filter.js';

const entry = {
  Node: { Node: 'n1', Meta: { rack: 'r1', 'consul-network-segment': '' } },
  Service: { ID: 'web-1', Service: 'web', Tags: ['v1', 'primary'], Port: 8080, Meta: { version: '1.2.0' }, EnableTagOverride: false },
  Checks: [
    { CheckID: 'serfHealth', Status: 'passing' },
    { CheckID: 'service:web-1', Status: 'warning' },
  ],
};

const ok = (expr: string) => evaluate(parseFilter(expr), entry);

describe('Consul filter expressions', () => {
  it('compares, with values quoted, raw or bare, coerced to the field type', () => {
    expect(ok('Service.Service == "web"')).toBe(true);
    expect(ok('Service.Service == web')).toBe(true);
    expect(ok('Service.Service == `web`')).toBe(true);
    expect(ok('Service.Port == 8080')).toBe(true);
    expect(ok('Service.Port != 8081')).toBe(true);
    expect(ok('Service.EnableTagOverride == false')).toBe(true);
    expect(ok('Service.Meta.version == "1.2.0"')).toBe(true);
    expect(ok('Service.Meta["version"] == "1.2.0"')).toBe(true);
    expect(ok('Node.Meta.missing == ""')).toBe(true);
  });

  it('tests membership, substrings, emptiness and regular expressions', () => {
    expect(ok('"v1" in Service.Tags')).toBe(true);
    expect(ok('Service.Tags contains "primary"')).toBe(true);
    expect(ok('Service.Tags not contains "canary"')).toBe(true);
    expect(ok('"canary" not in Service.Tags')).toBe(true);
    expect(ok('"eb" in Service.Service')).toBe(true);
    expect(ok('version in Service.Meta')).toBe(true);
    expect(ok('Service.Tags is not empty')).toBe(true);
    expect(ok('Node.Meta["consul-network-segment"] is empty')).toBe(true);
    expect(ok('Service.ID matches "^web-[0-9]+$"')).toBe(true);
    expect(ok('Service.ID not matches "^api"')).toBe(true);
  });

  it('matches any element of a list of objects', () => {
    expect(ok('Checks.Status == warning')).toBe(true);
    expect(ok('Checks.Status == critical')).toBe(false);
    expect(ok('Checks.Status != critical')).toBe(true);
    expect(ok('Checks.CheckID contains "service:"')).toBe(true);
  });

  it('combines with and, or, not and parentheses, with not binding tightest', () => {
    expect(ok('Service.Service == web and Service.Port == 8080')).toBe(true);
    expect(ok('Service.Service == api or Service.Port == 8080')).toBe(true);
    expect(ok('not Service.Service == api')).toBe(true);
    expect(ok('not (Service.Service == web and Service.Port == 1)')).toBe(true);
    expect(ok('Service.Service == api and Service.Port == 8080 or "v1" in Service.Tags')).toBe(true);
    expect(ok('"(Service.Service == web)"')).toBe(true);
    const items = [entry, { ...entry, Service: { ...entry.Service, Service: 'api' } }];
    expect(applyFilter(items, parseFilter('Service.Service == api')).map((e) => e.Service.Service)).toEqual(['api']);
  });

  it('refuses malformed expressions, unknown fields and dangerous patterns with a clear error', () => {
    for (const bad of ['', 'Service.Service ==', 'Service.Service = web', '(Service.Port == 1', 'Service.Port == "x"', 'Service.Tags == v1', 'Servic.Name == x', '"a" in', 'Service.ID matches "(a+)+$"']) {
      expect(() => ok(bad), bad).toThrow(/Failed to create boolean expression evaluator|not valid/);
    }
  });
});
