import { createConfig, lintFromString } from '@redocly/openapi-core';
import { ERROR_CATALOG, isErrorCode } from '@beacon/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../src/server.js';
import { api, devServer } from './helpers.js';

/**
 * Redocly's recommended rules, with only these turned off:
 * - info-license, info-license-url: the project has not chosen a license; the API document is not
 *   the place to invent one.
 */
const DISABLED = { 'info-license': 'off', 'info-license-url': 'off' } as const;

let server: RunningServer;
let doc: any;
beforeAll(async () => {
  server = await devServer();
  doc = (await api(server, 'GET', '/api/v1/openapi.json')).body;
});
afterAll(async () => {
  await server.close();
});

const operations = () =>
  Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

describe('OpenAPI document', () => {
  it('passes the Redocly recommended lint with no errors and no warnings', async () => {
    const config = await createConfig({ extends: ['recommended'], rules: DISABLED });
    const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: 'openapi.json', config });
    expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)).toEqual([]);
  });

  it('describes the native API only, each operation named and tagged, with a bearer token or none', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThanOrEqual(15);
    for (const { path } of ops) expect(path).toMatch(/^\/api\/v1\//);
    const ids = ops.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const tags = new Set((doc.tags as { name: string }[]).map((t) => t.name));
    for (const { op } of ops) expect(op.tags.every((t: string) => tags.has(t))).toBe(true);
    expect(doc.security).toEqual([{ bearerToken: [] }, {}]);
    // Open endpoints say so; every other one can refuse a token.
    expect(doc.paths['/api/v1/status'].get.security).toEqual([{}]);
    expect(Object.keys(doc.paths['/api/v1/status'].get.responses)).not.toContain('403');
    expect(Object.keys(doc.paths['/api/v1/services'].get.responses)).toContain('403');
    expect(doc.components.securitySchemes.bearerToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.paths['/api/v1/watch'].get.responses['200'].content)).toEqual(['text/event-stream']);
  });

  it("documents each error answer with the catalog's code for its status", () => {
    for (const { path, method, op } of operations()) {
      const statuses = Object.keys(op.responses).filter((s) => Number(s) >= 400);
      // Every route can be refused for a bad path, a server fault or a shutdown; every write for its body.
      expect({ path, method, has: ['400', '500', '503'].every((s) => statuses.includes(s)) }).toEqual({ path, method, has: true });
      if (method === 'put' || method === 'delete') expect(statuses).toEqual(expect.arrayContaining(['413', '415']));
      for (const status of statuses) {
        const schema = op.responses[status].content['application/json'].schema;
        const code = schema.properties.error.properties.code.enum?.[0];
        expect(isErrorCode(code) && ERROR_CATALOG[code].http === Number(status)).toBe(true);
      }
    }
    expect(Object.keys(doc.paths['/api/v1/instances/{id}/explain'].get.responses)).toContain('404');
    expect(Object.keys(doc.paths['/api/v1/instances/{id}/heartbeat'].put.responses)).toEqual(expect.arrayContaining(['404', '412']));
  });
});
