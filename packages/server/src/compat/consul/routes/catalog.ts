import type { CancelSignal } from '../../../util/cancel.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { assertNodeName, errors, type Instance } from '@beacon/core';
import { checkToInput, reregister } from '../../reregister.js';
import type { ConsulContext, DcScope } from '../context.js';
import { applyFilter } from '../filter.js';
import { block, blockingParams, jsonBody, matchesNodeMeta, nodeMetaFilter, param, params, send, type BlockingParams, type Query } from '../http.js';
import { mapCheckId, serviceNameForRead } from '../names.js';
import { Fields, parseCatalogCheck, parseCatalogService, type ParsedCheck } from '../registration.js';
import type { ConsulView } from '../views.js';
import { checkTargetScope, registrationGuards } from '../../../acl/instances.js';
import { ROUTE, mayRead, need, needServiceWrite, readable } from '../acl.js';

type Deps = Pick<ConsulContext, 'view' | 'catalog' | 'registry' | 'nodes' | 'catalogIndex' | 'random' | 'clock' | 'metrics' | 'limits' | 'acl' | 'scope' | 'federation'>;

/**
 * Parks a blocking read on one service and returns its name and entry afterwards; `undefined` for
 * a name no Beacon service can have (it waits out the timeout, and the caller answers empty).
 */
export async function blockOnService(
  reply: FastifyReply,
  p: BlockingParams,
  rawName: string,
  d: Pick<ConsulContext, 'clock' | 'metrics' | 'limits' | 'acl'>,
  dc: Pick<DcScope, 'view' | 'catalog'>,
): Promise<{ name: string; entry: ReturnType<ConsulView['service']> } | undefined> {
  const name = serviceNameForRead(rawName);
  if (!name) {
    await block(reply, p, (_m, ms, signal) => sleep(d.clock, ms, signal), d);
    return undefined;
  }
  await block(reply, p, (m, ms, signal) => dc.catalog.waitForService(name, m, ms, signal), d);
  return { name, entry: dc.view.service(name) };
}

/** Resolves when the wait ends or the client leaves: for names no service can ever have. */
function sleep(clock: ConsulContext['clock'], ms: number, signal: CancelSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      t.cancel();
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = clock.setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The instance Consul calls `serviceId` on `node` (ids are per node in Consul, global in Beacon). */
export function findOnNode(catalog: ConsulContext['catalog'], node: string, serviceId: string): Instance | undefined {
  const direct = catalog.instance(serviceId);
  if (direct && direct.node === node) return direct;
  const suffixed = catalog.instance(`${serviceId}@${node}`);
  return suffixed && suffixed.node === node ? suffixed : undefined;
}

/** Writes a catalog check's status (catalog checks are set by whoever registers them). */
export async function applyCheckStatuses(d: Pick<ConsulContext, 'catalog' | 'registry'>, checks: ParsedCheck[]): Promise<void> {
  for (const c of checks) {
    if (!c.status || !c.input.id) continue;
    if (d.catalog.nodeCheck(c.input.id)) {
      await d.registry.reportCheck(c.input.id, c.status, c.output ?? '');
      continue;
    }
    const inst = d.catalog.instanceByCheck(c.input.id);
    const cur = inst?.checks.find((x) => x.id === c.input.id);
    if (!cur) continue;
    if (cur.kind === 'ttl') await d.registry.reportCheck(cur.id, c.status, c.output ?? '');
    else if (cur.status !== c.status) await d.registry.setCheckStatus(cur.id, c.status, c.output ?? '', 'set through /v1/catalog/register');
  }
}

export function nodeInstances(view: ConsulView): Map<string, Instance[]> {
  const byNode = new Map<string, Instance[]>();
  for (const i of view.allInstances()) {
    let list = byNode.get(i.node);
    if (!list) byNode.set(i.node, (list = []));
    list.push(i);
  }
  return byNode;
}

/** /v1/catalog/…: registration of nodes and services, and the catalog as Consul lists it. */
export async function catalogRoutes(app: FastifyInstance, d: Deps): Promise<void> {
  const { view, catalog, registry, nodes, catalogIndex } = d;

  app.put('/catalog/register', ROUTE, async (req, reply) => {
    const f = new Fields(jsonBody(req), 'registration');
    const node = f.str('node');
    if (!node) throw errors.invalid('Must provide node');
    assertNodeName(node);
    const skip = f.bool('skipnodeupdate') === true && !!nodes.record(node);
    const address = f.str('address') || nodes.record(node)?.address;
    if (!address) throw errors.invalid('Must provide address');
    const svc = f.sub('service');
    const checks = (f.list('checks') ?? (f.has('check') ? [f.sub('check')!] : [])).map(parseCatalogCheck);
    // Consul's rule: writing the node's record or its own checks needs node write; a service alone needs service write.
    if (!skip || checks.some((c) => !c.serviceId)) need(req, 'node', node, 'write');
    if (!skip) {
      const tagged = f.stringMap('taggedaddresses');
      await nodes.upsert({ name: node, address, meta: f.stringMap('nodemeta') ?? {}, ...(tagged ? { taggedAddresses: tagged } : {}) });
    }
    // Checks without a ServiceID are the node's (serfHealth is the server's own, not stored).
    const scope = { checkTargets: checkTargetScope(req.authz) };
    for (const c of checks) if (!c.serviceId && c.input.id !== 'serfHealth') await registry.registerNodeCheck(node, c.input, scope);
    if (svc) {
      const input = parseCatalogService(svc, { node, nodeAddress: address });
      need(req, 'service', input.service, 'write');
      const consulId = input.id!;
      const taken = catalog.instance(consulId);
      if (taken && taken.node !== node) input.id = `${consulId}@${node}`;
      const existing = catalog.instance(input.id!);

      const mine = checks.filter((c) => c.serviceId === consulId);
      const ids = new Set(mine.map((c) => c.input.id));
      input.checks = [...mine.map((c) => c.input), ...(existing?.checks.filter((c) => !ids.has(c.id)).map(checkToInput) ?? [])];
      await registry.register(input, registrationGuards(req.authz, input.service));
    }
    // Checks for services registered earlier on this node.
    const others = checks.filter((c) => c.serviceId && (!svc || c.serviceId !== (svc.str('id') || svc.str('service'))));
    for (const c of others) {
      const inst = findOnNode(catalog, node, c.serviceId!);
      if (!inst) throw errors.invalid(`Unknown service ID ${JSON.stringify(c.serviceId)} for check ${JSON.stringify(c.input.id)}`);
      needServiceWrite(req, inst);
      await reregister(registry, inst, (input) => ({ ...input, checks: [...(input.checks ?? []).filter((x) => x.id !== c.input.id), c.input] }), scope);
    }
    await applyCheckStatuses(d, checks);
    return send(req, reply, true);
  });

  app.put('/catalog/deregister', ROUTE, async (req, reply) => {
    const f = new Fields(jsonBody(req), 'deregistration');
    const node = f.str('node');
    if (!node) throw errors.invalid('Must provide node');
    const checkId = f.str('checkid');
    const serviceId = f.str('serviceid');
    if (checkId) {
      const id = mapCheckId(checkId);
      if (catalog.nodeCheck(id)?.node === node) {
        need(req, 'node', node, 'write');
        await registry.deregisterNodeCheck(id);
      }
      const inst = catalog.instanceByCheck(id);
      if (inst && inst.node === node) needServiceWrite(req, inst);
      if (inst && inst.node === node) await reregister(registry, inst, (input) => ({ ...input, checks: (input.checks ?? []).filter((c) => c.id !== id) }));
    } else if (serviceId) {
      const inst = findOnNode(catalog, node, serviceId);
      if (inst) needServiceWrite(req, inst);
      if (inst) await registry.deregister(inst.id, 'api', 'deregistered through /v1/catalog/deregister');
    } else {
      need(req, 'node', node, 'write');
      for (const i of nodeInstances(view).get(node) ?? []) needServiceWrite(req, i);
      for (const i of nodeInstances(view).get(node) ?? []) {
        if (i.id === 'consul' && i.node === view.serverNode && !catalog.instance('consul')) continue;
        await registry.deregister(i.id, 'api', `node ${node} deregistered through /v1/catalog/deregister`);
      }
      for (const r of catalog.allNodeChecks()) if (r.node === node) await registry.deregisterNodeCheck(r.check.id);
      // The server's own node stays: it is where the server is (Consul's anti-entropy would restore it too).
      if (node !== view.serverNode) await nodes.remove(node);
    }
    return send(req, reply, true);
  });

  // Consul's order: by round-trip time, nearest first (this DC is at distance 0).
  app.get('/catalog/datacenters', ROUTE, async (req, reply) => send(req, reply, d.federation.names()));

  const global = (minIndex: number, ms: number, signal: CancelSignal) => catalogIndex.wait(minIndex, ms, signal);

  app.get('/catalog/nodes', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    const p = blockingParams(q, d.random);
    await block(reply, p, global, d);
    const meta = nodeMetaFilter(q);
    const byNode = nodeInstances(view);
    const items = readable(req, reply, 'node', view.nodeNames(), (n) => n)
      .map((n) => view.nodeInfo(n, byNode.get(n)?.[0]))
      .filter((n) => matchesNodeMeta(n.meta, meta))
      .map((n) => view.nodeJson(n));
    return send(req, reply, applyFilter(items, p.filter), catalogIndex.index);
  });

  app.get('/catalog/services', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    const p = blockingParams(q, d.random);
    const dc = d.scope(param(q, 'dc'));
    const view = dc.view;
    if (dc.local) await block(reply, p, global, d);
    else await block(reply, p, (m, ms) => dc.catalog.waitForIndex(m + 1, ms).catch(() => undefined), d);
    const meta = nodeMetaFilter(q);
    const out: Record<string, string[]> = {};
    const tags = new Map<string, Set<string>>();
    for (const i of readable(req, reply, 'service', [...view.allInstances()], (x) => x.service)) {
      if (meta.length && !matchesNodeMeta(view.nodeInfo(i.node, i).meta, meta)) continue;
      if (p.filter && applyFilter([view.serviceNode(i)], p.filter).length === 0) continue;
      let set = tags.get(i.service);
      if (!set) tags.set(i.service, (set = new Set()));
      for (const t of i.tags) set.add(t);
    }
    for (const name of [...tags.keys()].sort()) out[name] = [...tags.get(name)!].sort();
    return send(req, reply, out, dc.local ? catalogIndex.index : dc.catalog.index);
  });

  app.get<{ Params: { name: string } }>('/catalog/service/:name', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    const p = blockingParams(q, d.random);
    const tags = params(q, 'tag');
    const meta = nodeMetaFilter(q);
    const dc = d.scope(param(q, 'dc'));
    const view = dc.view;
    const found = await blockOnService(reply, p, req.params.name, d, dc);
    if (!found) return send(req, reply, [], catalogIndex.index);
    const { name, entry } = found;
    if (!mayRead(req, reply, 'service', name)) return send(req, reply, [], entry.index);
    const items = entry.instances
      .filter((i) => tags.every((t) => i.tags.includes(t)))
      .filter((i) => !meta.length || matchesNodeMeta(view.nodeInfo(i.node, i).meta, meta))
      .map((i) => view.serviceNode(i));
    return send(req, reply, applyFilter(items, p.filter), entry.index);
  });

  /** A node and the services on it the token may read; undefined when the node is unknown or not readable (Consul answers as if it were absent). */
  const nodeServices = (req: FastifyRequest, reply: FastifyReply, node: string) => {
    const all = nodeInstances(view).get(node) ?? [];
    if (all.length === 0 && !view.nodeExists(node)) return undefined;
    if (!mayRead(req, reply, 'node', node)) return undefined;
    return { info: view.nodeInfo(node, all[0]), insts: readable(req, reply, 'service', all, (i) => i.service) };
  };

  app.get<{ Params: { node: string } }>('/catalog/node/:node', ROUTE, async (req, reply) => {
    const p = blockingParams(req.query as Query, d.random);
    await block(reply, p, global, d);
    const found = nodeServices(req, reply, req.params.node);
    if (!found) return send(req, reply, null, catalogIndex.index);
    const services: Record<string, unknown> = {};
    for (const s of applyFilter(
      found.insts.map((i) => view.agentService(i, { indexes: true })),
      p.filter,
    ))
      services[s.ID as string] = s;
    return send(req, reply, { Node: view.nodeJson(found.info), Services: services }, catalogIndex.index);
  });

  app.get<{ Params: { node: string } }>('/catalog/node-services/:node', ROUTE, async (req, reply) => {
    const p = blockingParams(req.query as Query, d.random);
    await block(reply, p, global, d);
    const found = nodeServices(req, reply, req.params.node);
    if (!found) return reply.status(404).type('text/plain').send(`Node not found: ${req.params.node}`);
    const services = applyFilter(
      found.insts.map((i) => view.agentService(i, { indexes: true })),
      p.filter,
    );
    return send(req, reply, { Node: view.nodeJson(found.info), Services: services }, catalogIndex.index);
  });

}
