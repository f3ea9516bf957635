import { useState } from 'preact/hooks';
import { checkToken, session, setToken, token } from '../api.js';
import { ErrorNote } from '../components.js';
import { restartLive } from '../live.js';

/** What the page says about the tab's token; the secret itself is never shown. */
function Current() {
  const s = session.value;
  switch (s.kind) {
    case 'unknown':
      return <p>{token.value ? 'A token is set for this tab.' : 'No token: requests are anonymous.'}</p>;
    case 'acl-off':
      return <p>This server does not use ACLs: every request may read and write, with or without a token.</p>;
    case 'token':
      return s.anonymous ? (
        <p>No token: you see only what this server lets anonymous requests read, and can change nothing it does not allow them.</p>
      ) : (
        <p>
          Logged in as <strong>{s.description || '(no description)'}</strong> (AccessorID <code>{s.accessorId}</code>). The pages show what this token may read; write buttons show
          where it may write.
        </p>
      );
  }
}

/**
 * Keeps an ACL token for this tab. The server decides what it may read and write; the UI only
 * sends it and asks. A server without ACLs answers /api/v1/acl/tokens/self 401: the token is kept anyway.
 */
export function Login() {
  const [secret, setSecret] = useState('');
  const [note, setNote] = useState<string>();
  const [error, setError] = useState<Error>();
  return (
    <section aria-labelledby="h-login">
      <h1 id="h-login">Token</h1>
      <Current />
      <p class="help">A token is kept in this tab only (sessionStorage): closing the tab forgets it.</p>
      <form
        class="row"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          setNote(undefined);
          const check = await checkToken(secret).catch((err: Error) => err);
          if (check instanceof Error) return setError(check);
          if (check === 'refused') return setError(new Error('The server does not know this token (ACL not found). It was not kept: check the SecretID.'));
          setToken(secret);
          setSecret('');
          setNote(check.kind === 'acl-off' ? 'Token kept. This server does not use ACLs.' : 'Logged in.');
          restartLive();
        }}
      >
        <label>
          Secret
          <input type="password" autoComplete="off" required value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">
          Use token
        </button>
        {token.value && (
          <button
            type="button"
            onClick={() => {
              setToken(null);
              setError(undefined);
              void checkToken(null).catch(() => undefined);
              setNote('Logged out.');
              restartLive();
            }}
          >
            Log out
          </button>
        )}
      </form>
      {note && <p role="status">{note}</p>}
      <ErrorNote error={error} />
    </section>
  );
}
