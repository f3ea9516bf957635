import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, getJson } from '../api.js';
import { ErrorNote, useLoad, useMayWrite } from '../components.js';
import { href, replaceParams, route } from '../router.js';

interface Pair {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
  Flags: number;
}

/** Consul's KV path: every segment escaped, the slashes between them kept. */
const kvPath = (key: string) => `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;

function decode(b64: string | null): string {
  if (b64 === null) return '';
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

async function readPair(key: string, signal?: AbortSignal): Promise<Pair | undefined> {
  try {
    return (await getJson<Pair[]>(kvPath(key), signal))[0];
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return undefined;
    throw e;
  }
}

/** One key: its value, and an editor that writes with compare-and-set on the index it was read at. */
function Editor({ keyName, onSaved }: { keyName: string; onSaved: () => void }) {
  const pair = useLoad((s) => readPair(keyName, s), [keyName]);
  const [text, setText] = useState('');
  const [baseIndex, setBaseIndex] = useState(0);
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  const [error, setError] = useState<Error>();
  const writable = useMayWrite({ resource: 'key', name: keyName });
  useEffect(() => {
    if (pair.data === undefined && !pair.error) {
      setText('');
      setBaseIndex(0);
    } else if (pair.data) {
      setText(decode(pair.data.Value));
      setBaseIndex(pair.data.ModifyIndex);
    }
  }, [pair.data]);
  const save = async () => {
    setError(undefined);
    setMessage(undefined);
    try {
      // Consul sets flags to 0 on a PUT without them: keep the ones the key has.
      const flags = pair.data?.Flags ? `&flags=${pair.data.Flags}` : '';
      const res = await call(`${kvPath(keyName)}?cas=${baseIndex}${flags}`, { method: 'PUT', text });
      if ((await res.text()).trim() === 'true') {
        setMessage({ ok: true, text: 'Saved.' });
        const now = await readPair(keyName);
        setBaseIndex(now?.ModifyIndex ?? 0);
        onSaved();
      } else {
        const now = await readPair(keyName);
        setMessage({
          ok: false,
          text: `Refused: ${keyName} changed since you loaded it (you edited index ${baseIndex}, it is now at ${now?.ModifyIndex ?? 'deleted'}). Its current value is: ${now ? decode(now.Value) : '(none)'}. Reload to edit the new value.`,
        });
      }
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <div class="card">
      <h2>{keyName}</h2>
      <ErrorNote error={pair.error ?? error} />
      <p class="help">{pair.data ? `Index ${pair.data.ModifyIndex}, flags ${pair.data.Flags}.` : 'A new key.'}</p>
      <label>
        Value
        <textarea rows={8} value={text} readOnly={!writable} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      {message && (
        <p class={message.ok ? 'ok' : 'error'} role="alert">
          {message.text}
        </p>
      )}
      <div class="row">
        {writable && (
          <button type="button" class="primary" onClick={save}>
            Save (compare-and-set at index {baseIndex})
          </button>
        )}
        <button type="button" onClick={() => (setMessage(undefined), pair.reload())}>
          Reload
        </button>
      </div>
    </div>
  );
}

export function Kv() {
  const p = route.value.params;
  const prefix = p.get('prefix') ?? '';
  const key = p.get('key');
  const [newKey, setNewKey] = useState('');
  const keys = useLoad(
    async (s) => {
      try {
        return await getJson<string[]>(`${kvPath(prefix)}?keys&separator=/`, s);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return [];
        throw e;
      }
    },
    [prefix],
  );
  // A new key could be anywhere under the prefix: offer it where the token may write the prefix itself.
  const writable = useMayWrite({ resource: 'key', name: prefix });
  const up = prefix.replace(/[^/]*\/?$/, '');
  return (
    <section aria-labelledby="h-kv">
      <h1 id="h-kv">Key/value</h1>
      <label>
        Prefix
        <input value={prefix} onInput={(e) => replaceParams({ prefix: e.currentTarget.value || undefined, key: undefined })} />
      </label>
      <ErrorNote error={keys.error} />
      <ul class="keys">
        {prefix && (
          <li>
            <a href={href(['kv'], { prefix: up })}>↑ {up || '(top)'}</a>
          </li>
        )}
        {(keys.data ?? []).map((k) => (
          <li key={k}>{k.endsWith('/') ? <a href={href(['kv'], { prefix: k })}>{k}</a> : <a href={href(['kv'], { prefix, key: k })}>{k}</a>}</li>
        ))}
      </ul>
      {writable && (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (newKey) replaceParams({ key: prefix + newKey });
          }}
        >
          <label>
            New key under {prefix || 'the top'}
            <input value={newKey} onInput={(e) => setNewKey(e.currentTarget.value)} />
          </label>
          <button type="submit">Create</button>
        </form>
      )}
      {key && <Editor key={key} keyName={key} onSaved={keys.reload} />}
    </section>
  );
}
