export type * from './types.js';
export { openEmbeddedStore, EmbeddedStore, EMBEDDED_LIMITS } from './embedded.js';
export type { EmbeddedStoreOptions, EmbeddedStoreStats, StoreLogger } from './embedded.js';
