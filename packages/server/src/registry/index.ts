export * from './normalize.js';
export * from './registry.js';
export * from './explain.js';
