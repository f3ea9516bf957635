import { describe, expect, it } from 'vitest';
import { bodyDuration, goDuration } from './duration.js';
import { consulServiceId, mapCheckId, serviceNameForRead, serviceNameForWrite } from './names.js';

describe('Consul durations and names', () => {
  it('formats durations as Go does and reads strings or nanoseconds', () => {
    expect([0, 500, 1_000, 10_000, 60_000, 90_000, 3_600_000, 1_500].map(goDuration)).toEqual(['0s', '500ms', '1s', '10s', '1m0s', '1m30s', '1h0m0s', '1.5s']);
    expect(bodyDuration('1m30s', 'TTL')).toBe(90_000);
    expect(bodyDuration(15e9, 'LockDelay')).toBe(15_000);
    expect(bodyDuration('', 'TTL')).toBeUndefined();
    expect(() => bodyDuration('10', 'TTL')).toThrow(/invalid duration/);
    expect(() => bodyDuration(true, 'TTL')).toThrow(/string/);
  });

  it('maps names the same way on writes and reads', () => {
    expect(serviceNameForWrite('My_Service')).toBe('my-service');
    expect(serviceNameForRead('MY.SERVICE')).toBe('my-service');
    expect(serviceNameForRead('no spaces')).toBeUndefined();
    expect(() => serviceNameForWrite('bad name')).toThrow(/DNS labels/);
    expect(mapCheckId('disk usage/root')).toBe('disk_usage_root');
    expect(consulServiceId({ id: 'redis@ext-1', node: 'ext-1' })).toBe('redis');
    expect(consulServiceId({ id: 'redis@ext-1', node: 'other' })).toBe('redis@ext-1');
  });
});
