import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { LIMITS, errors } from '@beacon/core';
import { explainInstance } from '../../registry/explain.js';
import type { ApiDeps } from '../deps.js';
import { authorize } from '../../acl/decide.js';
import { authorizeInstanceWrite, takeoverGuard } from '../../acl/instances.js';
import { ExplanationSchema, IdParams, InstanceSchema, NoteBody, ReasonBody, RegistrationSchema, WriteResultSchema, readErrors, writeErrors } from '../schemas.js';

type Deps = Pick<ApiDeps, 'registry' | 'catalog' | 'store' | 'clock' | 'activeChecks'>;

/**
 * Writes on instances and checks, plus per-instance reads (get, explain). With ACLs on, writes
 * need `service:S write` and reads `service:S read` on the instance's service.
 */
export const instanceRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, deps) => {
  const { registry, catalog } = deps;
  const config = { acl: 'route' as const };
  /** Write rights on the instance a path names (its current service), before the write. */
  const mayWrite = (authz: Parameters<typeof authorize>[0], id: string) => authorizeInstanceWrite(authz, catalog.instance(id));

  app.put(
    '/instances',
    {
      config,
      schema: {
        operationId: 'registerInstance',
        tags: ['instances'],
        summary: 'Register or update an instance',
        description: 'Idempotent: registering the same instance again changes nothing and keeps the state of its checks.',
        body: RegistrationSchema,
        response: { 200: Type.Object({ index: Type.Integer(), created: Type.Boolean(), instance: InstanceSchema }), ...writeErrors('forbidden', 'conflict') },
      },
    },
    async (req, reply) => {
      authorize(req.authz, 'service', req.body.service, 'write');
      const r = await registry.register(req.body, { mayReplace: takeoverGuard(req.authz, req.body.service) });
      reply.header('X-Beacon-Index', String(r.index));
      return { index: r.index, created: r.created, instance: r.instance };
    },
  );

  app.get(
    '/instances/:id',
    { config, schema: { operationId: 'getInstance', tags: ['instances'], summary: 'One instance', params: IdParams, response: { 200: InstanceSchema, ...readErrors('not_found') } } },
    async (req, reply) => {
      const inst = catalog.instance(req.params.id);
      if (!inst) throw errors.notFound(`instance ${req.params.id} is not registered`);
      authorize(req.authz, 'service', inst.service, 'read');
      reply.header('X-Beacon-Index', String(inst.modifyIndex));
      return inst;
    },
  );

  app.delete(
    '/instances/:id',
    {
      config,
      schema: {
        operationId: 'deregisterInstance',
        tags: ['instances'],
        summary: 'Deregister an instance',
        description: 'An optional `reason` goes into the event history and the log line.',
        params: IdParams,
        querystring: Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: LIMITS.reason })) }),
        response: { 200: WriteResultSchema, ...writeErrors('not_found', 'conflict') },
      },
    },
    async (req) => {
      mayWrite(req.authz, req.params.id);
      return registry.deregister(req.params.id, 'api', req.query.reason ? `deregistered through the API: ${req.query.reason}` : 'deregistered through the API');
    },
  );

  app.put(
    '/instances/:id/heartbeat',
    {
      config,
      schema: {
        operationId: 'heartbeatInstance',
        tags: ['instances'],
        summary: "Renew the instance's lease",
        description: 'Answers 404 for an unknown or expired instance: the client must register again.',
        params: IdParams,
        response: { 200: Type.Object({ ttlMs: Type.Number(), remainingMs: Type.Number() }), ...writeErrors('not_found', 'precondition_failed') },
      },
    },
    async (req) => {
      mayWrite(req.authz, req.params.id);
      return registry.heartbeat(req.params.id);
    },
  );

  app.put(
    '/instances/:id/maintenance',
    {
      config,
      schema: {
        operationId: 'setInstanceMaintenance',
        tags: ['instances'],
        summary: 'Put an instance in (or out of) maintenance',
        description: 'Body `{"reason": "...", "enable": true}`; `enable: false` ends maintenance.',
        params: IdParams,
        body: ReasonBody,
        response: { 200: WriteResultSchema, ...writeErrors('not_found', 'conflict') },
      },
    },
    async (req) => {
      mayWrite(req.authz, req.params.id);
      return registry.setMaintenance(req.params.id, req.body.enable ?? true, req.body.reason ?? '');
    },
  );

  app.put(
    '/instances/:id/drain',
    {
      config,
      schema: {
        operationId: 'drainInstance',
        tags: ['instances'],
        summary: 'Drain an instance: no new traffic, existing traffic finishes',
        params: IdParams,
        body: ReasonBody,
        response: { 200: WriteResultSchema, ...writeErrors('not_found', 'conflict') },
      },
    },
    async (req) => {
      mayWrite(req.authz, req.params.id);
      return registry.setDraining(req.params.id, req.body.enable ?? true, req.body.reason ?? '');
    },
  );

  app.get(
    '/instances/:id/explain',
    {
      config,
      schema: {
        operationId: 'explainInstance',
        tags: ['instances'],
        summary: 'Why the instance is, or is not, in answers right now',
        description: 'Also answers for an instance that is gone, while its deregistration is in the history.',
        params: IdParams,
        response: { 200: ExplanationSchema, ...readErrors('not_found') },
      },
    },
    async (req) => {
      const e = await explainInstance({ ...deps }, req.params.id);
      if (!e) throw errors.notFound(`instance ${req.params.id} is not registered and has no recorded history`);
      // An id gone from history names no service: only a management token may read what is left.
      if (e.service === undefined) authorize(req.authz, 'operator', 'read');
      else authorize(req.authz, 'service', e.service, 'read');
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
        config,
        schema: {
          operationId: `${verb}Check`,
          tags: ['checks'],
          summary: `Report a check as ${status}`,
          description: 'TTL checks, and any check of an agent-registered instance. Resets the TTL clock. Body `{"note": "..."}` becomes the output.',
          params: IdParams,
          body: NoteBody,
          response: { 200: WriteResultSchema, ...writeErrors('not_found', 'conflict') },
        },
      },
      async (req) => {
        // A node check (Consul's checks without a service) counts against the whole node: node:N write.
        const nodeCheck = catalog.nodeCheck(req.params.id);
        if (nodeCheck) authorize(req.authz, 'node', nodeCheck.node, 'write');
        else authorizeInstanceWrite(req.authz, catalog.instanceByCheck(req.params.id));
        return registry.reportCheck(req.params.id, status, req.body.note);
      },
    );
  }
};
