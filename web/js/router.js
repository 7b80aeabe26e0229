// State in the address: the view (`#/albums`, `#/album/12`, `#/artist/Name`,
// `#/tracks?sort=title`, `#/search?q=…`, `#/jobs`) and what is playing
// (`play=40&t=93&mix=…`), so that a refresh or a shared link comes back to
// the same place. Views push history entries; the playing position only
// replaces the current one.

const PLAYER_KEYS = ['play', 't', 'mix'];

/// The address as { view, arg, params } (params: URLSearchParams).
export function current() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  const [view, ...rest] = path.split('/');
  return {
    view: view || 'albums',
    arg: rest.length ? decodeURIComponent(rest.join('/')) : null,
    params: new URLSearchParams(query),
  };
}

function build(view, arg, params) {
  const q = params.toString();
  return `#/${view}${arg != null ? `/${encodeURIComponent(arg)}` : ''}${q ? `?${q}` : ''}`;
}

/// Goes to a view, keeping what is playing in the address.
export function go(view, arg = null, viewParams = {}) {
  const now = current();
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(viewParams)) if (v != null && v !== '') params.set(k, v);
  for (const k of PLAYER_KEYS) if (now.params.has(k)) params.set(k, now.params.get(k));
  const hash = build(view, arg, params);
  if (hash !== location.hash) location.hash = hash;
}

/// What is playing, as last recorded: kept across views (a tab or a link to
/// `#/albums` carries none of it).
const playing = {};

/// Records what is playing (null values remove a key) without a history entry.
export function setPlayer(values) {
  for (const [k, v] of Object.entries(values)) {
    if (v == null) delete playing[k]; else playing[k] = String(v);
  }
  const now = current();
  for (const k of PLAYER_KEYS) {
    if (k in playing) now.params.set(k, playing[k]); else now.params.delete(k);
  }
  const hash = build(now.view, now.arg, now.params);
  if (hash !== location.hash) history.replaceState(null, '', hash);
}

// Every new address (a tab, a link, back and forward) gets what is playing.
window.addEventListener('hashchange', () => setPlayer({}));

/// Calls `f(current())` whenever the view changes (not when only the playing
/// position does).
export function onChange(f) {
  let last = null;
  const key = (c) => {
    const p = new URLSearchParams(c.params);
    for (const k of PLAYER_KEYS) p.delete(k);
    return `${c.view}/${c.arg}?${p}`;
  };
  window.addEventListener('hashchange', () => {
    const c = current();
    if (key(c) !== last) { last = key(c); f(c); }
  });
  return () => { const c = current(); last = key(c); return f(c); };
}
