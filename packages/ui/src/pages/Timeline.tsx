import type { ChangeEvent, Instance } from '@beacon/core';
import { useState } from 'preact/hooks';
import { enc, getJson } from '../api.js';
import { ErrorNote, StatusBadge, useLoad } from '../components.js';
import { time } from '../format.js';
import { liveIndex } from '../live.js';
import { href, replaceParams, route } from '../router.js';

export function EventList({ events }: { events: ChangeEvent[] }) {
  if (events.length === 0) return <p>No events in the retained history.</p>;
  return (
    <ol class="events">
      {events.map((e) => (
        <li key={`${e.index}-${e.instanceId}-${e.kind}-${e.checkId ?? ''}`}>
          <span class="muted">
            #{e.index} · {time(e.at)}
          </span>{' '}
          <strong>{e.kind}</strong> <a href={href(['instances', e.instanceId])}>{e.instanceId}</a>{' '}
          {e.from && e.to && (
            <>
              <StatusBadge status={e.from} /> → <StatusBadge status={e.to} />{' '}
            </>
          )}
          {e.reason}
          {e.output ? <pre class="output">{e.output}</pre> : null}
        </li>
      ))}
    </ol>
  );
}

interface Diff {
  service: string;
  from: number;
  to: number;
  added: Instance[];
  removed: { id: string; before?: Instance }[];
  changed: { id: string; before?: Instance; after: Instance; fields: string[] }[];
}

const show = (v: unknown): string => (v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));

function DiffView({ service, from, to }: { service: string; from: number; to: number | undefined }) {
  const d = useLoad((s) => getJson<Diff>(`/api/v1/services/${enc(service)}/diff?from=${from}${to !== undefined ? `&to=${to}` : ''}`, s), [service, from, to]);
  if (d.error) return <ErrorNote error={d.error} />;
  const x = d.data;
  if (!x) return null;
  return (
    <div class="diff" aria-live="polite">
      <p>
        {service} from #{x.from} to #{x.to}: {x.added.length} added, {x.removed.length} removed, {x.changed.length} changed.
      </p>
      <ul>
        {x.added.map((i) => (
          <li key={i.id} class="added">
            + {i.id} ({i.address}:{i.port}, {i.status})
          </li>
        ))}
        {x.removed.map((r) => (
          <li key={r.id} class="removed">
            − {r.id}
          </li>
        ))}
        {x.changed.map((c) => (
          <li key={c.id}>
            ~ {c.id}
            <table>
              <thead>
                <tr>
                  <th scope="col">Field</th>
                  <th scope="col">At #{x.from}</th>
                  <th scope="col">At #{x.to}</th>
                </tr>
              </thead>
              <tbody>
                {c.fields.map((f) => (
                  <tr key={f}>
                    <td>{f}</td>
                    <td>
                      <code>{c.before ? show((c.before as unknown as Record<string, unknown>)[f]) : 'not in the retained history'}</code>
                    </td>
                    <td>
                      <code>{show((c.after as unknown as Record<string, unknown>)[f])}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </li>
        ))}
      </ul>
    </div>
  );
}

export function Timeline() {
  const p = route.value.params;
  const service = p.get('service') ?? '';
  const inst = p.get('instance') ?? '';
  const kind = p.get('kind') ?? '';
  const index = liveIndex.value;
  const qs = new URLSearchParams({ limit: '500' });
  if (service) qs.set('service', service);
  if (inst) qs.set('instance', inst);
  if (kind) qs.set('kind', kind);
  const events = useLoad((s) => getJson<{ index: number; floor: number; events: ChangeEvent[] }>(`/api/v1/events?${qs}`, s), [qs.toString(), index]);
  const [from, setFrom] = useState(p.get('from') ?? '');
  const [to, setTo] = useState(p.get('to') ?? '');
  const diffFrom = p.get('from');
  const diffTo = p.get('to');
  return (
    <section aria-labelledby="h-timeline">
      <h1 id="h-timeline">Timeline</h1>
      <div class="row filters">
        <label>
          Service
          <input value={service} onInput={(e) => replaceParams({ service: e.currentTarget.value || undefined })} />
        </label>
        <label>
          Instance
          <input value={inst} onInput={(e) => replaceParams({ instance: e.currentTarget.value || undefined })} />
        </label>
        <label>
          Kind
          <select value={kind} onChange={(e) => replaceParams({ kind: e.currentTarget.value || undefined })}>
            <option value="">any</option>
            {['registered', 'updated', 'deregistered', 'check', 'maintenance', 'drain'].map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
      </div>
      <h2>Diff of a service between two indexes</h2>
      <form
        class="row filters"
        onSubmit={(e) => {
          e.preventDefault();
          replaceParams({ from: from || undefined, to: to || undefined });
        }}
      >
        <label>
          From index
          <input inputMode="numeric" pattern="[0-9]+" required value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          To index (empty: now)
          <input inputMode="numeric" pattern="[0-9]*" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={!service}>
          Show diff
        </button>
        {!service && <span class="help">Pick a service above first.</span>}
      </form>
      {service && diffFrom && <DiffView service={service} from={Number(diffFrom)} to={diffTo ? Number(diffTo) : undefined} />}
      <h2>Events</h2>
      <ErrorNote error={events.error} />
      {events.data && (
        <p class="help">
          History retained from index {events.data.floor}; now at {events.data.index}.
        </p>
      )}
      <EventList events={[...(events.data?.events ?? [])].reverse()} />
    </section>
  );
}
