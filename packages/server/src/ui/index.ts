export { uiPlugin, type UiOptions } from './plugin.js';
export { builtUiDir } from './locate.js';
