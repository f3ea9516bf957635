import { readFileSync } from 'node:fs';

/** Descriptors kept for everything that is not a watch: the store, DNS sockets, checks, short requests. */
export const FD_HEADROOM = 512;
/** Assumed where the limit cannot be read (no /proc): a common default soft limit of servers. */
export const ASSUMED_NOFILE = 65_536;

/** The soft RLIMIT_NOFILE from /proc/self/limits (Node has no API for it); undefined when unreadable or unlimited. */
export function softNofile(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | undefined {
  let text: string;
  try {
    text = read();
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || m[1] === 'unlimited') return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * Caps on long-lived connections that the descriptor limit can hold: every open stream is a
 * socket, and a server out of descriptors stops accepting any connection at all. When the caps
 * together exceed the limit minus the headroom, each is lowered in proportion (to at least 1).
 */
export function clampToNofile<K extends string>(caps: Record<K, number>, nofile: number): Record<K, number> {
  const room = Math.max(1, nofile - FD_HEADROOM);
  const keys = Object.keys(caps) as K[];
  const total = keys.reduce((sum, k) => sum + caps[k], 0);
  const out = { ...caps };
  if (total > room) for (const k of keys) out[k] = Math.max(1, Math.floor((caps[k] * room) / total));
  return out;
}
