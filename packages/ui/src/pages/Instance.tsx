import type { ChangeEvent } from '@beacon/core';
import type { Explanation } from '@beacon/server';
import { call, enc, getJson } from '../api.js';
import { ConfirmButton, CopyButton, ErrorNote, StatusBadge, useLoad, useMayWrite, useNow } from '../components.js';
import { ago, duration, hostPort, time } from '../format.js';
import { instance, useLive } from '../live.js';
import { href } from '../router.js';
import { EventList } from './Timeline.js';


function FlagRow({ label, flag }: { label: string; flag: { reason: string; since: number } | undefined }) {
  if (!flag) return null;
  return (
    <>
      <dt>{label}</dt>
      <dd>
        {flag.reason} (since {time(flag.since)})
      </dd>
    </>
  );
}

export function InstancePage({ id }: { id: string }) {
  useLive();
  const live = instance(id);
  const now = useNow(1000);
  // Re-read when the instance changes in the stream, and every 5 s for the lease countdown.
  const explain = useLoad(async (s) => ({ e: await getJson<Explanation>(`/api/v1/instances/${enc(id)}/explain`, s), at: Date.now() }), [id, live?.modifyIndex, Math.floor(now / 5000)]);
  const events = useLoad((s) => getJson<{ events: ChangeEvent[] }>(`/api/v1/events?instance=${enc(id)}&limit=200`, s), [id, live?.modifyIndex]);
  const e = explain.data?.e;
  const service = live?.service ?? e?.service;
  const writable = useMayWrite(service !== undefined ? { resource: 'service', name: service } : undefined);
  const write = (path: string, json: unknown) => async () => {
    await call(`/api/v1/instances/${enc(id)}${path}`, { method: 'PUT', json });
    explain.reload();
  };
  return (
    <section aria-labelledby="h-instance">
      <p class="crumbs">
        <a href={href(['services'])}>Services</a> / {service !== undefined ? <a href={href(['services', service])}>{service}</a> : null} /
      </p>
      <h1 id="h-instance">{id}</h1>
      <ErrorNote error={explain.error} />
      {live && (
        <p>
          <StatusBadge status={live.status} /> <code>{hostPort(live.address, live.port)}</code>{' '}
          <CopyButton text={hostPort(live.address, live.port)} label="address" /> zone {live.zone || '—'}, weight {live.weight}, node {live.node}, source{' '}
          {live.source}
        </p>
      )}
      {e && (
        <>
          <h2>Why it is {e.inAnswers ? 'in' : 'not in'} the answers</h2>
          <p class={e.inAnswers ? 'ok' : 'notice'} data-testid="verdict">
            {!e.registered
              ? `Not registered${e.deregistered ? `: ${e.deregistered.reason} (${e.deregistered.cause}, ${ago(e.deregistered.at, now)})` : ''}.`
              : e.inPassingAnswers
                ? 'In every answer, including ?passing.'
                : e.inAnswers
                  ? 'In answers that allow warnings, but not in ?passing answers.'
                  : 'Left out of the answers.'}
          </p>
          {e.reasons.length > 0 && (
            <ul>
              {e.reasons.map((r) => (
                <li key={r}>{r}</li>
              ))}
            </ul>
          )}
          <dl>
            <FlagRow label="Maintenance" flag={e.maintenance} />
            <FlagRow label="Draining" flag={e.draining} />
            {e.lease && (
              <>
                <dt>Lease</dt>
                <dd>
                  {duration(e.lease.remainingMs - (now - explain.data!.at))} left of {duration(e.lease.ttlMs)}
                </dd>
              </>
            )}
          </dl>
          {e.registered && writable && (
            <div class="row actions">
              {e.maintenance ? (
                <ConfirmButton label="End maintenance" title={`End maintenance of ${id}?`} needsReason={false} onConfirm={write('/maintenance', { enable: false })} />
              ) : (
                <ConfirmButton label="Maintenance" title={`Put ${id} in maintenance?`} needsReason onConfirm={(reason) => write('/maintenance', { reason })()}>
                  <p>It turns critical and leaves every answer until maintenance ends.</p>
                </ConfirmButton>
              )}
              {e.draining ? (
                <ConfirmButton label="Stop draining" title={`Stop draining ${id}?`} needsReason={false} onConfirm={write('/drain', { enable: false })} />
              ) : (
                <ConfirmButton label="Drain" title={`Drain ${id}?`} needsReason onConfirm={(reason) => write('/drain', { reason })()}>
                  <p>It gets no new traffic but keeps serving what it has.</p>
                </ConfirmButton>
              )}
              <ConfirmButton
                label="Deregister"
                title={`Deregister ${id}?`}
                danger
                needsReason
                onConfirm={async (reason) => {
                  await call(`/api/v1/instances/${enc(id)}?reason=${enc(reason)}`, { method: 'DELETE' });
                  explain.reload();
                }}
              >
                <p>It is removed from the registry. A running service with a lease or an agent registers it again.</p>
              </ConfirmButton>
            </div>
          )}
          <h2>Checks</h2>
          {e.checks.length === 0 && <p>No checks: its lease (or nothing) keeps it in the answers.</p>}
          <ul class="checks">
            {e.checks.map((c) => (
              <li key={c.id}>
                <StatusBadge status={c.status} /> <strong>{c.name}</strong>{' '}
                <span class="muted">
                  {c.id} · {c.kind} · {c.role}
                  {c.node ? ` · node ${c.node}` : ''} · since {ago(c.since, now)}
                  {c.nextRunAt ? ` · next run in ${duration(c.nextRunAt - Date.now())}` : ''}
                </span>
                {c.output && <pre class="output">{c.output}</pre>}
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Timeline</h2>
      <ErrorNote error={events.error} />
      <EventList events={[...(events.data?.events ?? [])].reverse()} />
    </section>
  );
}
