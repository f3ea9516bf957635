export * from './self-preservation.js';
export * from './routes.js';
