import type { MemberView, SelfPreservationStatus } from '@beacon/server';
import { ApiError, getJson } from '../api.js';
import { ErrorNote, StatusBar, useLoad, useNow } from '../components.js';
import { duration, time } from '../format.js';
import { allSummaries, instanceCount, liveIndex, useLive } from '../live.js';

/** The fields of `GET /api/v1/status` this page shows. */
interface Status {
  version: string;
  node: string;
  index: number;
  store: string;
  startedAt: number;
  stale: boolean;
  staleForMs?: number;
  readiness: { status: string };
  warnings: string[];
}

/** Optional endpoints answer 404 where the feature is absent (self-preservation in clustered mode). */
const optional = <T,>(p: Promise<T>): Promise<T | undefined> => p.catch((e: { status?: number }) => (e.status === 404 ? undefined : Promise.reject(e)));
/** The server's own state needs `operator:read` with ACLs: a token without it sees a note in place of the card, not an error. */
const needsOperator = (e: Error | undefined): boolean => e instanceof ApiError && e.code === 'forbidden';
const NO_OPERATOR = 'Your token may not read this (it needs operator:read).';

export function Overview() {
  useLive();
  const index = liveIndex.value;
  const now = useNow(1000);
  // Server state is not in the change stream: re-read every 5 s while the page is open.
  const bucket = Math.floor(now / 5000);
  const status = useLoad((s) => getJson<Status>('/api/v1/status', s), [bucket]);
  const members = useLoad((s) => getJson<{ members: MemberView[] }>('/api/v1/members', s), [bucket]);
  const sp = useLoad((s) => optional(getJson<SelfPreservationStatus>('/api/v1/self-preservation', s)), [bucket]);
  const totals = { passing: 0, warning: 0, critical: 0 };
  let ready = 0;
  for (const s of allSummaries()) {
    totals.passing += s.counts.passing;
    totals.warning += s.counts.warning;
    totals.critical += s.counts.critical;
    ready += s.ready;
  }
  const st = status.data;
  const p = sp.data;
  return (
    <section aria-labelledby="h-overview">
      <h1 id="h-overview">Overview</h1>
      <ErrorNote error={status.error ?? (needsOperator(members.error) ? undefined : members.error) ?? (needsOperator(sp.error) ? undefined : sp.error)} />
      {p?.active && (
        <div class="banner" role="alert">
          <strong>Self-preservation is on: expired leases are not being evicted.</strong> {p.reason ?? `${Math.round(p.share * 100)}% of leases are lapsing`}
          {p.since ? ` (since ${time(p.since)})` : ''}. Above {Math.round(p.threshold * 100)}% lapsing together, the likelier cause is this server
          being cut off from the services rather than all of them failing, so their instances stay listed until renewals recover below{' '}
          {Math.round(p.resumeThreshold * 100)}%.
        </div>
      )}
      {st?.stale && (
        <div class="banner" role="alert">
          This server's view may be behind its store{st.staleForMs !== undefined ? ` for ${duration(st.staleForMs)}` : ''}: answers can miss recent writes.
        </div>
      )}
      <div class="cards">
        <div class="card">
          <h2>Instances</h2>
          <p class="big">{instanceCount()}</p>
          <p>
            {ready} ready in {allSummaries().length} services
          </p>
          <StatusBar counts={totals} />
          <p>
            {totals.passing} passing · {totals.warning} warning · {totals.critical} critical
          </p>
        </div>
        <div class="card">
          <h2>Server</h2>
          {st && (
            <dl>
              <dt>Node</dt>
              <dd>{st.node}</dd>
              <dt>Version</dt>
              <dd>{st.version}</dd>
              <dt>Store</dt>
              <dd>{st.store}</dd>
              <dt>Index</dt>
              <dd>{Math.max(index, st.index)}</dd>
              <dt>Uptime</dt>
              <dd>{duration(now - st.startedAt)}</dd>
              <dt>Readiness</dt>
              <dd>{st.readiness.status}</dd>
            </dl>
          )}
        </div>
        <div class="card">
          <h2>Self-preservation</h2>
          {needsOperator(sp.error) ? (
            <p class="muted">{NO_OPERATOR}</p>
          ) : p ? (
            <p>
              {p.active ? 'Active' : p.enabled ? 'Watching' : 'Off'}: {p.leases} leases, {p.atRisk} at risk, {p.recentExpiries} recent expiries.
            </p>
          ) : (
            <p>Not used on this server (clustered mode or turned off).</p>
          )}
        </div>
      </div>
      {st && st.warnings.length > 0 && (
        <ul class="warnings">
          {st.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      )}
      <h2>Servers</h2>
      {needsOperator(members.error) ? (
        <p class="muted">{NO_OPERATOR}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">Address</th>
              <th scope="col">Version</th>
              <th scope="col">Role</th>
              <th scope="col">Owns</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {(members.data?.members ?? []).map((m) => (
              <tr key={m.node}>
                <td>
                  {m.node}
                  {m.self ? ' (this one)' : ''}
                </td>
                <td>{m.httpUrl}</td>
                <td>{m.version}</td>
                <td>{m.leader ? 'leader' : 'member'}</td>
                <td>
                  {m.instances} instances, {m.checks} checks
                </td>
                <td>{m.lastSeenAt === null ? 'lease gone' : `${duration(now - m.lastSeenAt)} ago`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
