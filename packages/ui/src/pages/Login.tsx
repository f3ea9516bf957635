import { useState } from 'preact/hooks';
import { ApiError, checkToken, setToken, token } from '../api.js';
import { ErrorNote } from '../components.js';
import { restartLive } from '../live.js';

/**
 * Keeps an ACL token for this tab. The server decides what it may read and write; the UI only
 * sends it. A server without ACLs answers /api/v1/acl/tokens/self 401: the token is kept anyway.
 */
export function Login() {
  const [secret, setSecret] = useState('');
  const [note, setNote] = useState<string>();
  const [error, setError] = useState<Error>();
  return (
    <section aria-labelledby="h-login">
      <h1 id="h-login">Token</h1>
      <p>{token.value ? 'A token is set for this tab.' : 'No token: requests are anonymous.'} It is kept in this tab only (sessionStorage).</p>
      <form
        class="row"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          const check = await checkToken(secret).catch((err: Error) => err);
          if (check instanceof Error || check === 'refused') {
            setError(check instanceof Error ? check : new ApiError(403, 'forbidden', 'The server does not accept this token.'));
            return;
          }
          setToken(secret);
          setSecret('');
          setNote(check === 'acl-off' ? 'Token kept. This server does not use ACLs.' : 'Logged in.');
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
