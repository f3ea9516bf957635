import { Argument, Option, type Command } from 'commander';
import { CHANGE_KINDS, formatDuration, TTL_BOUNDS, type ChangeEvent, type Instance } from '@beacon/core';
import { connect, type GlobalOptions } from '../connection.js';
import { collect, duration, indexOrDuration, integer, keyValue, port } from '../flags.js';
import { followWatch, untilInterrupted } from '../follow.js';
import { formatOf, print, printList, printStreamItem, renderRows, type Column, type OutputOptions } from '../output.js';
import { ago } from '../table.js';

const INSTANCE_COLUMNS: Column<Instance>[] = [
  { header: 'id', value: (i) => i.id },
  { header: 'address', value: (i) => `${i.address}:${i.port}` },
  { header: 'status', value: (i) => i.status },
  { header: 'ready', value: (i) => (i.conditions.ready ? 'yes' : i.maintenance ? 'no (maintenance)' : i.draining ? 'no (draining)' : 'no') },
  { header: 'zone', value: (i) => i.zone || '-' },
  { header: 'weight', value: (i) => i.weight },
  { header: 'node', value: (i) => i.node, wide: true },
  { header: 'source', value: (i) => i.source, wide: true },
  { header: 'checks', value: (i) => i.checks.map((c) => `${c.id}:${c.status}`).join(',') || '-', wide: true },
  { header: 'meta', value: (i) => Object.entries(i.meta).map(([k, v]) => `${k}=${v}`).join(',') || '-', wide: true },
  { header: 'tags', value: (i) => i.tags.join(',') || '-' },
];

const instanceRows = (o: OutputOptions, list: readonly Instance[]) => renderRows(o, list, INSTANCE_COLUMNS);

function eventLine(e: ChangeEvent): string {
  return `${new Date(e.at).toISOString()}  #${e.index}  ${e.service}/${e.instanceId}  ${e.kind}: ${e.reason}\n`;
}

interface ServiceSummary {
  name: string;
  instances: number;
  ready: number;
  status: Record<string, number>;
  tags: string[];
}

const SERVICE_COLUMNS: Column<ServiceSummary>[] = [
  { header: 'service', value: (s) => s.name },
  { header: 'instances', value: (s) => s.instances },
  { header: 'ready', value: (s) => s.ready },
  { header: 'passing', value: (s) => s.status.passing },
  { header: 'warning', value: (s) => s.status.warning },
  { header: 'critical', value: (s) => s.status.critical },
  { header: 'tags', value: (s) => s.tags.join(',') || '-' },
];

interface CheckState {
  id: string;
  name: string;
  kind: string;
  role: string;
  status: string;
  since: number;
  output: string;
}

const CHECK_COLUMNS: Column<CheckState>[] = [
  { header: 'check', value: (c) => c.id },
  { header: 'kind', value: (c) => c.kind },
  { header: 'role', value: (c) => c.role },
  { header: 'status', value: (c) => c.status },
  { header: 'since', value: (c) => ago(c.since) },
  { header: 'output', value: (c) => c.output.split('\n')[0]?.slice(0, 60) },
];

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
    .option('--dc <name>', 'of another datacenter (one the server federates with)')
    .action(async (o: { dc?: string }, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<ServiceSummary[]>('GET', '/api/v1/services', { query: { dc: o.dc } });
      printList(g(cmd), body, body, SERVICE_COLUMNS, 'no services\n');
    });

  program
    .command('instances <service>')
    .description('list the instances of a service')
    .option('--passing', 'only ready and passing instances')
    .option('-t, --tag <tag>', 'with this tag (repeatable)', collect)
    .option('-m, --meta <key=value>', 'with this metadata (repeatable)', keyValue('--meta', String))
    .option('--zone <zone>', 'in this zone')
    .option('--dc <name>', 'in another datacenter (one the server federates with)')
    .option('--failover <policy>', 'none ready here: from the nearest DCs that have some (nearest:2, or dc2,dc3)')
    .action(async (service: string, o, cmd: Command) => {
      const query: Record<string, string | string[] | undefined> = { passing: o.passing ? 'true' : undefined, tag: o.tag, zone: o.zone, dc: o.dc, failover: o.failover };
      for (const [k, v] of Object.entries<string>(o.meta ?? {})) query[`meta.${k}`] = v;
      const { body } = await connect(g(cmd)).request<{ index: number; datacenter: string; failovers?: number; instances: Instance[] }>('GET', `/api/v1/services/${encodeURIComponent(service)}/instances`, { query });
      // Which DC answered matters once the question can cross DCs; a table has no room for it.
      if ((o.dc || body.failovers !== undefined) && formatOf(g(cmd)) === 'table') process.stderr.write(`# from datacenter ${body.datacenter}\n`);
      printList(g(cmd), body, body.instances, INSTANCE_COLUMNS, `no instances of ${service}\n`);
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
        checks: CheckState[];
        lease?: { ttlMs: number; remainingMs: number };
        recentEvents: ChangeEvent[];
      };
      const { body: e } = await connect(g(cmd)).request<E>('GET', `/api/v1/instances/${encodeURIComponent(id)}/explain`);
      print(g(cmd), e, () => {
        let s = `${id} (${e.service ?? '?'}): ${e.registered ? (e.inAnswers ? (e.inPassingAnswers ? 'IN answers' : 'IN answers (not in ?passing)') : 'NOT in answers') : 'NOT registered'}\n`;
        if (e.status) s += `status: ${e.status}\n`;
        for (const r of e.reasons) s += `  - ${r}\n`;
        if (e.lease) s += `lease: ${formatDuration(e.lease.remainingMs)} left of ${formatDuration(e.lease.ttlMs)}\n`;
        if (e.checks.length) s += '\n' + renderRows(g(cmd), e.checks, CHECK_COLUMNS);
        if (e.recentEvents.length) s += '\nrecent events:\n' + e.recentEvents.map(eventLine).join('');
        return s;
      });
    });

  program
    .command('events')
    .description('history of changes with their reasons; --follow keeps printing new ones')
    .option('--service <name>', 'of this service')
    .option('--instance <id>', 'of this instance')
    .addOption(new Option('--kind <kind>', 'of this kind').choices(CHANGE_KINDS))
    .option('--since <index|duration>', 'after this index (e.g. 42), or within this long (e.g. 10m)', indexOrDuration)
    .option('--limit <n>', 'at most this many (newest)', integer(1, 1_000_000))
    .option('-f, --follow', 'then print changes as they happen, until Ctrl-C')
    .action(async (o, cmd: Command) => {
      const opts = g(cmd);
      const since = o.since as ReturnType<typeof indexOrDuration> | undefined;
      const { body } = await connect(opts).request<{ index: number; floor: number; events: ChangeEvent[] }>('GET', '/api/v1/events', {
        query: { service: o.service, instance: o.instance, kind: o.kind, limit: o.limit, since: since?.kind === 'index' ? since.index : undefined },
      });
      // The server keeps events by index; a time window is cut here, by the events' own times.
      const from = since?.kind === 'duration' ? Date.now() - since.ms : undefined;
      const events = from === undefined ? body.events : body.events.filter((e) => e.at >= from);
      const wanted = (e: ChangeEvent) => (!o.instance || e.instanceId === o.instance) && (!o.kind || e.kind === o.kind);
      if (!o.follow) {
        print(opts, { ...body, events }, () => (events.length ? events.map(eventLine).join('') : 'no events\n'));
        return;
      }
      // Following is a stream: one item per event in every format, the history first.
      for (const e of events) printStreamItem(opts, e, () => eventLine(e));
      await followWatch(
        'events',
        opts,
        o.service ? [o.service] : [],
        String(body.index),
        (f) => {
          if (f.event === 'change' && wanted(f.data.event)) printStreamItem(opts, f.data.event, () => eventLine(f.data.event));
          // Only after a gap longer than the server's history: say what was lost rather than hide it.
          else if (f.event === 'reset') process.stderr.write(`beacon: events before index ${f.data.index} are no longer held by the server; following from there\n`);
        },
        untilInterrupted(),
      );
    });

  program
    .command('watch [services...]')
    .description('stream changes live until Ctrl-C')
    .option('--dc <name>', 'of another datacenter (one the server federates with)')
    .action(async (services: string[], o: { dc?: string }, cmd: Command) => {
      const opts = g(cmd);
      const structured = formatOf(opts) === 'json' || formatOf(opts) === 'yaml';
      await followWatch(
        'watch',
        opts,
        services,
        undefined,
        ({ event, data }) => {
          if (structured) printStreamItem(opts, { event, ...data }, () => '');
          else if (event === 'reset') process.stdout.write(`# index ${data.index}: ${data.instances.length} instances\n` + (data.instances.length ? instanceRows(opts, data.instances) : ''));
          else if (event === 'change') {
            const i = data.instance as Instance | undefined;
            process.stdout.write(eventLine(data.event).trimEnd() + (i ? `  [${i.status}${i.conditions.ready ? ', ready' : ', not ready'}]` : '') + '\n');
          }
        },
        untilInterrupted(),
        o.dc ? { dc: o.dc } : {},
      );
    });
}
