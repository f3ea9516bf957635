import type { RouteOptions } from 'fastify';

type HookKind = 'onRequest' | 'preValidation' | 'onResponse';

/** A route's own hooks of one kind as an array (Fastify takes none, one, or an array), for `onRoute` hooks that add to them. */
export function ownHooks<K extends HookKind>(route: RouteOptions, kind: K): NonNullable<RouteOptions[K]> extends infer H ? (H extends readonly unknown[] ? H[number] : H)[] : never {
  const h = route[kind];
  return (h === undefined ? [] : Array.isArray(h) ? [...h] : [h]) as never;
}
