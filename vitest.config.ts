import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Unit tests run against the sources; end-to-end tests spawn the built CLI.
    alias: {
      '@beacon/client/http': fileURLToPath(new URL('./packages/client/src/http.ts', import.meta.url)),
      '@beacon/client/sse': fileURLToPath(new URL('./packages/client/src/sse.ts', import.meta.url)),
      '@beacon/client/grpc': fileURLToPath(new URL('./packages/client/src/grpc.ts', import.meta.url)),
      '@beacon/client/xds': fileURLToPath(new URL('./packages/client/src/xds.ts', import.meta.url)),
      '@beacon/core/testing': fileURLToPath(new URL('./packages/core/src/testing.ts', import.meta.url)),
      '@beacon/core': src('core'),
      '@beacon/server': src('server'),
      '@beacon/client': src('client'),
      '@beacon/proxy': src('proxy'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
