export { uiPlugin, UI_CSP, type UiOptions } from './plugin.js';
export { builtUiDir } from './locate.js';
