import { describe, expect, it } from 'vitest';
import { parseRules } from './rules.js';

describe('ACL rules', () => {
  it('reads the HCL Consul users write, comments included', () => {
    const rules = parseRules(`
# everyone may look
service_prefix "" { policy = "read" }
// payments is ours
service "payments" {
  policy = "write"
}
key_prefix "app/" { policy = "list" } /* a block
comment */
key "a/b" { policy = "write" }
operator = "read"
acl = "write"
node_prefix "" { policy = "deny" }
agent "n1" { policy = "read" }
session_prefix "" { policy = "write" }
event_prefix "deploy-" { policy = "write" }
query "q" { policy = "read" }
`);
    expect(rules).toEqual([
      { kind: 'service', prefix: true, name: '', level: 'read' },
      { kind: 'service', prefix: false, name: 'payments', level: 'write' },
      { kind: 'key', prefix: true, name: 'app/', level: 'list' },
      { kind: 'key', prefix: false, name: 'a/b', level: 'write' },
      { kind: 'operator', level: 'read' },
      { kind: 'acl', level: 'write' },
      { kind: 'node', prefix: true, name: '', level: 'deny' },
      { kind: 'agent', prefix: false, name: 'n1', level: 'read' },
      { kind: 'session', prefix: true, name: '', level: 'write' },
      { kind: 'event', prefix: true, name: 'deploy-', level: 'write' },
      { kind: 'query', prefix: false, name: 'q', level: 'read' },
    ]);
  });

  it('reads the JSON form to the same rules', () => {
    const json = parseRules('{"service_prefix": {"": {"policy": "read"}, "pay": {"policy": "write"}}, "operator": "read", "key": {"a\\"b": {"policy": "deny"}}}');
    expect(json).toEqual([
      { kind: 'service', prefix: true, name: '', level: 'read' },
      { kind: 'service', prefix: true, name: 'pay', level: 'write' },
      { kind: 'operator', level: 'read' },
      { kind: 'key', prefix: false, name: 'a"b', level: 'deny' },
    ]);
    expect(parseRules('service_prefix "pay" { policy = "write" }\nservice_prefix "" { policy = "read" }')).toEqual(
      parseRules('{"service_prefix": {"pay": {"policy": "write"}, "": {"policy": "read"}}}'),
    );
  });

  it('takes empty text as no rules', () => {
    expect(parseRules('')).toEqual([]);
    expect(parseRules('  # nothing yet\n')).toEqual([]);
  });

  it('names the line and what it expected', () => {
    expect(() => parseRules('service "web" { policy = "read" }\nservise "x" { policy = "read" }')).toThrow(/line 2: unknown rule "servise"; expected one of service, service_prefix/);
    expect(() => parseRules('\n\nservice "web" policy = "read"')).toThrow(/line 3: expected "\{" after service "web", found "policy"/);
    expect(() => parseRules('service web { policy = "read" }')).toThrow(/line 1: expected a quoted name after service/);
    expect(() => parseRules('operator "read"')).toThrow(/line 1: expected "=" after operator/);
    expect(() => parseRules('service "web" {\n policy = "admin"\n}')).toThrow(/line 2: policy must be one of read, write, list, deny; found "admin"/);
    expect(() => parseRules('service "web" { policy = "list" }')).toThrow(/"list" applies to key rules only/);
    expect(() => parseRules('service "web" {\n}')).toThrow(/line 2: service "web" has no policy/);
    expect(() => parseRules('service "web" { intentions = "read" }')).toThrow(/unsupported attribute "intentions"/);
    expect(() => parseRules('service "web { policy = "read" }')).toThrow(/line 1: .*never closed|line 1: expected/);
    expect(() => parseRules('service "web" { policy = "read" ')).toThrow(/expected policy = "…" or "\}" .*found the end of the rules/);
    expect(() => parseRules('service "a" { policy = "read" } @')).toThrow(/unexpected character "@"/);
  });

  it('names what is wrong in JSON rules', () => {
    expect(() => parseRules('{"service": {"web": {"policy": "read"}},\n "x": }')).toThrow(/not valid JSON/);
    expect(() => parseRules('{"keyring": "read"}')).toThrow(/unknown rule "keyring"/);
    expect(() => parseRules('{"operator": {"policy": "read"}}')).toThrow(/"operator" takes a level string/);
    expect(() => parseRules('{"service": {"web": "read"}}')).toThrow(/service "web": expected \{"policy"/);
    expect(() => parseRules('[]')).toThrow(/JSON rules must be an object/);
  });

  it('refuses rules beyond the size limit', () => {
    expect(() => parseRules(`service_prefix "" { policy = "read" }\n${'#'.repeat(70_000)}`)).toThrow(/at most 65536/);
  });
});
