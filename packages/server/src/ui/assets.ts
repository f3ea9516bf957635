import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

export type Encoding = 'br' | 'gzip' | 'identity';

/** One built file of the UI, held in memory with its encodings made on first use. */
export interface Asset {
  type: string;
  etag: string;
  /** Vite names hashed files `name-<hash>.ext` under assets/: their content never changes. */
  immutable: boolean;
  body(encoding: Encoding): Buffer;
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
};
/** Types worth compressing; images are compressed already. */
const TEXT = new Set(['html', 'js', 'css', 'svg', 'json', 'txt']);
/** The UI is a few hundred kilobytes: more than this is not a build of it. */
const MAX_TOTAL_BYTES = 16 * 1024 * 1024;

function asset(ext: string, raw: Buffer, immutable: boolean): Asset {
  const cache = new Map<Encoding, Buffer>([['identity', raw]]);
  const compressible = TEXT.has(ext);
  return {
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 22)}"`,
    immutable,
    body(encoding) {
      const want = compressible ? encoding : 'identity';
      let b = cache.get(want);
      if (!b) {
        // Compressed once per file and encoding, then served from memory.
        b = want === 'br' ? brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } }) : gzipSync(raw, { level: 9 });
        cache.set(want, b);
      }
      return b;
    },
  };
}

/** Reads a built UI directory (Vite's `dist`) into memory, keyed by path below it (`index.html`, `assets/x.js`). */
export function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      const st = statSync(full);
      if (st.isDirectory()) walk(full);
      else if (st.isFile()) {
        total += st.size;
        if (total > MAX_TOTAL_BYTES) throw new Error(`${dir} holds more than ${MAX_TOTAL_BYTES} bytes: not a build of the UI`);
        const path = relative(dir, full).split(sep).join('/');
        const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
        out.set(path, asset(ext, readFileSync(full), path.startsWith('assets/')));
      }
    }
  };
  walk(dir);
  return out;
}

/** The best encoding the client accepts: brotli, then gzip (q=0 refuses one). */
export function negotiate(acceptEncoding: string | undefined): Encoding {
  if (!acceptEncoding) return 'identity';
  const accepted = new Set<string>();
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    if (name) accepted.add(name);
  }
  if (accepted.has('br')) return 'br';
  if (accepted.has('gzip') || accepted.has('*')) return 'gzip';
  return 'identity';
}
