export { XdsServer, type XdsServerOptions } from './server.js';
export { xdsPlugin } from './routes.js';
export type { XdsClientInfo } from './stream.js';
