import { render } from 'preact';
import './styles.css';
import { App } from './app.js';
import { startLive } from './live.js';
import { checkToken, token } from './api.js';

startLive();
// A token kept from earlier in this tab: learn again whether it may write (no answer changes nothing).
if (token.value) void checkToken(token.value).catch(() => undefined);
// `/` jumps to the page's search or first text box, as on most dashboards; not while typing in one.
addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target as HTMLElement | null;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  const box = document.querySelector<HTMLInputElement>('main input[type=search], main input:not([type=password])');
  if (box) {
    e.preventDefault();
    box.focus();
  }
});
render(<App />, document.getElementById('app')!);
