export * from './store/types.js';
export * from './catalog/index.js';
export * from './registry/index.js';
export * from './http/index.js';
export * from './health/index.js';
export * from './server.js';
export * from './addr.js';
export * from './keys.js';
export { VERSION } from './version.js';
