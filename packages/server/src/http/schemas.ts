import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ERROR_CATALOG, LIMITS, type ErrorCode } from '@beacon/core';

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

/** The body of an error answer; each status has one code, so each documented answer names it. */
const errorSchema = (code: ErrorCode, description: string) =>
  Type.Object({ error: Type.Object({ code: Type.Literal(code), message: Type.String(), details: Opt(Type.Unknown()) }) }, { description });

/** What each error answer means, as the OpenAPI document says it (one status per code). */
const ERROR_MEANINGS: Record<ErrorCode, string> = {
  invalid_argument: 'A parameter, the path or the body is invalid (`invalid_argument`)',
  unauthorized: 'No valid credentials (`unauthorized`)',
  forbidden: 'Refused by server policy, e.g. a check target the server may not dial (`forbidden`)',
  not_found: 'No such instance or check (`not_found`)',
  conflict: 'A concurrent change won; retry (`conflict`)',
  compacted: 'History no longer reaches back that far (`compacted`)',
  precondition_failed: 'The target is not in the state the request needs (`precondition_failed`)',
  payload_too_large: 'The body is over the size limit (`payload_too_large`)',
  unsupported_media_type: 'The body is not `application/json` (`unsupported_media_type`)',
  too_many_requests: 'A per-server limit is reached; retry with backoff (`too_many_requests`)',
  internal: 'A server fault (`internal`)',
  unavailable: 'The store is unreachable or not ready (`unavailable`)',
  timeout: 'The store did not answer in time (`timeout`)',
};

/** Every route can answer these: a path that does not decode, a server fault, a lost store. */
const ANY_ROUTE: readonly ErrorCode[] = ['invalid_argument', 'internal', 'unavailable'];
/** Every PUT, POST and DELETE can answer these (Fastify reads a body on each), before its handler runs. */
const ANY_BODY: readonly ErrorCode[] = ['payload_too_large', 'unsupported_media_type'];

function errorResponses(codes: readonly ErrorCode[]): Record<number, ReturnType<typeof errorSchema>> {
  const out: Record<number, ReturnType<typeof errorSchema>> = {};
  for (const code of codes) out[ERROR_CATALOG[code].http] = errorSchema(code, ERROR_MEANINGS[code]);
  return out;
}

/** Every route that checks a token (all but the open ones) can refuse it: `forbidden` with ACLs on. */
const GUARDED: readonly ErrorCode[] = ['forbidden'];

/** The error answers of a read route: those of every route, plus `codes`. */
export const readErrors = (...codes: ErrorCode[]) => errorResponses([...ANY_ROUTE, ...GUARDED, ...codes]);
/** The error answers of a write route (PUT, POST, DELETE): those of every route and body, plus `codes`. */
export const writeErrors = (...codes: ErrorCode[]) => errorResponses([...ANY_ROUTE, ...GUARDED, ...ANY_BODY, ...codes]);
/** The error answers of a route open to every caller (`config.acl: 'open'`): no token can be refused there. */
export const openReadErrors = (...codes: ErrorCode[]) => errorResponses([...ANY_ROUTE, ...codes]);

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

/** Nested parts of an explanation keep every field they have (additional properties pass through). */
const Open = (description: string) => Type.Object({}, { additionalProperties: true, description });

export const ExplanationSchema = Type.Object(
  {
    id: Type.String(),
    registered: Type.Boolean(),
    service: Opt(Type.String()),
    inAnswers: Type.Boolean({ description: 'in the answers of a discovery query without `passing`' }),
    inPassingAnswers: Type.Boolean({ description: 'in the answers of a discovery query with `passing`' }),
    status: Opt(CheckStatusSchema),
    conditions: Opt(Open('ready, serving, terminating')),
    reasons: Type.Array(Type.String(), { description: 'why it is left out; empty when it is in the answers' }),
    checks: Type.Array(Open('a check with its status, since when, latest output and next run')),
    maintenance: Opt(FlagSchema),
    draining: Opt(FlagSchema),
    lease: Opt(Type.Object({ ttlMs: Type.Number(), remainingMs: Type.Number() })),
    deregistered: Opt(Open('how and when an instance that is gone left: cause, reason, at')),
    recentEvents: Type.Array(ChangeEventSchema),
  },
  { additionalProperties: true },
);

/** Blocking-query parameters shared by every read that can block. */
export const BlockingQuery = {
  index: Opt(Type.Integer({ minimum: 0, description: 'block until the result index is above this' })),
  wait: Opt(Type.String({ maxLength: 16, description: 'how long to block, e.g. 30s (default 5m, max 10m)' })),
};


/** `?dc=`: read another datacenter (from its followed view). */
export const DcQuery = {
  dc: Opt(Type.String({ maxLength: 63, description: 'datacenter to read (default: this server\'s)' })),
};
