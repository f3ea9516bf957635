import { describe, expect, it } from 'vitest';
import {
  decodeHealthCheckRequest,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse,
  servingStatusName,
} from './grpc-health-codec.js';

describe('grpc.health.v1 codec', () => {
  it('encodes the request as field 1, length-delimited', () => {
    expect(encodeHealthCheckRequest('')).toEqual(Buffer.alloc(0));
    expect([...encodeHealthCheckRequest('web')]).toEqual([0x0a, 3, 0x77, 0x65, 0x62]);
    const long = 'x'.repeat(300);
    expect([...encodeHealthCheckRequest(long).subarray(0, 3)]).toEqual([0x0a, 0xac, 0x02]);
    expect(decodeHealthCheckRequest(encodeHealthCheckRequest(long)).service).toBe(long);
  });

  it('decodes the response, defaulting to UNKNOWN and skipping unknown fields', () => {
    expect(decodeHealthCheckResponse(Buffer.alloc(0)).status).toBe(0);
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 1])).status).toBe(1);
    // field 2 (string "hi"), field 3 fixed64, then status 2
    const withExtras = Buffer.from([0x12, 2, 0x68, 0x69, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 2]);
    expect(decodeHealthCheckResponse(withExtras).status).toBe(2);
    expect(decodeHealthCheckResponse(encodeHealthCheckResponse(3)).status).toBe(3);
  });

  it('rejects truncated input', () => {
    expect(() => decodeHealthCheckResponse(Buffer.from([0x08]))).toThrow(/truncated/);
    expect(() => decodeHealthCheckResponse(Buffer.from([0x12, 5, 1]))).toThrow(/truncated/);
  });

  it('names statuses', () => {
    expect(servingStatusName(1)).toBe('SERVING');
    expect(servingStatusName(2)).toBe('NOT_SERVING');
    expect(servingStatusName(9)).toBe('UNRECOGNIZED(9)');
  });
});
