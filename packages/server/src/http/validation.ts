import { Ajv, type Options } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

/** Fastify's own Ajv settings, less `removeAdditional` (unknown fields are refused, not dropped). */
const BASE: Options = { useDefaults: true, removeAdditional: false, addUsedSchema: false, allErrors: false, strict: false };

/**
 * Request validators: bodies are JSON and must have exactly the types the schema names, so
 * nothing is coerced (`"port": null` is not 0, `"weight": true` not 1, `"tags": "solo"` not
 * `["solo"]`, `"enable": null` not false). Querystrings, path parameters and headers arrive as
 * text, so there strings are coerced to the numbers and booleans their schemas ask for.
 */
export function requestValidators(): FastifySchemaCompiler<unknown> {
  const exact = new Ajv({ ...BASE, coerceTypes: false });
  const fromText = new Ajv({ ...BASE, coerceTypes: 'array' });
  return ({ schema, httpPart }) => (httpPart === 'body' ? exact : fromText).compile(schema as object);
}
