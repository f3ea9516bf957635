export type Cell = string | number | boolean | undefined | null;

/** Renders rows as aligned columns under upper-case headers, the way kubectl and consul print lists. */
export function table(headers: string[], rows: Cell[][], opts: { headers?: boolean } = {}): string {
  const body = rows.map((r) => r.map((c) => (c === undefined || c === null ? '' : String(c))));
  const cells = opts.headers === false ? body : [headers.map((h) => h.toUpperCase()), ...body];
  if (!cells.length) return '';
  const widths = headers.map((_, k) => Math.max(...cells.map((r) => (r[k] ?? '').length)));
  return cells.map((r) => r.map((c, k) => (k === r.length - 1 ? c : c.padEnd(widths[k]!))).join('  ').trimEnd()).join('\n') + '\n';
}

export function ago(ms: number, now = Date.now()): string {
  const d = Math.max(0, now - ms);
  if (d < 1000) return `${d}ms ago`;
  if (d < 60_000) return `${Math.round(d / 1000)}s ago`;
  if (d < 3_600_000) return `${Math.round(d / 60_000)}m ago`;
  return `${Math.round(d / 3_600_000)}h ago`;
}
