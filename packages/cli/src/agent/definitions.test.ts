import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckTargetPolicy } from '@beacon/server';
import { parseDefinitionFile, type AgentDefinition, type FileResult, type ParseContext } from './definitions.js';
import { DefinitionSet, readDefinitionDir } from './loader.js';

const ctx: ParseContext = { node: 'host-a', defaultAddress: '10.0.0.5', policy: new CheckTargetPolicy() };

function ok(r: FileResult): AgentDefinition[] {
  if (!r.ok) throw new Error(`expected ${r.file} to parse, got: ${r.error}`);
  return r.definitions;
}

function failure(r: FileResult): string {
  if (r.ok) throw new Error(`expected ${r.file} to be refused`);
  return r.error;
}

describe('Beacon definitions', () => {
  it('reads one JSON definition, fills what the server would, and names the checks the server will', () => {
    const [d, ...rest] = ok(
      parseDefinitionFile(
        'web.json',
        JSON.stringify({
          service: 'web',
          address: '10.0.0.5',
          port: 8080,
          tags: ['v1'],
          meta: { team: 'core' },
          zone: 'eu-1a',
          weight: 3,
          checks: [{ kind: 'http', url: 'http://10.0.0.5:8080/health', intervalMs: 5000 }, { kind: 'ttl', ttlMs: 30000 }],
        }),
        ctx,
      ),
    );
    expect(rest).toEqual([]);
    expect(d!.id).toBe('web-10.0.0.5-8080');
    expect(d!.format).toBe('beacon');
    expect(d!.origin).toBe('web.json');
    expect(d!.body).toMatchObject({ id: 'web-10.0.0.5-8080', service: 'web', node: 'host-a', zone: 'eu-1a', weight: 3, meta: { team: 'core' } });
    expect(d!.body.checks!.map((c) => c.id)).toEqual(['service:web-10.0.0.5-8080:1', 'service:web-10.0.0.5-8080:2']);
    expect(d!.checks[0]).toMatchObject({ kind: 'http', intervalMs: 5000, timeoutMs: 5000, role: 'liveness', failuresBeforeCritical: 1 });
    expect(d!.checks[1]).toMatchObject({ kind: 'ttl', ttlMs: 30000 });
    expect(d!.body).not.toHaveProperty('source');
  });

  it('reads a YAML list with duration strings and short keys, and the default address', () => {
    const yaml = [
      '- service: cache',
      '  port: 6379',
      '  checks:',
      '    - kind: tcp',
      '      target: 10.0.0.5:6379',
      '      interval: 2s',
      '      timeoutMs: 500ms',
      '      role: readiness',
      '- service: api',
      '  id: api-1',
      '  address: 10.0.0.5',
      '  port: 9090',
      '  checks:',
      '    - kind: grpc',
      '      target: 10.0.0.5:9090',
      '      grpcService: api.v1',
      '      headers: { x-probe: yes }',
      '      failuresBeforeCritical: 3',
    ].join('\n');
    const r = parseDefinitionFile('svc.yaml', yaml, ctx);
    // headers make no sense on a gRPC check, but the field itself is valid: the server ignores it.
    const defs = ok(r);
    expect(defs.map((d) => d.id)).toEqual(['cache-10.0.0.5-6379', 'api-1']);
    expect(defs[0]!.body.address).toBe('10.0.0.5');
    expect(defs[0]!.checks[0]).toMatchObject({ kind: 'tcp', intervalMs: 2000, timeoutMs: 500, role: 'readiness' });
    expect(defs[0]!.origin).toBe('svc.yaml: [0]');
    expect(defs[1]!.checks[0]).toMatchObject({ id: 'service:api-1', kind: 'grpc', grpcService: 'api.v1', failuresBeforeCritical: 3, failuresBeforeWarning: 3 });
  });

  it('accepts an empty file as no definitions', () => {
    expect(ok(parseDefinitionFile('empty.yaml', '', ctx))).toEqual([]);
    expect(ok(parseDefinitionFile('empty.json', '[]', ctx))).toEqual([]);
  });

  it('refuses bad files with a message naming the file and the field', () => {
    expect(failure(parseDefinitionFile('a.json', '{"service": "web", "port": 80,', ctx))).toMatch(/^a\.json: invalid JSON: /);
    expect(failure(parseDefinitionFile('a2.json', '{\n  "service": "web",\n  "port": 5s\n}', ctx))).toMatch(/^a2\.json: invalid JSON: .*\(line 3, column 12\)$/);
    expect(failure(parseDefinitionFile('b.yaml', 'service: web\n  port: : 80\n', ctx))).toMatch(/^b\.yaml: invalid YAML: .*\(line \d+, column \d+\)/);
    expect(failure(parseDefinitionFile('c.yaml', 'service: web\nport: "80"\n', ctx))).toBe('c.yaml: port must be an integer');
    expect(failure(parseDefinitionFile('d.json', '[{"service":"web","port":1},{"service":"Web_2","port":2}]', ctx))).toMatch(/^d\.json: \[1\]: service Web_2: invalid service name "Web_2"/);
    expect(failure(parseDefinitionFile('e.json', '{"service":"web","port":1,"checks":[{"kind":"http","url":"http://x/","intervl":"1s"}]}', ctx))).toBe(
      'e.json: checks[0].intervl: unknown check field',
    );
    expect(failure(parseDefinitionFile('f.json', '{"service":"web","port":1,"ttlMs":5000}', ctx))).toMatch(/f\.json: ttlMs is set by the agent/);
    expect(failure(parseDefinitionFile('g.json', '{"service":"web","port":1,"checks":[{"kind":"http","url":"http://10.0.0.5/","interval":"soon"}]}', ctx))).toMatch(
      /g\.json: checks\[0\]\.interval: invalid duration "soon"/,
    );
    expect(failure(parseDefinitionFile('h.json', '[{"service":"web","port":1},{"service":"web","port":1}]', ctx))).toMatch(/h\.json: \[1\]: instance id web-10\.0\.0\.5-1 is defined twice/);
    expect(failure(parseDefinitionFile('web.hcl', 'service { name = "web" }', ctx))).toMatch(/web\.hcl: HCL is not supported/);
    expect(failure(parseDefinitionFile('i.json', '"web"', ctx))).toMatch(/i\.json: expected a service definition/);
  });

  it("applies the agent's own target policy and script opt-in", () => {
    const other = '{"service":"web","address":"10.0.0.5","port":80,"checks":[{"kind":"http","url":"http://10.0.0.9/"}]}';
    expect(failure(parseDefinitionFile('x.json', other, ctx))).toMatch(/x\.json: service web: check service:web-10\.0\.0\.5-80: target 10\.0\.0\.9 is not the instance's address/);
    const allowed = { ...ctx, policy: new CheckTargetPolicy({ allow: ['10.0.0.0/24'] }) };
    expect(ok(parseDefinitionFile('x.json', other, allowed))).toHaveLength(1);
    const script = '{"service":"job","port":0,"checks":[{"kind":"script","args":["/bin/true"]}]}';
    expect(failure(parseDefinitionFile('s.json', script, ctx))).toMatch(/script checks are disabled/);
    const enabled = { ...ctx, policy: new CheckTargetPolicy({ enableScriptChecks: true }) };
    expect(ok(parseDefinitionFile('s.json', script, enabled))[0]!.checks[0]).toMatchObject({ kind: 'script', args: ['/bin/true'] });
  });
});

describe('Consul definitions', () => {
  it('maps a service with its checks, CamelCase and snake_case alike', () => {
    const doc = {
      service: {
        Name: 'Billing',
        Port: 8443,
        Tags: ['primary'],
        Meta: { version: '2' },
        Weights: { Passing: 5, Warning: 1 },
        EnableTagOverride: false,
        Checks: [
          {
            HTTP: 'https://10.0.0.5:8443/health',
            Method: 'POST',
            Header: { 'X-Probe': ['1'] },
            TLSSkipVerify: true,
            Interval: '5s',
            Timeout: '1s',
            DeregisterCriticalServiceAfter: '90m',
            SuccessBeforePassing: 2,
            FailuresBeforeCritical: 3,
          },
          { tcp: '10.0.0.5:8443', interval: '10s', failures_before_warning: 1 },
          { GRPC: '10.0.0.5:9000/billing.v1', GRPCUseTLS: false, Interval: '15s' },
          { CheckID: 'billing-ttl', Name: 'heartbeat', TTL: '30s', Notes: 'pushed by the service', Status: 'passing' },
        ],
      },
    };
    const r = parseDefinitionFile('billing.json', JSON.stringify(doc), ctx);
    const [d] = ok(r);
    expect(d!.format).toBe('consul');
    expect(d!.id).toBe('billing-10.0.0.5-8443');
    expect(d!.body).toMatchObject({ service: 'billing', address: '10.0.0.5', port: 8443, tags: ['primary'], meta: { version: '2' }, weight: 5 });
    const [http, tcp, grpc, ttl] = d!.checks;
    expect(http).toMatchObject({
      id: 'service:billing-10.0.0.5-8443:1',
      name: "Service 'Billing' check 1",
      kind: 'http',
      url: 'https://10.0.0.5:8443/health',
      method: 'POST',
      headers: { 'X-Probe': ['1'] },
      tlsSkipVerify: true,
      intervalMs: 5000,
      timeoutMs: 1000,
      deregisterCriticalAfterMs: 90 * 60_000,
      successesBeforePassing: 2,
      failuresBeforeCritical: 3,
      failuresBeforeWarning: 3,
    });
    expect(tcp).toMatchObject({ kind: 'tcp', target: '10.0.0.5:8443', intervalMs: 10_000, failuresBeforeWarning: 1, failuresBeforeCritical: 1 });
    expect(grpc).toMatchObject({ kind: 'grpc', target: '10.0.0.5:9000/billing.v1', grpcUseTls: false, intervalMs: 15_000 });
    expect(ttl).toMatchObject({ id: 'billing-ttl', name: 'heartbeat', kind: 'ttl', ttlMs: 30_000, notes: 'pushed by the service' });
    expect(d!.body.checks![3]).toMatchObject({ status: 'passing' });
    expect(r.warnings).toEqual([
      'billing.json: service.Weights.Warning has no counterpart in Beacon and is ignored',
      'billing.json: service.EnableTagOverride has no effect in Beacon and is ignored',
      'billing.json: service.Name "Billing" is registered as "billing" (service names are lower-case DNS labels)',
    ]);
  });

  it('maps a services list with one Check each and an explicit ID', () => {
    const doc = {
      services: [
        { id: 'redis-1', name: 'redis', address: '10.0.0.5', port: 6379, check: { tcp: '10.0.0.5:6379', interval: '3s' } },
        { name: 'web', port: 80 },
      ],
    };
    const defs = ok(parseDefinitionFile('many.json', JSON.stringify(doc), ctx));
    expect(defs.map((d) => [d.id, d.origin])).toEqual([
      ['redis-1', 'many.json: services[0]'],
      ['web-10.0.0.5-80', 'many.json: services[1]'],
    ]);
    expect(defs[0]!.checks[0]).toMatchObject({ id: 'service:redis-1', name: "Service 'redis' check", kind: 'tcp', intervalMs: 3000 });
  });

  it('refuses what Beacon cannot honour, naming the file and the field', () => {
    const bad = (service: unknown) => failure(parseDefinitionFile('c.json', JSON.stringify({ service }), ctx));
    expect(bad({ Name: 'web', Check: { DockerContainerID: 'abc', Args: ['true'], Interval: '5s' } })).toMatch(
      /^c\.json: service\.Check\.DockerContainerID: Docker checks are not supported by Beacon/,
    );
    expect(bad({ Name: 'web', Connect: { SidecarService: {} } })).toMatch(/service\.Connect: Connect \(service mesh\) are not supported/);
    expect(bad({ Name: 'web', Check: { HTTP: 'http://10.0.0.5/', TCP: '10.0.0.5:80' } })).toMatch(/one check has one type, got HTTP and TCP/);
    expect(bad({ Name: 'web', Check: { Interval: '5s' } })).toMatch(/service\.Check: no check type/);
    expect(bad({ Name: 'web', Check: { TTL: 30 } })).toMatch(/service\.Check\.TTL must be a duration string/);
    expect(bad({ Port: 80 })).toMatch(/service\.Name is required/);
    expect(bad({ Name: 'web', Portt: 80 })).toMatch(/service\.Portt: unknown field/);
    expect(failure(parseDefinitionFile('d.json', JSON.stringify({ service: { Name: 'web' }, datacenter: 'dc1' }), ctx))).toMatch(/d\.json: datacenter: only "service" and "services"/);
  });
});

describe('a config dir', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads the definition files in name order; a bad file stops neither the others nor keeps its last good version from running', async () => {
    dir = mkdtempSync(join(tmpdir(), 'beacon-agent-defs-'));
    writeFileSync(join(dir, 'a-web.json'), JSON.stringify({ service: 'web', port: 80 }));
    writeFileSync(join(dir, 'b-db.yaml'), 'service: db\nport: 5432\n');
    writeFileSync(join(dir, 'c-consul.json'), JSON.stringify({ service: { name: 'api', port: 9000 } }));
    writeFileSync(join(dir, 'README.md'), '# not a definition');
    writeFileSync(join(dir, '.a-web.json.swp'), 'editor junk');
    const set = new DefinitionSet();
    let r = set.apply(await readDefinitionDir(dir, ctx));
    expect([...r.definitions.keys()]).toEqual(['web-10.0.0.5-80', 'db-10.0.0.5-5432', 'api-10.0.0.5-9000']);
    expect(r.errors).toEqual([]);

    // A typo saved mid-edit: the error names the file, db keeps running as it was, others unaffected.
    writeFileSync(join(dir, 'b-db.yaml'), 'service: db\nport: [5432\n');
    writeFileSync(join(dir, 'd-new.json'), JSON.stringify([{ service: 'queue', port: 5672 }]));
    r = set.apply(await readDefinitionDir(dir, ctx));
    expect([...r.definitions.keys()]).toEqual(['web-10.0.0.5-80', 'db-10.0.0.5-5432', 'api-10.0.0.5-9000', 'queue-10.0.0.5-5672']);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^b-db\.yaml: invalid YAML: .*\(keeping the previous version of b-db\.yaml\)$/);

    // A bad file never loaded before contributes nothing; a removed file takes its definitions with it.
    writeFileSync(join(dir, 'e-bad.json'), '{"service": 42}');
    unlinkSync(join(dir, 'c-consul.json'));
    r = set.apply(await readDefinitionDir(dir, ctx));
    expect([...r.definitions.keys()]).toEqual(['web-10.0.0.5-80', 'db-10.0.0.5-5432', 'queue-10.0.0.5-5672']);
    expect(r.errors[1]).toBe('e-bad.json: service must be a string');
  });

  it('keeps the first of two files that define one instance and reports the second', () => {
    const defsOf = (file: string, text: string) => parseDefinitionFile(file, text, ctx);
    const set = new DefinitionSet();
    const r = set.apply([defsOf('b.json', '{"service":"web","port":80,"tags":["b"]}'), defsOf('a.json', '{"service":"web","port":80,"tags":["a"]}')]);
    expect(r.definitions.get('web-10.0.0.5-80')!.body.tags).toEqual(['a']);
    expect(r.errors).toEqual(['b.json: instance id web-10.0.0.5-80 is already defined by a.json; ignored']);
  });

  it('fails when the directory itself cannot be read', async () => {
    await expect(readDefinitionDir(join(tmpdir(), 'beacon-no-such-dir-xyz'), ctx)).rejects.toThrow(/ENOENT/);
  });
});
