export * from './format.js';
export * from './snapshot.js';
