import { describe, expect, it } from 'vitest';
import { spawnServer } from './helpers.js';

describe('beacon server --no-ui', () => {
  it('serves neither /ui nor the redirect of /, and the API as ever', async () => {
    const server = await spawnServer(['--dev', '--no-ui']);
    try {
      for (const path of ['/', '/ui/']) {
        const res = await fetch(server.url + path, { redirect: 'manual' });
        expect([path, res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([path, 404, 'not_found']);
      }
      expect((await fetch(server.url + '/api/v1/services')).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
