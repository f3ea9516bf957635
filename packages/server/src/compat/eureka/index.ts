import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors, isBeaconError, type Clock, type Instance } from '@beacon/core';
import type { CatalogView } from '../../catalog/view.js';
import type { ApiDeps } from '../../http/deps.js';
import { KEYS } from '../../keys.js';
import type { Registry } from '../../registry/registry.js';
import type { Store } from '../../store/types.js';
import { PrefixMirror } from '../mirror.js';
import { reregister } from '../reregister.js';
import { DeltaLog } from './delta.js';
import { applicationsDoc, appsHashcode, group, instanceDoc, type InstanceDoc } from './documents.js';
import { negotiate, type EurekaFormat } from './negotiate.js';
import { parseXmlBody, toXml } from './xml.js';
import { allowed, filterReadable } from '../../acl/decide.js';
import { need, ROUTE } from '../../acl/request.js';
import { presentedSecret } from '../../acl/secret.js';
import { registrationGuards } from '../../acl/instances.js';
import { ALLOW_ALL, type Authorizer } from '../../acl/types.js';
import { appToService, isEurekaStatus, OVERRIDE_REASON, parseRegistration, statusCheckId, statusToCheck, type EurekaSide, type EurekaStatus } from './model.js';

export interface EurekaOptions {
  /** How far back /apps/delta reaches. Default 3 min, as Eureka's. */
  deltaRetentionMs?: number;
}

interface EurekaContext {
  catalog: CatalogView;
  registry: Registry;
  store: Store;
  clock: Clock;
  side: PrefixMirror<EurekaSide>;
  delta: DeltaLog;
  renewals: Map<string, number>;
  /** When each status check's 24 h TTL was last re-armed by a heartbeat. */
  armed: Map<string, number>;
}

/** Re-arming the status check on every heartbeat would be a store read each time; once an hour keeps it far from its 24 h TTL. */
const REARM_MS = 3_600_000;

/** Eureka's REST API (v2, JSON or XML by the Accept header) under /eureka and /eureka/v2, over Beacon's registry. */
export function eurekaPlugin(options: EurekaOptions = {}) {
  return async (app: FastifyInstance, deps: ApiDeps): Promise<void> => {
    const { catalog, registry, store, clock } = deps;
    const side = new PrefixMirror<EurekaSide>({
      store,
      clock,
      prefix: KEYS.eurekaInstances,
      parse: (kv) => {
        try {
          const v = JSON.parse(kv.value) as EurekaSide;
          return typeof v?.app === 'string' ? v : undefined;
        } catch {
          return undefined;
        }
      },
      logger: app.log,
    });
    await side.start();
    const renewals = new Map<string, number>();
    const delta = new DeltaLog({ catalog, side, clock, lastRenewal: (id) => renewals.get(id) }, options.deltaRetentionMs);
    delta.start();
    const forget = catalog.onChange((c) => {
      for (const id of c.instanceIds) if (!catalog.instance(id)) renewals.delete(id);
    });
    app.addHook('onClose', async () => {
      forget();
      delta.close();
      await side.close();
    });
    const ctx: EurekaContext = { catalog, registry, store, clock, side, delta, renewals, armed: new Map() };
    for (const prefix of ['/eureka', '/eureka/v2']) await app.register(async (s) => eurekaRoutes(s, ctx), { prefix });
  };
}

function text(reply: FastifyReply, status: number, body = ''): FastifyReply {
  return reply.status(status).type('text/plain; charset=utf-8').send(body);
}

type Doc = Record<string, unknown>;

function serialise(doc: Doc, format: EurekaFormat): string {
  switch (format) {
    case 'json':
      return JSON.stringify(doc);
    case 'xml':
      return toXml(doc);
  }
}

/**
 * Sends a document as JSON or XML, whichever the client's Accept header asks for (Eureka's
 * server negotiates the same way); 406 when it accepts neither. A function in place of the
 * document serialises it on demand (the full registry, cached per format).
 */
function sendDoc(req: FastifyRequest, reply: FastifyReply, doc: Doc | ((format: EurekaFormat) => string)): FastifyReply {
  const format = negotiate(req.headers.accept);
  if (!format) return text(reply, 406);
  reply.header('Vary', 'Accept');
  const body = typeof doc === 'function' ? doc(format) : serialise(doc, format);
  return reply.type(format === 'xml' ? 'application/xml' : 'application/json').send(body);
}

async function eurekaRoutes(app: FastifyInstance, c: EurekaContext): Promise<void> {
  const { catalog, registry, side, clock } = c;

  app.setErrorHandler((err: FastifyError, req, reply) => {
    // An ACL refusal of a request that showed no credentials is a challenge: Eureka clients send the
    // secret as basic auth (http://user:SECRET@host/eureka) once told to. Other refusals (ACLs off,
    // or before the token was resolved, as the cross-site guard's) stay 403.
    const authz = req.authz as Authorizer | null;
    if (isBeaconError(err) && err.code === 'forbidden' && authz && authz !== ALLOW_ALL && presentedSecret(req) === undefined) {
      reply.header('WWW-Authenticate', 'Basic realm="beacon", charset="UTF-8"');
      return text(reply, 401, err.message);
    }
    if (isBeaconError(err)) return text(reply, err.httpStatus, err.message);
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'eureka request failed');
    return text(reply, status, status >= 500 ? 'internal error' : err.message);
  });

  // Java clients can register in XML; the body then reads into the JSON document's shape.
  app.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: 1024 * 1024 }, (_req, body, done) => {
    try {
      done(null, parseXmlBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  const doc = (inst: Instance, action: InstanceDoc['actionType'] = 'ADDED') => instanceDoc(inst, side.get(inst.id)?.value, c.renewals.get(inst.id), action);

  /** The instance `id` of app `appName`, or undefined (Eureka answers 404). */
  const find = (appName: string, id: string): Instance | undefined => {
    const inst = catalog.instance(id);
    if (!inst) return undefined;
    return appToService(appName) === inst.service ? inst : undefined;
  };

  /** The services the token may read; `filtered` when some were left out. */
  const readable = (authz: Authorizer) => filterReadable(authz, 'service', catalog.services(), (s) => s.name);
  const docsOf = (services: readonly { name: string }[]): InstanceDoc[] => {
    const out: InstanceDoc[] = [];
    for (const s of services) for (const i of catalog.service(s.name).instances) out.push(doc(i));
    return out;
  };
  const allDocs = (authz: Authorizer): { docs: InstanceDoc[]; filtered: boolean } => {
    const names = readable(authz);
    return { docs: docsOf(names.items), filtered: names.filtered };
  };

  /**
   * A list that lost everything to the rights of a caller who showed no credentials is refused
   * (401 and a challenge), so an unconfigured client learns it needs a secret instead of seeing an
   * empty registry.
   */
  const challengeIfBlind = (req: FastifyRequest, r: { docs: unknown[]; filtered: boolean }): void => {
    if (r.filtered && r.docs.length === 0 && presentedSecret(req) === undefined) throw errors.forbidden('Permission denied: no credentials, and anonymous may read no service');
  };

  /** Reads of one app or instance need service read on it. */
  const needRead = (req: FastifyRequest, service: string): void => need(req, 'service', service, 'read');
  /** Every write (register, heartbeat, cancel, status, metadata) needs service write on the instance's app. */
  const needWrite = (req: FastifyRequest, service: string): void => need(req, 'service', service, 'write');

  let cached: { key: string; doc: Doc; bodies: Partial<Record<EurekaFormat, string>> } | undefined;
  const registry_ = (format: EurekaFormat): string => {
    const key = `${catalog.index}:${side.index}`;
    if (cached?.key !== key) {
      const docs = docsOf(catalog.services());
      cached = { key, doc: applicationsDoc(group(docs), appsHashcode(docs), String(catalog.index)), bodies: {} };
    }
    return (cached.bodies[format] ??= serialise(cached.doc, format));
  };

  for (const path of ['/apps', '/apps/'])
    app.get(path, ROUTE, async (req, reply) => {
      // The shared cached document serves every caller who may read it all (and every caller with ACLs off).
      if (!readable(req.authz).filtered) return sendDoc(req, reply, registry_);
      const mine = allDocs(req.authz);
      challengeIfBlind(req, mine);
      return sendDoc(req, reply, applicationsDoc(group(mine.docs), appsHashcode(mine.docs), String(catalog.index)));
    });

  for (const path of ['/apps/delta', '/apps/delta/']) {
    app.get(path, ROUTE, async (req, reply) => {
      const mine = allDocs(req.authz);
      challengeIfBlind(req, mine);
      const changes = c.delta.changes().filter((d) => allowed(req.authz, 'service', appToService(d.app) ?? '', 'read'));
      // The hashcode is of what this caller may see, which its client compares with its own copy.
      return sendDoc(req, reply, applicationsDoc(group(changes), appsHashcode(mine.docs), String(catalog.index)));
    });
  }

  app.get<{ Params: { app: string } }>('/apps/:app', ROUTE, async (req, reply) => {
    const service = appToService(req.params.app);
    if (service) needRead(req, service);
    const insts = service ? catalog.service(service).instances : [];
    if (insts.length === 0) return text(reply, 404);
    const docs = insts.map((i) => doc(i));
    return sendDoc(req, reply, { application: { name: docs[0]!.app, instance: docs } });
  });

  app.get<{ Params: { app: string; id: string } }>('/apps/:app/:id', ROUTE, async (req, reply) => {
    const inst = find(req.params.app, req.params.id);
    if (inst) needRead(req, inst.service);
    return inst ? sendDoc(req, reply, { instance: doc(inst) }) : text(reply, 404);
  });

  app.get<{ Params: { id: string } }>('/instances/:id', ROUTE, async (req, reply) => {
    const inst = catalog.instance(req.params.id);
    if (inst) needRead(req, inst.service);
    return inst ? sendDoc(req, reply, { instance: doc(inst) }) : text(reply, 404);
  });

  for (const [path, field] of [
    ['/vips/:vip', 'vipAddress'],
    ['/svips/:vip', 'secureVipAddress'],
  ] as const) {
    app.get<{ Params: { vip: string } }>(path, ROUTE, async (req, reply) => {
      const docs = allDocs(req.authz).docs.filter((d) => d[field].split(',').includes(req.params.vip));
      if (docs.length === 0) return text(reply, 404);
      return sendDoc(req, reply, applicationsDoc(group(docs), appsHashcode(docs), String(catalog.index)));
    });
  }

  app.post<{ Params: { app: string } }>('/apps/:app', ROUTE, async (req, reply) => {
    const { input, side: fields } = parseRegistration(req.body, req.params.app, clock.now());
    needWrite(req, input.service);
    const id = input.id!;
    const prior = side.get(id)?.value;
    if (prior?.serviceUpTimestamp && fields.status === 'UP') fields.serviceUpTimestamp = prior.serviceUpTimestamp;
    const res = await registry.register(input, registrationGuards(req.authz, input.service));
    const checkId = statusCheckId(id);
    const want = statusToCheck(fields.status);
    const cur = res.instance.checks.find((x) => x.id === checkId);
    if (cur && cur.status !== want) await registry.reportCheck(checkId, want, `Eureka status ${fields.status}`);
    c.armed.set(id, clock.now());
    await putSide(c, id, fields);
    return reply.status(204).send();
  });

  app.put<{ Params: { app: string; id: string }; Querystring: Record<string, string> }>('/apps/:app/:id', ROUTE, async (req, reply) => {
    const inst = find(req.params.app, req.params.id);
    if (!inst) return text(reply, 404);
    needWrite(req, inst.service);
    const fields = side.get(inst.id)?.value;
    const dirty = Number(req.query.lastDirtyTimestamp);
    // The client's copy of its own record is newer than ours: answering 404 makes it register again.
    if (fields && Number.isFinite(dirty) && dirty > fields.lastDirtyTimestamp) return text(reply, 404);
    try {
      await registry.heartbeat(inst.id);
    } catch (err) {
      if (isBeaconError(err) && err.code === 'not_found') return text(reply, 404);
      if (!isBeaconError(err) || err.code !== 'precondition_failed') throw err;
    }
    const now = clock.now();
    c.renewals.set(inst.id, now);
    const status = req.query.status;
    if (fields && isEurekaStatus(status) && status !== fields.status) {
      await reportStatus(c, inst, status);
      await putSide(c, inst.id, { ...fields, status, ...(status === 'UP' ? { serviceUpTimestamp: now } : {}) });
    } else if (fields && now - (c.armed.get(inst.id) ?? 0) > REARM_MS) {
      await reportStatus(c, inst, fields.status);
    }
    return text(reply, 200);
  });

  app.delete<{ Params: { app: string; id: string } }>('/apps/:app/:id', ROUTE, async (req, reply) => {
    const inst = find(req.params.app, req.params.id);
    if (!inst) return text(reply, 404);
    needWrite(req, inst.service);
    await registry.deregister(inst.id, 'api', 'cancelled through the Eureka API');
    if (side.get(inst.id)) await c.store.delete(KEYS.eurekaInstances + inst.id);
    return text(reply, 200);
  });

  app.put<{ Params: { app: string; id: string }; Querystring: Record<string, string> }>('/apps/:app/:id/status', ROUTE, async (req, reply) => {
    const inst = find(req.params.app, req.params.id);
    if (!inst) return text(reply, 404);
    needWrite(req, inst.service);
    const value = req.query.value;
    if (!isEurekaStatus(value)) throw errors.invalid('value must be one of UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN');
    await override(c, inst, value);
    return text(reply, 200);
  });

  app.delete<{ Params: { app: string; id: string } }>('/apps/:app/:id/status', ROUTE, async (req, reply) => {
    const inst = find(req.params.app, req.params.id);
    if (!inst) return text(reply, 404);
    needWrite(req, inst.service);
    if (inst.maintenance) await registry.setMaintenance(inst.id, false, '');
    return text(reply, 200);
  });

  app.put<{ Params: { app: string; id: string }; Querystring: Record<string, string> }>('/apps/:app/:id/metadata', ROUTE, async (req, reply) => {
    const inst = find(req.params.app, req.params.id);
    if (!inst) return text(reply, 404);
    needWrite(req, inst.service);
    const add: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.query)) add[k] = Array.isArray(v) ? String(v[v.length - 1]) : String(v);
    await reregister(registry, inst, (input) => ({ ...input, meta: { ...input.meta, ...add } }));
    return text(reply, 200);
  });
}

/** Writes the Eureka-only fields on the instance's lease, so they go when the instance does. */
async function putSide(c: EurekaContext, id: string, fields: EurekaSide): Promise<void> {
  const lease = c.catalog.leaseOf(id);
  const rev = await c.store.put(KEYS.eurekaInstances + id, JSON.stringify(fields), lease ? { lease } : undefined);
  await c.side.waitForRevision(rev);
}

async function reportStatus(c: EurekaContext, inst: Instance, status: EurekaStatus): Promise<void> {
  const checkId = statusCheckId(inst.id);
  if (!inst.checks.some((x) => x.id === checkId)) return;
  await c.registry.reportCheck(checkId, statusToCheck(status), `Eureka status ${status}`);
  c.armed.set(inst.id, c.clock.now());
}

/** Status overrides are maintenance: the instance leaves every answer (native, DNS, Consul) until the override goes. */
async function override(c: EurekaContext, inst: Instance, value: EurekaStatus): Promise<void> {
  if (value === 'UP' || value === 'UNKNOWN') {
    if (inst.maintenance) await c.registry.setMaintenance(inst.id, false, '');
    return;
  }
  await c.registry.setMaintenance(inst.id, true, `${OVERRIDE_REASON}${value}`);
}
