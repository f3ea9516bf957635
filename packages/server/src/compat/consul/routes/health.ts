import type { CancelSignal } from '../../../util/cancel.js';
import type { FastifyInstance } from 'fastify';
import { CHECK_STATUSES, errors, type CheckStatus } from '@beacon/core';
import { AnswerCache } from '../../../http/answer-cache.js';
import type { ConsulContext } from '../context.js';
import { applyFilter } from '../filter.js';
import { block, blockingParams, bool, matchesNodeMeta, nodeMetaFilter, param, params, send, sendRaw, type Query } from '../http.js';
import type { HealthCheckJson } from '../views.js';
import { blockOnService, nodeInstances } from './catalog.js';
import { ROUTE, mayRead, readable } from '../acl.js';

type Deps = Pick<ConsulContext, 'view' | 'catalog' | 'catalogIndex' | 'random' | 'clock' | 'metrics' | 'limits' | 'acl' | 'scope'>;

/** /v1/health/…: every answer blocking, per-service indexes for service queries. */
export async function healthRoutes(app: FastifyInstance, d: Deps): Promise<void> {
  const { view, catalogIndex } = d;
  // Serialized answers per (query, index): a change makes the next reader rebuild, so none is ever stale.
  const cache = new AnswerCache();
  const global = (minIndex: number, ms: number, signal: CancelSignal) => catalogIndex.wait(minIndex, ms, signal);

  app.get<{ Params: { name: string } }>('/health/service/:name', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    const p = blockingParams(q, d.random);
    const passing = bool(q, 'passing');
    const tags = params(q, 'tag');
    const meta = nodeMetaFilter(q);
    const dc = d.scope(param(q, 'dc'));
    const view = dc.view;
    const found = await blockOnService(reply, p, req.params.name, d, dc);
    if (!found) return send(req, reply, [], catalogIndex.index);
    const { name, entry } = found;
    if (!mayRead(req, reply, 'service', name)) return send(req, reply, [], entry.index);
    if (param(q, 'pretty') !== undefined) return send(req, reply, build(), entry.index);
    const key = `${dc.name}\n${name}\n${passing ? 1 : 0}\n${tags.join('\t')}\n${params(q, 'node-meta').join('\t')}\n${param(q, 'filter') ?? ''}`;
    return sendRaw(reply, cache.getOrBuild(key, entry.index, build), entry.index);

    function build() {
      const out = [];
      for (const i of entry.instances) {
        if (!tags.every((t) => i.tags.includes(t))) continue;
        if (meta.length && !matchesNodeMeta(view.nodeInfo(i.node, i).meta, meta)) continue;
        const e = view.healthEntry(i);
        if (passing && (e.Checks as HealthCheckJson[]).some((c) => c.Status !== 'passing')) continue;
        out.push(e);
      }
      return applyFilter(out, p.filter);
    }
  });

  app.get<{ Params: { name: string } }>('/health/checks/:name', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    const p = blockingParams(q, d.random);
    const meta = nodeMetaFilter(q);
    const found = await blockOnService(reply, p, req.params.name, d, d);
    if (!found) return send(req, reply, [], catalogIndex.index);
    const { name, entry } = found;
    if (!mayRead(req, reply, 'service', name)) return send(req, reply, [], entry.index);
    const checks = entry.instances.filter((i) => !meta.length || matchesNodeMeta(view.nodeInfo(i.node, i).meta, meta)).flatMap((i) => view.serviceChecks(i));
    return send(req, reply, applyFilter(checks, p.filter), entry.index);
  });

  app.get<{ Params: { node: string } }>('/health/node/:node', ROUTE, async (req, reply) => {
    const p = blockingParams(req.query as Query, d.random);
    await block(reply, p, global, d);
    const node = req.params.node;
    const insts = readable(req, reply, 'service', nodeInstances(view).get(node) ?? [], (i) => i.service);
    const nodeChecks = mayRead(req, reply, 'node', node) ? view.nodeChecks(node) : [];
    const checks = view.nodeExists(node) ? [...nodeChecks, ...insts.flatMap((i) => view.serviceChecks(i))] : [];
    return send(req, reply, applyFilter(checks, p.filter), catalogIndex.index);
  });

  app.get<{ Params: { state: string } }>('/health/state/:state', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    const state = req.params.state;
    if (state !== 'any' && !CHECK_STATUSES.includes(state as CheckStatus)) throw errors.invalid(`Invalid state: ${state}`);
    const p = blockingParams(q, d.random);
    await block(reply, p, global, d);
    const meta = nodeMetaFilter(q);
    const byNode = nodeInstances(view);
    const checks: HealthCheckJson[] = [];
    for (const node of view.nodeNames()) {
      if (meta.length && !matchesNodeMeta(view.nodeInfo(node, byNode.get(node)?.[0]).meta, meta)) continue;
      if (mayRead(req, reply, 'node', node)) checks.push(...view.nodeChecks(node));
      for (const i of readable(req, reply, 'service', byNode.get(node) ?? [], (x) => x.service)) checks.push(...view.serviceChecks(i));
    }
    const selected = state === 'any' ? checks : checks.filter((c) => c.Status === state);
    return send(req, reply, applyFilter(selected, p.filter), catalogIndex.index);
  });
}
