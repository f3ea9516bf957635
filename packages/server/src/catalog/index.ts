export * from './types.js';
export * from './view.js';
export * from './diff.js';
