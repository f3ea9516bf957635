import { session, token, type Session } from './api.js';
import { LiveBadge } from './components.js';
import { href, route } from './router.js';
import { InstancePage } from './pages/Instance.js';
import { Kv } from './pages/Kv.js';
import { Login } from './pages/Login.js';
import { Overview } from './pages/Overview.js';
import { Service } from './pages/Service.js';
import { Services } from './pages/Services.js';
import { Timeline } from './pages/Timeline.js';

type Page = 'overview' | 'services' | 'service' | 'instance' | 'timeline' | 'kv' | 'login';

function pageOf(path: string[]): Page {
  switch (path[0]) {
    case undefined:
      return 'overview';
    case 'services':
      return path[1] === undefined ? 'services' : 'service';
    case 'instances':
      return 'instance';
    case 'timeline':
      return 'timeline';
    case 'kv':
      return 'kv';
    case 'login':
      return 'login';
    default:
      return 'overview';
  }
}

function Body({ page, path }: { page: Page; path: string[] }) {
  switch (page) {
    case 'overview':
      return <Overview />;
    case 'services':
      return <Services />;
    case 'service':
      return <Service name={path[1]!} />;
    case 'instance':
      return <InstancePage id={path[1]!} />;
    case 'timeline':
      return <Timeline />;
    case 'kv':
      return <Kv />;
    case 'login':
      return <Login />;
  }
}

const NAV: [Page, string, string[]][] = [
  ['overview', 'Overview', []],
  ['services', 'Services', ['services']],
  ['timeline', 'Timeline', ['timeline']],
  ['kv', 'KV', ['kv']],
  ['login', 'Token', ['login']],
];

/** Whose rights the pages show: the token's description (never its secret). */
function Who({ session: s }: { session: Session }) {
  switch (s.kind) {
    case 'unknown':
    case 'acl-off':
      return token.value ? <span class="muted">token set</span> : null;
    case 'token':
      return <span class="muted">{s.anonymous ? 'anonymous' : `token: ${s.description || s.accessorId}`}</span>;
  }
}

export function App() {
  const { path } = route.value;
  const page = pageOf(path);
  const section = page === 'service' || page === 'instance' ? 'services' : page;
  return (
    <>
      {/* Not href="#main": the hash is the router's. */}
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header>
        <span class="brand">Beacon</span>
        <nav aria-label="Main">
          {NAV.map(([p, label, to]) => (
            <a key={p} href={href(to)} aria-current={section === p ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <LiveBadge />
        <Who session={session.value} />
      </header>
      <main id="main" tabIndex={-1}>
        {session.value.kind === 'token' && session.value.anonymous && page !== 'login' && (
          <p class="notice" data-testid="anonymous">
            No token: you see only what this server lets anonymous requests read. <a href={href(['login'])}>Give a token</a> to see more.
          </p>
        )}
        <Body page={page} path={path} />
      </main>
    </>
  );
}
