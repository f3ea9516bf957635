export type EurekaFormat = 'json' | 'xml';

/** What Eureka's server produces, in its order of preference: JSON first, so `*\/*` and a missing Accept get JSON. */
const OFFERS: readonly { type: string; format: EurekaFormat }[] = [
  { type: 'application/json', format: 'json' },
  { type: 'application/xml', format: 'xml' },
  { type: 'text/xml', format: 'xml' },
];

interface Range {
  type: string;
  subtype: string;
  q: number;
}

function ranges(accept: string): Range[] {
  const out: Range[] = [];
  for (const part of accept.split(',')) {
    const [media, ...params] = part.trim().split(';');
    const [type, subtype] = (media ?? '').trim().toLowerCase().split('/');
    if (!type || !subtype) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split('=');
      if (k?.trim().toLowerCase() === 'q') q = Number(v);
    }
    // q=0 ranges stay: they refuse a type a broader range would accept.
    if (Number.isFinite(q) && q >= 0) out.push({ type, subtype, q: Math.min(q, 1) });
  }
  return out;
}

/** The quality a list of ranges gives an offered type: the most specific matching range decides (RFC 9110 §12.5.1). */
function quality(rs: Range[], offer: string): number {
  const [type, subtype] = offer.split('/');
  let best = -1;
  let q = 0;
  for (const r of rs) {
    const specificity = r.type === type && r.subtype === subtype ? 2 : r.type === type && r.subtype === '*' ? 1 : r.type === '*' && r.subtype === '*' ? 0 : -1;
    if (specificity > best) {
      best = specificity;
      q = r.q;
    }
  }
  return best < 0 ? 0 : q;
}

/**
 * Picks JSON or XML for an `Accept` header, as Eureka's server does by content negotiation;
 * undefined when the client accepts neither (the answer is 406). JSON wins ties.
 */
export function negotiate(accept: string | undefined): EurekaFormat | undefined {
  if (!accept || !accept.trim()) return 'json';
  const rs = ranges(accept);
  if (rs.length === 0) return 'json';
  let pick: EurekaFormat | undefined;
  let pickQ = 0;
  for (const o of OFFERS) {
    const q = quality(rs, o.type);
    if (q > pickQ) {
      pick = o.format;
      pickQ = q;
    }
  }
  return pick;
}
