/**
 * The two messages of grpc.health.v1, encoded by hand so no .proto file ships with the server:
 *   message HealthCheckRequest  { string service = 1; }
 *   message HealthCheckResponse { ServingStatus status = 1; }
 *   enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
 */

export const HEALTH_CHECK_METHOD = '/grpc.health.v1.Health/Check';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const SERVING_STATUSES: readonly ServingStatus[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

export function servingStatusName(n: number): ServingStatus | `UNRECOGNIZED(${number})` {
  return SERVING_STATUSES[n] ?? `UNRECOGNIZED(${n})`;
}

function writeVarint(out: number[], n: number): void {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
}

/** Reads a varint at `pos`; returns the value and the next position. Values past 2^53 are not needed here. */
function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
  throw new Error('varint too long');
}

export function encodeHealthCheckRequest(service: string): Buffer {
  if (!service) return Buffer.alloc(0);
  const s = Buffer.from(service, 'utf8');
  const head: number[] = [0x0a];
  writeVarint(head, s.length);
  return Buffer.concat([Buffer.from(head), s]);
}

export function decodeHealthCheckRequest(buf: Uint8Array): { service: string } {
  let service = '';
  forEachField(buf, (field, wire, value) => {
    if (field === 1 && wire === 2) service = Buffer.from(value as Uint8Array).toString('utf8');
  });
  return { service };
}

export function encodeHealthCheckResponse(status: number): Buffer {
  if (status === 0) return Buffer.alloc(0);
  const out: number[] = [0x08];
  writeVarint(out, status);
  return Buffer.from(out);
}

/** Decodes the response; an absent field is proto3's default, UNKNOWN (0). Unknown fields are skipped. */
export function decodeHealthCheckResponse(buf: Uint8Array): { status: number } {
  let status = 0;
  forEachField(buf, (field, wire, value) => {
    if (field === 1 && wire === 0) status = value as number;
  });
  return { status };
}

function forEachField(buf: Uint8Array, fn: (field: number, wire: number, value: number | Uint8Array) => void): void {
  let pos = 0;
  while (pos < buf.length) {
    let tag: number;
    [tag, pos] = readVarint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    switch (wire) {
      case 0: {
        let v: number;
        [v, pos] = readVarint(buf, pos);
        fn(field, wire, v);
        break;
      }
      case 1:
      case 5: {
        const n = wire === 1 ? 8 : 4;
        if (pos + n > buf.length) throw new Error('truncated fixed field');
        fn(field, wire, buf.subarray(pos, pos + n));
        pos += n;
        break;
      }
      case 2: {
        let len: number;
        [len, pos] = readVarint(buf, pos);
        if (pos + len > buf.length) throw new Error('truncated length-delimited field');
        fn(field, wire, buf.subarray(pos, pos + len));
        pos += len;
        break;
      }
      default:
        throw new Error(`unsupported wire type ${wire}`);
    }
  }
}
