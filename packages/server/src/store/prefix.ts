/**
 * The smallest string above every string that starts with `prefix`, in code point order (which
 * is the byte order of UTF-8, and so SQLite's BINARY collation), or undefined when there is
 * none (empty prefix, or one made only of U+10FFFF). Turns a prefix scan into an index range:
 * `key >= prefix AND key < end`.
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    let last = cps.pop()!;
    if (last >= 0x10ffff) continue;
    last++;
    // Surrogate code points cannot be encoded; the next encodable one is U+E000.
    if (last >= 0xd800 && last <= 0xdfff) last = 0xe000;
    cps.push(last);
    return String.fromCodePoint(...cps);
  }
  return undefined;
}

/** Rejects lone surrogates, which UTF-8 (and therefore SQLite) cannot store faithfully. */
export function isWellFormedText(s: string): boolean {
  // String.prototype.isWellFormed (ES2024, in every Node this runs on; not yet in the ES2023 lib
  // typings): V8 answers a one-byte string at once, where the regex scanned every stored value.
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}
