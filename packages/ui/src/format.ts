/** `12s`, `4m 5s`, `3h 2m`, `2d 1h`: short durations for badges and countdowns. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export const ago = (at: number, now: number = Date.now()): string => `${duration(now - at)} ago`;

export const time = (at: number): string => new Date(at).toLocaleString();

/** host:port with IPv6 literals bracketed, as a URL or `curl` wants them. */
export const hostPort = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);
