import { Argument, type Command } from 'commander';
import { formatDuration, TTL_BOUNDS, type ChangeEvent, type Instance } from '@beacon/core';
import { describeFetchError } from '@beacon/client/http';
import { parseSse } from '@beacon/client/sse';
import { connect, print, serverUrls, type GlobalOptions } from '../connection.js';
import { collect, duration, integer, keyValue, port } from '../flags.js';
import { ago, table } from '../table.js';

function instanceRows(list: readonly Instance[]): string {
  return table(
    ['id', 'address', 'status', 'ready', 'zone', 'weight', 'tags'],
    list.map((i) => [
      i.id,
      `${i.address}:${i.port}`,
      i.status,
      i.conditions.ready ? 'yes' : i.maintenance ? 'no (maintenance)' : i.draining ? 'no (draining)' : 'no',
      i.zone || '-',
      i.weight,
      i.tags.join(',') || '-',
    ]),
  );
}

function eventLine(e: ChangeEvent): string {
  return `${new Date(e.at).toISOString()}  #${e.index}  ${e.service}/${e.instanceId}  ${e.kind}: ${e.reason}\n`;
}

/** The client commands: each a thin call to the native HTTP API. */
export function clientCommands(program: Command): void {
  const g = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();

  program
    .command('register')
    .description('register (or update) an instance')
    .requiredOption('-s, --service <name>', 'service name (a DNS label)')
    .requiredOption('-a, --address <addr>', 'address clients connect to')
    .requiredOption('-p, --port <port>', 'port (0-65535)', port)
    .option('--id <id>', 'instance id (default <service>-<address>-<port>)')
    .option('-t, --tag <tag>', 'tag (repeatable)', collect)
    .option('-m, --meta <key=value>', 'metadata (repeatable)', keyValue('--meta', String))
    .option('--port-name <name=port>', 'named port (repeatable)', keyValue('--port-name', port))
    .option('--zone <zone>', 'zone')
    .option('--weight <n>', 'weight (0-65535, default 1)', integer(0, 65535))
    .option('--ttl <duration>', 'lease: deregister unless heartbeats arrive within this time (1s-24h, e.g. 30s)', duration(TTL_BOUNDS))
    .option('--check-ttl <duration>', 'add a TTL check that must be passed within this time (1s-24h)', duration(TTL_BOUNDS))
    .action(async (o, cmd: Command) => {
      const body: Record<string, unknown> = { service: o.service, address: o.address, port: o.port };
      if (o.id) body.id = o.id;
      if (o.tag) body.tags = o.tag;
      if (o.meta) body.meta = o.meta;
      if (o.portName) body.ports = o.portName;
      if (o.zone) body.zone = o.zone;
      if (o.weight !== undefined) body.weight = o.weight;
      if (o.ttl !== undefined) body.ttlMs = o.ttl;
      if (o.checkTtl !== undefined) body.checks = [{ kind: 'ttl', ttlMs: o.checkTtl }];
      const { body: r } = await connect(g(cmd)).request<{ index: number; created: boolean; instance: Instance }>('PUT', '/api/v1/instances', { body });
      print(g(cmd), r, () => `${r.created ? 'registered' : 'updated'} ${r.instance.id} (${r.instance.service} at ${r.instance.address}:${r.instance.port}), index ${r.index}\n`);
    });

  program
    .command('deregister <id>')
    .description('deregister an instance')
    .action(async (id: string, _o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<{ index: number }>('DELETE', `/api/v1/instances/${encodeURIComponent(id)}`);
      print(g(cmd), body, () => `deregistered ${id}, index ${body.index}\n`);
    });

  program
    .command('heartbeat <id>')
    .description("renew an instance's lease")
    .action(async (id: string, _o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<{ ttlMs: number; remainingMs: number }>('PUT', `/api/v1/instances/${encodeURIComponent(id)}/heartbeat`);
      print(g(cmd), body, () => `lease renewed: ${formatDuration(body.remainingMs)} left\n`);
    });

  for (const [name, path, what] of [
    ['maintenance', 'maintenance', 'put an instance in maintenance (out of answers)'],
    ['drain', 'drain', 'drain an instance (no new traffic)'],
  ] as const) {
    program
      .command(`${name} <id>`)
      .description(what)
      .option('-r, --reason <text>', 'why', '')
      .option('--off', `end ${name}`)
      .action(async (id: string, o: { reason: string; off?: boolean }, cmd: Command) => {
        const { body } = await connect(g(cmd)).request<{ index: number }>('PUT', `/api/v1/instances/${encodeURIComponent(id)}/${path}`, {
          body: { enable: !o.off, reason: o.reason },
        });
        print(g(cmd), body, () => `${name} ${o.off ? 'off' : 'on'} for ${id}, index ${body.index}\n`);
      });
  }

  program
    .command('check')
    .description('report a TTL check: pass, warn or fail')
    .addArgument(new Argument('<verb>', 'what to report').choices(['pass', 'warn', 'fail']))
    .argument('<checkId>', 'the check (see `beacon explain <instance>`)')
    .option('-n, --note <text>', 'output to record')
    .action(async (verb: string, checkId: string, o: { note?: string }, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<{ index: number }>('PUT', `/api/v1/checks/${encodeURIComponent(checkId)}/${verb}`, {
        body: o.note !== undefined ? { note: o.note } : {},
      });
      print(g(cmd), body, () => `check ${checkId}: ${verb}, index ${body.index}\n`);
    });

  program
    .command('services')
    .description('list services')
    .action(async (_o, cmd: Command) => {
      type S = { name: string; instances: number; ready: number; status: Record<string, number>; tags: string[] };
      const { body } = await connect(g(cmd)).request<S[]>('GET', '/api/v1/services');
      print(g(cmd), body, () =>
        table(
          ['service', 'instances', 'ready', 'passing', 'warning', 'critical', 'tags'],
          body.map((s) => [s.name, s.instances, s.ready, s.status.passing, s.status.warning, s.status.critical, s.tags.join(',') || '-']),
        ),
      );
    });

  program
    .command('instances <service>')
    .description('list the instances of a service')
    .option('--passing', 'only ready and passing instances')
    .option('-t, --tag <tag>', 'with this tag (repeatable)', collect)
    .option('-m, --meta <key=value>', 'with this metadata (repeatable)', keyValue('--meta', String))
    .option('--zone <zone>', 'in this zone')
    .action(async (service: string, o, cmd: Command) => {
      const query: Record<string, string | string[] | undefined> = { passing: o.passing ? 'true' : undefined, tag: o.tag, zone: o.zone };
      for (const [k, v] of Object.entries<string>(o.meta ?? {})) query[`meta.${k}`] = v;
      const { body } = await connect(g(cmd)).request<{ index: number; instances: Instance[] }>('GET', `/api/v1/services/${encodeURIComponent(service)}/instances`, { query });
      print(g(cmd), body, () => (body.instances.length ? instanceRows(body.instances) : `no instances of ${service}\n`));
    });

  program
    .command('explain <id>')
    .description('why an instance is, or is not, in the answers')
    .action(async (id: string, _o, cmd: Command) => {
      type E = {
        registered: boolean;
        service?: string;
        inAnswers: boolean;
        inPassingAnswers: boolean;
        status?: string;
        reasons: string[];
        checks: { id: string; name: string; kind: string; role: string; status: string; since: number; output: string }[];
        lease?: { ttlMs: number; remainingMs: number };
        recentEvents: ChangeEvent[];
      };
      const { body: e } = await connect(g(cmd)).request<E>('GET', `/api/v1/instances/${encodeURIComponent(id)}/explain`);
      print(g(cmd), e, () => {
        let s = `${id} (${e.service ?? '?'}): ${e.registered ? (e.inAnswers ? (e.inPassingAnswers ? 'IN answers' : 'IN answers (not in ?passing)') : 'NOT in answers') : 'NOT registered'}\n`;
        if (e.status) s += `status: ${e.status}\n`;
        for (const r of e.reasons) s += `  - ${r}\n`;
        if (e.lease) s += `lease: ${formatDuration(e.lease.remainingMs)} left of ${formatDuration(e.lease.ttlMs)}\n`;
        if (e.checks.length) s += '\n' + table(['check', 'kind', 'role', 'status', 'since', 'output'], e.checks.map((c) => [c.id, c.kind, c.role, c.status, ago(c.since), c.output.split('\n')[0]?.slice(0, 60)]));
        if (e.recentEvents.length) s += '\nrecent events:\n' + e.recentEvents.map(eventLine).join('');
        return s;
      });
    });

  program
    .command('events')
    .description('history of changes with their reasons')
    .option('--service <name>', 'of this service')
    .option('--instance <id>', 'of this instance')
    .option('--limit <n>', 'at most this many (newest)', integer(1, 1_000_000))
    .action(async (o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<{ events: ChangeEvent[] }>('GET', '/api/v1/events', {
        query: { service: o.service, instance: o.instance, limit: o.limit },
      });
      print(g(cmd), body, () => (body.events.length ? body.events.map(eventLine).join('') : 'no events\n'));
    });

  program
    .command('watch [services...]')
    .description('stream changes live until Ctrl-C')
    .action(async (services: string[], _o, cmd: Command) => {
      const opts = g(cmd);
      const http = connect(opts);
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      let lastId: string | undefined;
      // Reconnect with Last-Event-ID so nothing is missed while the server restarts.
      while (!ac.signal.aborted) {
        for (const server of serverUrls(opts.server)) {
          try {
            const res = await fetch(http.url(server, '/api/v1/watch', { service: services }), {
              headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
              signal: ac.signal,
            });
            if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
            for await (const ev of parseSse(res.body)) {
              if (ev.id) lastId = ev.id;
              const data = JSON.parse(ev.data);
              if (opts.json) process.stdout.write(JSON.stringify({ event: ev.event, ...data }) + '\n');
              else if (ev.event === 'reset') process.stdout.write(`# index ${data.index}: ${data.instances.length} instances\n` + (data.instances.length ? instanceRows(data.instances) : ''));
              else if (ev.event === 'change') {
                const i = data.instance as Instance | undefined;
                process.stdout.write(eventLine(data.event).trimEnd() + (i ? `  [${i.status}${i.conditions.ready ? ', ready' : ', not ready'}]` : '') + '\n');
              }
            }
          } catch (err) {
            if (ac.signal.aborted) return;
            process.stderr.write(`watch: ${server}: ${describeFetchError(err)}; retrying\n`);
          }
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    });
}
