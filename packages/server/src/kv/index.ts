export * from './record.js';
export * from './kv.js';
export * from './txn.js';
export * from './sessions.js';
