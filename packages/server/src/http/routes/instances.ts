import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '@beacon/core';
import { explainInstance } from '../../registry/explain.js';
import type { ApiDeps } from '../deps.js';
import { IdParams, InstanceSchema, NoteBody, ReasonBody, RegistrationSchema, WriteResultSchema, errorResponses } from '../schemas.js';

type Deps = Pick<ApiDeps, 'registry' | 'catalog' | 'store' | 'clock' | 'activeChecks'>;

/** Writes on instances and checks, plus per-instance reads (get, explain). */
export const instanceRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, deps) => {
  const { registry, catalog } = deps;

  app.put(
    '/instances',
    {
      schema: {
        summary: 'Register or update an instance',
        description: 'Idempotent: registering the same instance again changes nothing and keeps the state of its checks.',
        body: RegistrationSchema,
        response: { 200: Type.Object({ index: Type.Integer(), created: Type.Boolean(), instance: InstanceSchema }), ...errorResponses },
      },
    },
    async (req, reply) => {
      const r = await registry.register(req.body);
      reply.header('X-Beacon-Index', String(r.index));
      return { index: r.index, created: r.created, instance: r.instance };
    },
  );

  app.get(
    '/instances/:id',
    { schema: { summary: 'One instance', params: IdParams, response: { 200: InstanceSchema, ...errorResponses } } },
    async (req, reply) => {
      const inst = catalog.instance(req.params.id);
      if (!inst) throw errors.notFound(`instance ${req.params.id} is not registered`);
      reply.header('X-Beacon-Index', String(inst.modifyIndex));
      return inst;
    },
  );

  app.delete(
    '/instances/:id',
    { schema: { summary: 'Deregister an instance', params: IdParams, response: { 200: WriteResultSchema, ...errorResponses } } },
    async (req) => registry.deregister(req.params.id, 'api', 'deregistered through the API'),
  );

  app.put(
    '/instances/:id/heartbeat',
    {
      schema: {
        summary: "Renew the instance's lease",
        description: 'Answers 404 for an unknown or expired instance: the client must register again.',
        params: IdParams,
        response: { 200: Type.Object({ ttlMs: Type.Number(), remainingMs: Type.Number() }), ...errorResponses },
      },
    },
    async (req) => registry.heartbeat(req.params.id),
  );

  app.put(
    '/instances/:id/maintenance',
    {
      schema: {
        summary: 'Put an instance in (or out of) maintenance',
        description: 'Body `{"reason": "...", "enable": true}`; `enable: false` ends maintenance.',
        params: IdParams,
        body: ReasonBody,
        response: { 200: WriteResultSchema, ...errorResponses },
      },
    },
    async (req) => registry.setMaintenance(req.params.id, req.body.enable ?? true, req.body.reason ?? ''),
  );

  app.put(
    '/instances/:id/drain',
    {
      schema: {
        summary: 'Drain an instance: no new traffic, existing traffic finishes',
        params: IdParams,
        body: ReasonBody,
        response: { 200: WriteResultSchema, ...errorResponses },
      },
    },
    async (req) => registry.setDraining(req.params.id, req.body.enable ?? true, req.body.reason ?? ''),
  );

  app.get(
    '/instances/:id/explain',
    { schema: { summary: 'Why the instance is, or is not, in answers right now', params: IdParams } },
    async (req) => {
      const e = await explainInstance({ ...deps }, req.params.id);
      if (!e) throw errors.notFound(`instance ${req.params.id} is not registered and has no recorded history`);
      return e;
    },
  );

  for (const [verb, status] of [
    ['pass', 'passing'],
    ['warn', 'warning'],
    ['fail', 'critical'],
  ] as const) {
    app.put(
      `/checks/:id/${verb}`,
      {
        schema: {
          summary: `Report a check as ${status}`,
          description: 'TTL checks, and any check of an agent-registered instance. Resets the TTL clock. Body `{"note": "..."}` becomes the output.',
          params: IdParams,
          body: NoteBody,
          response: { 200: WriteResultSchema, ...errorResponses },
        },
      },
      async (req) => registry.reportCheck(req.params.id, status, req.body.note),
    );
  }
};
