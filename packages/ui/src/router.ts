import { signal } from '@preact/signals';

/** Where the tab is: `#/services/orders?x=1` is `{ path: ['services', 'orders'], params: x=1 }`. */
export interface Route {
  path: string[];
  params: URLSearchParams;
}

function read(): Route {
  const h = location.hash.replace(/^#\/?/, '');
  const q = h.indexOf('?');
  const path = (q < 0 ? h : h.slice(0, q)).split('/').filter(Boolean).map(decodeURIComponent);
  return { path, params: new URLSearchParams(q < 0 ? '' : h.slice(q + 1)) };
}

export const route = signal<Route>(read());
addEventListener('hashchange', () => {
  route.value = read();
});

/** The href of a page: `href(['services', name], { q })`; empty params are left out. */
export function href(path: string[], params: Record<string, string | undefined> = {}): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) qs.set(k, v);
  const s = qs.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${s ? `?${s}` : ''}`;
}

/** Changes the URL's parameters without a new history entry (typing in a filter box). */
export function replaceParams(params: Record<string, string | undefined>): void {
  const r = route.value;
  const next = href(r.path, { ...Object.fromEntries(r.params), ...params });
  history.replaceState(null, '', next);
  route.value = read();
}
