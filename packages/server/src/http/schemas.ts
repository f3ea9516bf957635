import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { LIMITS } from '@beacon/core';

const Opt = <T extends TSchema>(t: T) => Type.Optional(t);
const Millis = (description: string) => Type.Integer({ minimum: 0, maximum: 30 * 24 * 3_600_000, description });

export const CheckStatusSchema = Type.Union([Type.Literal('passing'), Type.Literal('warning'), Type.Literal('critical')]);
export const CheckKindSchema = Type.Union([Type.Literal('ttl'), Type.Literal('http'), Type.Literal('tcp'), Type.Literal('grpc'), Type.Literal('script')]);
export const CheckRoleSchema = Type.Union([Type.Literal('readiness'), Type.Literal('liveness')]);
export const SourceSchema = Type.Union([Type.Literal('api'), Type.Literal('agent'), Type.Literal('consul'), Type.Literal('eureka')]);

export const CheckInputSchema = Type.Object(
  {
    id: Opt(Type.String({ minLength: 1, maxLength: 192 })),
    name: Opt(Type.String({ maxLength: 256 })),
    kind: CheckKindSchema,
    role: Opt(CheckRoleSchema),
    ttlMs: Opt(Millis('ttl checks: the instance must report within this time')),
    url: Opt(Type.String({ maxLength: 2048 })),
    method: Opt(Type.String({ maxLength: 16 })),
    headers: Opt(Type.Record(Type.String({ maxLength: 256 }), Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 16 }))),
    body: Opt(Type.String({ maxLength: 65_536 })),
    tlsSkipVerify: Opt(Type.Boolean()),
    target: Opt(Type.String({ maxLength: 300, description: 'tcp and grpc: host:port' })),
    grpcService: Opt(Type.String({ maxLength: 256 })),
    grpcUseTls: Opt(Type.Boolean()),
    args: Opt(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64 })),
    intervalMs: Opt(Millis('active checks: time between runs')),
    timeoutMs: Opt(Millis('active checks: time allowed for one run')),
    successesBeforePassing: Opt(Type.Integer({ minimum: 1, maximum: 100 })),
    failuresBeforeWarning: Opt(Type.Integer({ minimum: 1, maximum: 100 })),
    failuresBeforeCritical: Opt(Type.Integer({ minimum: 1, maximum: 100 })),
    deregisterCriticalAfterMs: Opt(Millis('deregister the instance after this check has been critical this long')),
    notes: Opt(Type.String({ maxLength: LIMITS.reason })),
    status: Opt(CheckStatusSchema),
  },
  { additionalProperties: false },
);

export const RegistrationSchema = Type.Object(
  {
    id: Opt(Type.String({ minLength: 1, maxLength: LIMITS.instanceId, description: "defaults to <service>-<address>-<port>; '/' allowed, no control or format characters, not '.' or '..'" })),
    service: Type.String({ minLength: 1, maxLength: LIMITS.serviceName }),
    address: Type.String({ minLength: 1, maxLength: LIMITS.address, description: 'an IP literal or a DNS host name; stored in canonical form' }),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    ports: Opt(Type.Record(Type.String({ maxLength: 15 }), Type.Integer({ minimum: 0, maximum: 65535 }))),
    tags: Opt(Type.Array(Type.String({ minLength: 1, maxLength: LIMITS.tagLength }), { maxItems: LIMITS.tags })),
    meta: Opt(Type.Record(Type.String({ maxLength: LIMITS.metaKeyLength }), Type.String({ maxLength: LIMITS.metaValueLength }))),
    weight: Opt(Type.Integer({ minimum: 0, maximum: 65535 })),
    zone: Opt(Type.String({ maxLength: LIMITS.zone })),
    node: Opt(Type.String({ maxLength: LIMITS.node })),
    source: Opt(SourceSchema),
    ttlMs: Opt(Millis('lease length; the instance must heartbeat within it')),
    checks: Opt(Type.Array(CheckInputSchema, { maxItems: LIMITS.checks })),
  },
  { additionalProperties: false },
);
export type RegistrationBody = Static<typeof RegistrationSchema>;

export const CheckSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  kind: CheckKindSchema,
  role: CheckRoleSchema,
  status: CheckStatusSchema,
  output: Type.String(),
  since: Type.Number(),
});

const FlagSchema = Type.Object({ reason: Type.String(), since: Type.Number() });

export const InstanceSchema = Type.Object(
  {
    id: Type.String(),
    service: Type.String(),
    address: Type.String(),
    port: Type.Integer(),
    ports: Type.Record(Type.String(), Type.Integer()),
    tags: Type.Array(Type.String()),
    meta: Type.Record(Type.String(), Type.String()),
    weight: Type.Integer(),
    zone: Type.String(),
    node: Type.String(),
    source: SourceSchema,
    ttlMs: Opt(Type.Number()),
    status: CheckStatusSchema,
    conditions: Type.Object({ ready: Type.Boolean(), serving: Type.Boolean(), terminating: Type.Boolean() }),
    checks: Type.Array(CheckSchema),
    maintenance: Opt(FlagSchema),
    draining: Opt(FlagSchema),
    registeredAt: Type.Number(),
    createIndex: Type.Integer(),
    modifyIndex: Type.Integer(),
  },
  { additionalProperties: true },
);

export const ErrorSchema = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String(), details: Opt(Type.Unknown()) }),
});

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 192 }) });
export const ReasonBody = Type.Object({ reason: Opt(Type.String({ maxLength: LIMITS.reason })), enable: Opt(Type.Boolean()) }, { additionalProperties: false });
export const NoteBody = Type.Object({ note: Opt(Type.String({ maxLength: LIMITS.checkOutput })) }, { additionalProperties: false });

export const WriteResultSchema = Type.Object({ index: Type.Integer() });
export const ChangeEventSchema = Type.Object(
  {
    index: Type.Integer(),
    at: Type.Number(),
    service: Type.String(),
    instanceId: Type.String(),
    kind: Type.String(),
    reason: Type.String(),
    checkId: Opt(Type.String()),
    from: Opt(CheckStatusSchema),
    to: Opt(CheckStatusSchema),
    output: Opt(Type.String()),
    cause: Opt(Type.String()),
  },
  { additionalProperties: false },
);

/** Blocking-query parameters shared by every read that can block. */
export const BlockingQuery = {
  index: Opt(Type.Integer({ minimum: 0, description: 'block until the result index is above this' })),
  wait: Opt(Type.String({ maxLength: 16, description: 'how long to block, e.g. 30s (default 5m, max 10m)' })),
};

export const errorResponses = { 400: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 412: ErrorSchema, 413: ErrorSchema, 503: ErrorSchema };
