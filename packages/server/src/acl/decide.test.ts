import { describe, expect, it } from 'vitest';
import { allowed, authorize, filterReadable } from './decide.js';
import type { AclRule, Authorizer } from './types.js';

const token = (rules: AclRule[], management = false): Authorizer => ({ accessorId: 't', management, rules });

describe('the ACL decision', () => {
  it('denies when no rule speaks, and lets management do anything', () => {
    expect(allowed(token([]), 'service', 'web', 'read')).toBe(false);
    expect(allowed(token([], true), 'key', 'any/thing', 'write')).toBe(true);
  });

  it('orders write above list above read', () => {
    const t = token([{ kind: 'key', prefix: true, name: 'app/', level: 'list' }]);
    expect(allowed(t, 'key', 'app/x', 'read')).toBe(true);
    expect(allowed(t, 'key', 'app/x', 'list')).toBe(true);
    expect(allowed(t, 'key', 'app/x', 'write')).toBe(false);
  });

  it('lets an exact rule beat any prefix, and the longest prefix beat shorter ones', () => {
    const t = token([
      { kind: 'service', prefix: true, name: '', level: 'write' },
      { kind: 'service', prefix: true, name: 'pay', level: 'read' },
      { kind: 'service', prefix: false, name: 'payments', level: 'deny' },
    ]);
    expect(allowed(t, 'service', 'web', 'write')).toBe(true);
    expect(allowed(t, 'service', 'payroll', 'write')).toBe(false);
    expect(allowed(t, 'service', 'payroll', 'read')).toBe(true);
    expect(allowed(t, 'service', 'payments', 'read')).toBe(false);
  });

  it('lets deny win a tie, and otherwise the strongest of equal rules', () => {
    const tie = token([
      { kind: 'service', prefix: true, name: 'a', level: 'write' },
      { kind: 'service', prefix: true, name: 'a', level: 'deny' },
    ]);
    expect(allowed(tie, 'service', 'api', 'read')).toBe(false);
    const both = token([
      { kind: 'service', prefix: false, name: 'api', level: 'read' },
      { kind: 'service', prefix: false, name: 'api', level: 'write' },
    ]);
    expect(allowed(both, 'service', 'api', 'write')).toBe(true);
  });

  it('finds the longest matching prefix whatever order the rules come in, merging a prefix given twice', () => {
    const t = token([
      { kind: 'service', prefix: true, name: 'ord', level: 'read' },
      { kind: 'service', prefix: true, name: 'orders-legacy', level: 'write' },
      { kind: 'service', prefix: true, name: '', level: 'list' },
      { kind: 'service', prefix: true, name: 'orders', level: 'write' },
      { kind: 'node', prefix: true, name: 'orders', level: 'deny' },
      { kind: 'service', prefix: true, name: 'orders-legacy', level: 'deny' },
    ]);
    expect(allowed(t, 'service', 'orders', 'write')).toBe(true);
    expect(allowed(t, 'service', 'ordinal', 'read')).toBe(true);
    expect(allowed(t, 'service', 'ordinal', 'list')).toBe(false);
    expect(allowed(t, 'service', 'orders-legacy-1', 'read')).toBe(false);
    expect(allowed(t, 'service', 'web', 'list')).toBe(true);
    expect(allowed(t, 'service', 'or', 'list')).toBe(true);
  });

  it('keeps kinds apart and reads global rules without a name', () => {
    const t = token([
      { kind: 'service', prefix: true, name: '', level: 'write' },
      { kind: 'operator', level: 'read' },
    ]);
    expect(allowed(t, 'node', 'n1', 'read')).toBe(false);
    expect(() => authorize(t, 'operator', 'read')).not.toThrow();
    expect(() => authorize(t, 'operator', 'write')).toThrow(/operator:write/);
    expect(() => authorize(t, 'key', 'cfg', 'read')).toThrow(expect.objectContaining({ code: 'forbidden' }));
  });

  it('filters a list and says whether it dropped anything', () => {
    const t = token([{ kind: 'service', prefix: true, name: 'web', level: 'read' }]);
    expect(filterReadable(t, 'service', ['web', 'db', 'web-2'], (s) => s)).toEqual({ items: ['web', 'web-2'], filtered: true });
    expect(filterReadable(t, 'service', ['web'], (s) => s)).toEqual({ items: ['web'], filtered: false });
  });
});
