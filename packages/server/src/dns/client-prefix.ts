import { ipBytes } from './wire.js';

/**
 * The network a client address belongs to, as a map key: limits count per network, not per
 * address, since one host or customer usually holds a whole IPv6 /64 (2^64 addresses) and a
 * spoofer picks any address of a range. An IPv4-mapped IPv6 address is its IPv4 client.
 * Prefix lengths are whole bytes (24, 32; 56, 64).
 */
export function clientPrefix(address: string, v4Bytes: 3 | 4, v6Bytes: 7 | 8): string {
  const bytes = ipBytes(address);
  if (!bytes) return address;
  if (bytes.length === 4) return bytes.subarray(0, v4Bytes).join('.');
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.subarray(12, 12 + v4Bytes).join('.');
  return `${bytes.subarray(0, v6Bytes).toString('hex')}/${v6Bytes * 8}`;
}
