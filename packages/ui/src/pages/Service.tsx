import type { Instance } from '@beacon/core';
import { enc, getJson } from '../api.js';
import { CopyButton, StatusBadge, StatusBar, useLoad, useNow } from '../components.js';
import { ago, duration, hostPort } from '../format.js';
import { serviceInstances, serviceSummary, useLive } from '../live.js';
import { href } from '../router.js';

/** Leases are not in the stream (heartbeats change nothing there): ask explain for the few instances that hold one. */
const MAX_LEASES = 50;

function useLeases(instances: Instance[]): Map<string, { remainingMs: number; at: number }> {
  const leased = instances.filter((i) => i.ttlMs !== undefined).slice(0, MAX_LEASES);
  const now = useNow(1000);
  const key = `${leased.map((i) => i.id).join(',')}@${Math.floor(now / 5000)}`;
  const loaded = useLoad(
    async (signal) => {
      const out = new Map<string, { remainingMs: number; at: number }>();
      await Promise.all(
        leased.map(async (i) => {
          const e = await getJson<{ lease?: { remainingMs: number } }>(`/api/v1/instances/${enc(i.id)}/explain`, signal).catch(() => undefined);
          if (e?.lease) out.set(i.id, { remainingMs: e.lease.remainingMs, at: Date.now() });
        }),
      );
      return out;
    },
    [key],
  );
  return loaded.data ?? new Map();
}

export function Service({ name }: { name: string }) {
  useLive();
  const now = useNow(1000);
  const summary = serviceSummary(name);
  const instances = serviceInstances(name);
  const leases = useLeases(instances);
  const origin = location.origin;
  const dnsHost = location.hostname.replace(/^\[|\]$/g, '');
  return (
    <section aria-labelledby="h-service">
      <p class="crumbs">
        <a href={href(['services'])}>Services</a> /
      </p>
      <h1 id="h-service">{name}</h1>
      {!summary ? (
        <p>No instances of this service are registered right now.</p>
      ) : (
        <>
          <p>
            {summary.ready} of {summary.total} ready <StatusBar counts={summary.counts} />
          </p>
          <table>
            <thead>
              <tr>
                <th scope="col">Instance</th>
                <th scope="col">Address</th>
                <th scope="col">Zone</th>
                <th scope="col">Weight</th>
                <th scope="col">Tags</th>
                <th scope="col">Conditions</th>
                <th scope="col">Lease</th>
                <th scope="col">Checks</th>
              </tr>
            </thead>
            <tbody>
              {instances.map((i) => {
                const addr = hostPort(i.address, i.port);
                const lease = leases.get(i.id);
                return (
                  <tr key={i.id}>
                    <td>
                      <a href={href(['instances', i.id])}>{i.id}</a> <StatusBadge status={i.status} />
                    </td>
                    <td>
                      <code>{addr}</code> <CopyButton text={addr} label={`address of ${i.id}`} />
                    </td>
                    <td>{i.zone || '—'}</td>
                    <td>{i.weight}</td>
                    <td class="tags">
                      {i.tags.map((t) => (
                        <span key={t} class="chip">
                          {t}
                        </span>
                      ))}
                    </td>
                    <td>
                      {i.conditions.ready ? 'ready' : 'not ready'}
                      {i.conditions.terminating ? ', draining' : ''}
                      {i.maintenance ? ', maintenance' : ''}
                    </td>
                    <td>{i.ttlMs === undefined ? '—' : lease ? `${duration(lease.remainingMs - (now - lease.at))} left of ${duration(i.ttlMs)}` : duration(i.ttlMs)}</td>
                    <td>
                      <ul class="checks">
                        {i.checks.map((c) => (
                          <li key={c.id}>
                            <StatusBadge status={c.status} /> {c.name} <span class="muted">({c.kind}, since {ago(c.since, now)})</span>
                            {c.output && <pre class="output">{c.output}</pre>}
                          </li>
                        ))}
                      </ul>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </>
      )}
      <h2>Find it</h2>
      <p>
        DNS names (default domain <code>consul.</code>, default DNS port 8600): <code>{name}.service.consul</code>, SRV <code>_{name}._tcp.service.consul</code>
        {summary?.tags[0] ? (
          <>
            , tagged <code>{`${summary.tags[0]}.${name}.service.consul`}</code>
          </>
        ) : null}
        .
      </p>
      {(
        [
          ['the dig command', `dig @${dnsHost} -p 8600 ${name}.service.consul SRV +short`],
          ['the curl command (native API)', `curl -s '${origin}/api/v1/services/${name}/instances?passing'`],
          ['the curl command (Consul API)', `curl -s '${origin}/v1/health/service/${name}?passing'`],
        ] as const
      ).map(([label, line]) => (
        <p key={line} class="cmd">
          <code>{line}</code> <CopyButton text={line} label={label} />
        </p>
      ))}
      <p>
        <a href={href(['timeline'], { service: name })}>History of {name}</a>
      </p>
    </section>
  );
}
