import { useMemo, useState } from 'preact/hooks';
import { StatusBar } from '../components.js';
import { allSummaries, useLive } from '../live.js';
import { matchesQuery, parseQuery, sortServices, SORT_KEYS, type SortKey } from '../query.js';
import { href, replaceParams, route } from '../router.js';

const ROW = 44;
const OVERSCAN = 8;
const VIEW_ROWS = 16;

/** The service list: one query box kept in the URL, sortable columns, and only the visible rows in the DOM. */
export function Services() {
  useLive();
  const params = route.value.params;
  const q = params.get('q') ?? '';
  const sortParam = params.get('sort') ?? 'name';
  const sort: SortKey = (SORT_KEYS as readonly string[]).includes(sortParam.replace(/^-/, '')) ? (sortParam.replace(/^-/, '') as SortKey) : 'name';
  const desc = sortParam.startsWith('-');
  const query = useMemo(() => parseQuery(q), [q]);
  const all = allSummaries();
  const rows = useMemo(() => sortServices(all.filter((s) => matchesQuery(query, s)), sort, desc), [all, query, sort, desc]);
  const [scrollTop, setScrollTop] = useState(0);
  const first = Math.max(0, Math.floor(scrollTop / ROW) - OVERSCAN);
  const last = Math.min(rows.length, first + VIEW_ROWS + 2 * OVERSCAN);

  const sortHeader = (key: SortKey, label: string) => {
    const active = sort === key;
    const next = active && !desc ? `-${key}` : key;
    return (
      <th scope="col" aria-sort={active ? (desc ? 'descending' : 'ascending') : 'none'}>
        <button type="button" class="sort" onClick={() => replaceParams({ sort: next === 'name' ? undefined : next })}>
          {label}
          {active ? (desc ? ' ▼' : ' ▲') : ''}
        </button>
      </th>
    );
  };

  return (
    <section aria-labelledby="h-services">
      <h1 id="h-services">Services</h1>
      <label class="query">
        Filter
        <input
          type="search"
          value={q}
          placeholder="name~^pay tag:v2 status:critical zone:a meta.version=1.2"
          aria-describedby="q-help"
          onInput={(e) => replaceParams({ q: e.currentTarget.value || undefined })}
        />
      </label>
      <p id="q-help" class="help">
        {rows.length} of {all.length} services.{' '}
        {query.errors.length > 0 ? <span class="error">{query.errors.join('; ')}</span> : <>Terms: name~regex, tag:, status:, zone:, meta.key=value, or words in the name. Press <kbd>/</kbd> to search.</>}
      </p>
      <div class="scroller" style={{ height: `${VIEW_ROWS * ROW}px` }} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} tabIndex={0} aria-label="Service list">
        <table class="services" aria-rowcount={rows.length + 1}>
          <thead>
            <tr>
              {sortHeader('name', 'Service')}
              {sortHeader('ready', 'Ready / total')}
              {sortHeader('critical', 'Health')}
              <th scope="col">Tags</th>
            </tr>
          </thead>
          <tbody>
            {first > 0 && <tr aria-hidden="true" class="spacer" style={{ height: `${first * ROW}px` }} />}
            {rows.slice(first, last).map((s, k) => (
              <tr key={s.name} aria-rowindex={first + k + 2} style={{ height: `${ROW}px` }}>
                <td>
                  <a href={href(['services', s.name])}>{s.name}</a>
                </td>
                <td>
                  {s.ready} / {s.total}
                </td>
                <td>
                  <StatusBar counts={s.counts} />
                </td>
                <td class="tags">
                  {s.tags.slice(0, 6).map((t) => (
                    <span key={t} class="chip">
                      {t}
                    </span>
                  ))}
                  {s.tags.length > 6 ? <span class="chip">+{s.tags.length - 6}</span> : null}
                </td>
              </tr>
            ))}
            {last < rows.length && <tr aria-hidden="true" class="spacer" style={{ height: `${(rows.length - last) * ROW}px` }} />}
          </tbody>
        </table>
      </div>
    </section>
  );
}
