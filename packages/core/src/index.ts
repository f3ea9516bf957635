export * from './clock.js';
export * from './random.js';
export * from './errors.js';
export * from './duration.js';
export * from './model.js';
export * from './registration.js';
export * from './names.js';
export * from './version.js';
