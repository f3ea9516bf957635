/**
 * The size of a chunk from its chunk-size line (RFC 9112 §7.1: hex digits, optional whitespace and
 * `;extensions`, which are ignored but must hold no control characters); NaN when malformed. One
 * rule for both directions: requests from clients and answers from instances.
 *
 * @example
 * chunkSize('1a;name=value'); // 26
 */
export function chunkSize(line: string): number {
  const semi = line.indexOf(';');
  const hex = (semi < 0 ? line : line.slice(0, semi)).trimEnd();
  if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) return NaN;
  if (semi >= 0 && /[\x00-\x08\x0a-\x1f\x7f]/.test(line)) return NaN;
  return parseInt(hex, 16);
}
