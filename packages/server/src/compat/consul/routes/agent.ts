import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors, type CheckStatus, type Instance } from '@beacon/core';
import { VERSION } from '../../../version.js';
import { checkToInput, reregister } from '../../reregister.js';
import { nodeId } from '../../nodes.js';
import type { ConsulContext } from '../context.js';
import { applyFilter } from '../filter.js';
import { blockingParams, bool, jsonBody, param, send, type Query } from '../http.js';
import { mapCheckId } from '../names.js';
import { checkTargetScope, registrationGuards } from '../../../acl/instances.js';
import { ROUTE, need, needServiceWrite, readable } from '../acl.js';
import { Fields, parseAgentCheck, parseAgentService } from '../registration.js';
import { NODE_MAINTENANCE_REASON, worstStatus, type HealthCheckJson } from '../views.js';

type Deps = Pick<ConsulContext, 'view' | 'catalog' | 'registry' | 'nodes' | 'random' | 'settings' | 'info' | 'stats' | 'members'>;

const SERVICE_MAINTENANCE = '_service_maintenance:';
const STATUS_CODE: Record<CheckStatus, number> = { passing: 200, warning: 429, critical: 503 };

/** /v1/agent/…: the server acts as the local agent of the instances on its own node. */
export async function agentRoutes(app: FastifyInstance, d: Deps): Promise<void> {
  const { view, catalog, registry, nodes } = d;

  const local = (): Instance[] => {
    const out: Instance[] = [];
    for (const s of catalog.services()) for (const i of catalog.service(s.name).instances) if (i.node === view.serverNode) out.push(i);
    return out;
  };

  /** A server in Consul's Serf shape; 8301 is Consul's LAN gossip port, which clients only display. */
  const member = (node: string, address: string, beaconVersion: string) => {
    return {
      Name: node,
      Addr: address,
      Port: 8301,
      Tags: { role: 'consul', dc: view.datacenter, id: nodeId(node), build: `${d.settings.version}:beacon-${beaconVersion}`, vsn: '2', vsn_min: '2', vsn_max: '3' },
      Status: 1,
      ProtocolMin: 1,
      ProtocolMax: 5,
      ProtocolCur: 2,
      DelegateMin: 2,
      DelegateMax: 5,
      DelegateCur: 4,
    };
  };
  const advertise = () => view.consulInstance();

  /** A check result is written by whoever may write its owner: the instance's service, or the node for a node check. */
  const needCheckOwnerWrite = (req: FastifyRequest, checkId: string): void => {
    const nodeCheck = catalog.nodeCheck(checkId);
    if (nodeCheck) return need(req, 'node', nodeCheck.node, 'write');
    const inst = catalog.instanceByCheck(checkId);
    // An unknown check is the registry's 404 to give; there is nothing to guard yet.
    if (inst) needServiceWrite(req, inst);
  };

  app.get('/agent/self', ROUTE, async (req, reply) => {
    need(req, 'agent', view.serverNode, 'read');
    const m = member(view.serverNode, advertise().address, VERSION);
    return send(req, reply, {
      Config: {
        Datacenter: view.datacenter,
        PrimaryDatacenter: view.datacenter,
        NodeName: view.serverNode,
        NodeID: nodeId(view.serverNode),
        Server: true,
        Revision: `beacon-${VERSION}`,
        Version: d.settings.version,
        BuildDate: new Date(d.info.startedAt).toISOString(),
      },
      DebugConfig: { Datacenter: view.datacenter, NodeName: view.serverNode, ServerMode: true, Bootstrap: true },
      Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 },
      Member: m,
      Stats: { beacon: { version: VERSION, store: d.info.storeKind, catalog_index: String(catalog.index) }, ...(d.stats?.() ?? {}) },
      Meta: { 'consul-network-segment': '' },
      xDS: null,
    });
  });

  // Every live server, as Consul lists the servers of its LAN pool (all alive: a dead one leaves the membership with its lease).
  app.get('/agent/members', ROUTE, async (req, reply) =>
    send(
      req,
      reply,
      readable(req, reply, 'node', await d.members(), (m) => m.node).map((m) =>
        member(m.node, m.self ? advertise().address : new URL(m.httpUrl).hostname.replace(/^\[(.*)\]$/, '$1'), m.version),
      ),
    ),
  );

  app.get('/agent/services', ROUTE, async (req, reply) => {
    const { filter } = blockingParams(req.query as Query, d.random);
    const items = readable(req, reply, 'service', local(), (i) => i.service).map((i) => view.agentService(i, { datacenter: true }));
    const out: Record<string, unknown> = {};
    for (const s of applyFilter(items, filter)) out[s.ID as string] = s;
    return send(req, reply, out);
  });

  app.get<{ Params: { id: string } }>('/agent/service/:id', ROUTE, async (req, reply) => {
    const inst = catalog.instance(req.params.id);
    if (!inst) return reply.status(404).type('text/plain').send(`unknown service ID: ${req.params.id}`);
    need(req, 'service', inst.service, 'read');
    const s = view.agentService(inst, { datacenter: true });
    s.ContentHash = `${inst.modifyIndex.toString(16).padStart(16, '0')}`;
    return send(req, reply, s, inst.modifyIndex);
  });

  app.put('/agent/service/register', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    const parsed = parseAgentService(jsonBody(req), { node: view.serverNode, defaultAddress: advertise().address });
    const input = parsed.input;
    need(req, 'service', input.service, 'write');
    const existing = catalog.instance(input.id!);
    if (existing && !bool(q, 'replace-existing-checks')) {
      // Consul keeps checks added separately (/v1/agent/check/register) unless asked to replace them.
      const ids = new Set((input.checks ?? []).map((c) => c.id));
      for (const c of existing.checks) if (!ids.has(c.id)) (input.checks ??= []).push(checkToInput(c));
    }
    const res = await registry.register(input, registrationGuards(req.authz, input.service));
    const maint = nodes.info(view.serverNode).maintenance;
    if (maint && !res.instance.maintenance) await registry.setMaintenance(res.instance.id, true, `${NODE_MAINTENANCE_REASON}: ${maint.reason}`);
    if (existing?.draining && !res.instance.draining) await registry.setDraining(existing.id, true, existing.draining.reason);
    return reply.send();
  });

  app.put<{ Params: { id: string } }>('/agent/service/deregister/:id', ROUTE, async (req, reply) => {
    const inst = catalog.instance(req.params.id);
    if (!inst) throw errors.notFound(`Unknown service ID ${JSON.stringify(req.params.id)}`);
    needServiceWrite(req, inst);
    await registry.deregister(req.params.id, 'api', 'deregistered through the Consul agent API');
    return reply.send();
  });

  app.put<{ Params: { id: string } }>('/agent/service/maintenance/:id', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    if (param(q, 'enable') === undefined) throw errors.invalid('Missing value for enable');
    const enable = bool(q, 'enable');
    const inst = catalog.instance(req.params.id);
    if (!inst) throw errors.notFound(`Unknown service ID ${JSON.stringify(req.params.id)}`);
    needServiceWrite(req, inst);
    await registry.setMaintenance(inst.id, enable, param(q, 'reason') || 'Maintenance mode is enabled for this service');
    return reply.send();
  });

  app.put('/agent/maintenance', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    if (param(q, 'enable') === undefined) throw errors.invalid('Missing value for enable');
    const enable = bool(q, 'enable');
    const reason = param(q, 'reason') || 'Maintenance mode is enabled for this node';
    need(req, 'node', view.serverNode, 'write');
    if (!nodes.record(view.serverNode)) {
      const { address } = advertise();
      await nodes.upsert({ name: view.serverNode, address });
    }
    await nodes.setMaintenance(view.serverNode, enable, reason);
    for (const i of local()) {
      const byNode = i.maintenance?.reason.startsWith(NODE_MAINTENANCE_REASON);
      if (enable && !i.maintenance) await registry.setMaintenance(i.id, true, `${NODE_MAINTENANCE_REASON}: ${reason}`);
      else if (!enable && byNode) await registry.setMaintenance(i.id, false, '');
    }
    return reply.send();
  });

  app.get('/agent/checks', ROUTE, async (req, reply) => {
    const { filter } = blockingParams(req.query as Query, d.random);
    const nodeChecks = view.nodeChecks(view.serverNode).filter((c) => c.CheckID !== 'serfHealth');
    const items: HealthCheckJson[] = readable(req, reply, 'node', nodeChecks, (c) => c.Node);
    for (const i of readable(req, reply, 'service', local(), (x) => x.service)) items.push(...view.serviceChecks(i));
    const out: Record<string, unknown> = {};
    for (const c of applyFilter(items, filter)) out[c.CheckID] = c;
    return send(req, reply, out);
  });

  app.put('/agent/check/register', ROUTE, async (req, reply) => {
    const f = new Fields(jsonBody(req), 'check');
    if (!f.str('name')) throw errors.invalid('Missing check name');
    const parsed = parseAgentCheck(f, { idFromName: true });
    // Without a ServiceID the check is the agent's node's: it judges every instance on the node.
    if (!parsed.serviceId) {
      need(req, 'node', view.serverNode, 'write');
      await registry.registerNodeCheck(view.serverNode, parsed.input, { checkTargets: checkTargetScope(req.authz) });
      return reply.send();
    }
    const inst = catalog.instance(parsed.serviceId);
    if (!inst) throw errors.notFound(`ServiceID ${JSON.stringify(parsed.serviceId)} does not exist`);
    needServiceWrite(req, inst);
    await reregister(registry, inst, (input) => ({ ...input, checks: [...(input.checks ?? []).filter((c) => c.id !== parsed.input.id), parsed.input] }), {
      checkTargets: checkTargetScope(req.authz),
    });
    return reply.send();
  });

  app.put<{ Params: { id: string } }>('/agent/check/deregister/:id', ROUTE, async (req, reply) => {
    const id = mapCheckId(req.params.id);
    if (id.startsWith(SERVICE_MAINTENANCE)) {
      const inst = catalog.instance(id.slice(SERVICE_MAINTENANCE.length));
      if (inst) needServiceWrite(req, inst);
      if (inst?.maintenance) await registry.setMaintenance(inst.id, false, '');
      return reply.send();
    }
    const nodeCheck = catalog.nodeCheck(id);
    if (nodeCheck) {
      need(req, 'node', nodeCheck.node, 'write');
      await registry.deregisterNodeCheck(id);
      return reply.send();
    }
    const inst = catalog.instanceByCheck(id);
    if (!inst) throw errors.notFound(`Unknown check ID ${JSON.stringify(req.params.id)}`);
    needServiceWrite(req, inst);
    await reregister(registry, inst, (input) => ({ ...input, checks: (input.checks ?? []).filter((c) => c.id !== id) }));
    return reply.send();
  });

  for (const [verb, status] of [
    ['pass', 'passing'],
    ['warn', 'warning'],
    ['fail', 'critical'],
  ] as const) {
    app.put<{ Params: { id: string } }>(`/agent/check/${verb}/:id`, ROUTE, async (req, reply) => {
      const id = mapCheckId(req.params.id);
      needCheckOwnerWrite(req, id);
      await registry.reportCheck(id, status, param(req.query as Query, 'note') ?? '');
      return reply.send();
    });
  }

  app.put<{ Params: { id: string } }>('/agent/check/update/:id', ROUTE, async (req, reply) => {
    const f = new Fields(jsonBody(req) ?? {}, 'update');
    const s = f.str('status');
    if (s !== 'passing' && s !== 'warning' && s !== 'critical') throw errors.invalid(`Invalid check status: ${JSON.stringify(s ?? '')}`);
    const id = mapCheckId(req.params.id);
    needCheckOwnerWrite(req, id);
    await registry.reportCheck(id, s, f.str('output') ?? '');
    return reply.send();
  });

  const aggregate = (i: Instance): string => (i.maintenance ? 'maintenance' : worstStatus(view.allChecks(i)));
  const healthBody = (i: Instance) => ({ AggregatedStatus: aggregate(i), Service: view.agentService(i, { datacenter: true }), Checks: view.allChecks(i) });
  const code = (statuses: string[]): number => {
    if (statuses.some((s) => s === 'critical' || s === 'maintenance')) return STATUS_CODE.critical;
    if (statuses.includes('warning')) return STATUS_CODE.warning;
    return STATUS_CODE.passing;
  };

  app.get<{ Params: { name: string } }>('/agent/health/service/name/:name', ROUTE, async (req, reply) => {
    const name = req.params.name.toLowerCase().replace(/[_.]/g, '-');
    need(req, 'service', name, 'read');
    const insts = local().filter((i) => i.service === name);
    const text = param(req.query as Query, 'format') === 'text';
    if (insts.length === 0) return reply.status(404).type('text/plain').send(`ServiceName ${req.params.name} Not Found`);
    const statuses = insts.map(aggregate);
    reply.status(code(statuses));
    if (text) return reply.type('text/plain').send(worst(statuses));
    return send(req, reply, insts.map(healthBody));
  });

  app.get<{ Params: { id: string } }>('/agent/health/service/id/:id', ROUTE, async (req, reply) => {
    const inst = catalog.instance(req.params.id);
    const text = param(req.query as Query, 'format') === 'text';
    if (!inst) return reply.status(404).type('text/plain').send(`ServiceId ${req.params.id} not found`);
    need(req, 'service', inst.service, 'read');
    const s = aggregate(inst);
    reply.status(code([s]));
    if (text) return reply.type('text/plain').send(s);
    return send(req, reply, healthBody(inst));
  });

  app.put('/agent/reload', ROUTE, async (req, reply) => {
    need(req, 'agent', view.serverNode, 'write');
    return reply.send();
  });
  for (const path of ['/agent/join/:address', '/agent/leave', '/agent/force-leave/:node']) {
    app.put(path, ROUTE, async (req, reply) => {
      need(req, 'agent', view.serverNode, 'write');
      return reply.status(501).type('text/plain').send('Beacon servers do not gossip: join, leave and force-leave are not supported');
    });
  }
}

function worst(statuses: string[]): string {
  if (statuses.includes('maintenance')) return 'maintenance';
  if (statuses.includes('critical')) return 'critical';
  if (statuses.includes('warning')) return 'warning';
  return 'passing';
}
