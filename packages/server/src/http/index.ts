export * from './app.js';
export * from './deps.js';
export * from './metrics.js';
export * from './answer-cache.js';
export type { WatchChange, WatchReset } from './routes/watch.js';
export * from './limits/index.js';
