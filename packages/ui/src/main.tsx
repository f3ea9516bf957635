import { render } from 'preact';
import './styles.css';
import { App } from './app.js';
import { restartLive, startLive } from './live.js';
import { checkToken, setToken, token } from './api.js';

startLive();
// Learn whether the server uses ACLs and whose rights the pages show. A token kept from earlier in
// this tab that the server no longer knows (deleted) is dropped: the tab goes on as anonymous.
void checkToken(token.value)
  .then((check) => {
    if (check !== 'refused') return;
    setToken(null);
    restartLive();
    return checkToken(null);
  })
  .catch(() => undefined);
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
