import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { CheckStatus } from '@beacon/core';
import { ApiError, mayWrite, rightsEpoch, token, type WriteTarget } from './api.js';
import { duration } from './format.js';
import { staleSince, streamState } from './live.js';

export function StatusBadge({ status }: { status: CheckStatus }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

/** Passing / warning / critical shares of a service's instances, with the numbers as text for screen readers. */
export function StatusBar({ counts }: { counts: Record<CheckStatus, number> }) {
  const total = counts.passing + counts.warning + counts.critical;
  const label = `${counts.passing} passing, ${counts.warning} warning, ${counts.critical} critical`;
  return (
    <span class="bar" role="img" aria-label={label} title={label} data-critical={counts.critical}>
      {(['passing', 'warning', 'critical'] as const).map((s) =>
        counts[s] > 0 ? <span key={s} class={`bar-${s}`} style={{ flexGrow: counts[s] / Math.max(1, total) }} /> : null,
      )}
    </span>
  );
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="small"
      aria-label={`Copy ${label}`}
      onClick={async () => {
        await navigator.clipboard.writeText(text).catch(() => undefined);
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? 'Copied' : 'Copy'}
    </button>
  );
}

export function LiveBadge() {
  const s = streamState.value;
  const now = useNow(1000);
  const text = s === 'live' ? 'live' : s === 'stale' ? `stale ${duration(now - (staleSince.value ?? now))}` : s;
  return (
    <span class={`live live-${s}`} role="status" title={s === 'stale' ? 'The update stream is down: what you see may be out of date. Reconnecting…' : undefined}>
      {text}
    </span>
  );
}

/** Re-renders every `ms` (countdowns, "x ago"); stops with the component. */
export function useNow(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

export interface Loaded<T> {
  data?: T;
  error?: ApiError | Error;
  reload(): void;
}

/** Loads `fn` on mount and whenever a key changes; keeps the last answer while reloading. */
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, keys: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error }>({});
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    fn(ac.signal).then(
      (data) => !ac.signal.aborted && setState({ data }),
      (error: Error) => !ac.signal.aborted && setState((s) => ({ ...s, error })),
    );
    return () => ac.abort();
  }, [...keys, nonce]);
  return { ...state, reload: () => setNonce((n) => n + 1) };
}

/**
 * Whether to show the write buttons for `target`: false until the server has said yes, asked again
 * when the token changes or a write was refused. Undefined `target`: nothing to write yet.
 */
export function useMayWrite(target: WriteTarget | undefined): boolean {
  const answer = useLoad(async (s) => (target ? mayWrite(target, s) : false), [target?.resource, target?.name, token.value, rightsEpoch.value]);
  return answer.data === true;
}

export function ErrorNote({ error }: { error: Error | undefined }) {
  if (!error) return null;
  const forbidden = error instanceof ApiError && error.code === 'forbidden';
  return (
    <p class="error" role="alert">
      {forbidden ? 'Your token may not do this. ' : ''}
      {error.message}
    </p>
  );
}

/**
 * Asks for a reason and a confirmation before a write. A native <dialog>: it traps focus, Escape
 * cancels, and focus returns to the button that opened it.
 */
export function ConfirmButton(props: {
  label: string;
  title: string;
  danger?: boolean;
  needsReason: boolean;
  onConfirm: (reason: string) => Promise<void>;
  children?: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const id = `dlg-${props.label.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <>
      <button type="button" class={props.danger ? 'danger' : ''} onClick={() => (setError(undefined), ref.current?.showModal())}>
        {props.label}
      </button>
      <dialog ref={ref} aria-labelledby={`${id}-t`}>
        <form
          method="dialog"
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            try {
              await props.onConfirm(reason.trim());
              ref.current?.close();
              setReason('');
            } catch (err) {
              setError(err as Error);
            } finally {
              setBusy(false);
            }
          }}
        >
          <h2 id={`${id}-t`}>{props.title}</h2>
          {props.children}
          {props.needsReason && (
            <label>
              Reason
              <input required maxLength={256} value={reason} onInput={(e) => setReason(e.currentTarget.value)} autoFocus />
            </label>
          )}
          <ErrorNote error={error} />
          <div class="row">
            <button type="submit" class={props.danger ? 'danger' : 'primary'} disabled={busy}>
              Confirm
            </button>
            <button type="button" onClick={() => ref.current?.close()}>
              Cancel
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}
