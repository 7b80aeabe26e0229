// The library views: albums (a grid of covers), an album (disc and track
// order), artists, an artist, and track lists (all, recently added,
// separated, search results) that scroll through any number of tracks by
// drawing only the rows on screen.

import { $, el, fmtTime, plural, toast } from './ui.js';
import { api, json, post } from './api.js';
import { state } from './state.js';
import { addToQueue, playList, playNext, separateHere } from './player.js';
import * as router from './router.js';
import { watchJobs } from './jobs.js';

const PAGE = 200; // tracks fetched at a time
const OVERSCAN = 10; // rows drawn above and below the visible ones

function title(text, count) {
  const h = $('#view-title');
  h.replaceChildren(text, count != null ? el('span', { id: 'count', text: ` (${count})` }) : '');
  document.title = `${text} · Sonántica`;
}

const installed = () => state.models.filter((m) => m.installed);

/// A menu of the installed models (the job's model: 4 or 6 stems).
function modelMenu(id) {
  const models = installed();
  if (models.length < 2) return null;
  return el('select', { id, attrs: { 'aria-label': 'Model to separate with', title: 'Model to separate with' } },
    ...models.map((m) => el('option', { value: m.name, text: m.default ? `${m.name} (default)` : m.name, title: m.description, selected: m.default })));
}

async function separate(tracks, model) {
  // The playing track: from where the listener is, its stems playing as made.
  if (tracks.length === 1 && state.current?.id === tracks[0].id) return separateHere();
  let queued = 0;
  for (const t of tracks) {
    try {
      await post(`/api/tracks/${t.id}/separate`, model ? { model } : {});
      queued += 1;
    } catch (e) {
      toast(`${t.title}: ${e.message}`);
    }
  }
  if (queued) {
    toast(`${plural(queued, 'separation')} queued: see Jobs`, 'info');
    watchJobs();
  }
}

/// One track row; `context` is the list it belongs to (play from here on).
function trackRow(t, i, context, { number = false, album = true } = {}) {
  const li = el('li', { data: { id: t.id }, attrs: { 'aria-current': String(state.current?.id === t.id) } });
  // The list is read at click time, and the row's place in it with it: a
  // virtual list loads pages after a row is drawn, which moves the row.
  const playHere = () => {
    const list = context();
    const at = list.indexOf(t);
    return playList(list, at >= 0 ? at : i);
  };
  const a = t.analysis || {};
  // Plays and stars come from Subsonic players (scrobbles, stars).
  const meta = [t.starred_at ? '★' : null, t.artist, album ? t.album : null, fmtTime(t.duration_s),
    t.plays ? plural(t.plays, 'play') : null,
    a.integrated_lufs != null && Number.isFinite(a.integrated_lufs) ? `${a.integrated_lufs.toFixed(1)} LUFS` : null,
    a.dr != null ? `DR ${a.dr}` : null,
    a.bpm != null ? `${Math.round(a.bpm)} BPM` : null, a.key ?? null].filter(Boolean).join(' · ');
  li.append(...[
    number ? el('span', { class: 'no', text: t.track_no ?? '' }) : null,
    el('div', { class: 'what' },
      el('button', { class: 'title', type: 'button', text: t.title, on: { click: (e) => { e.stopPropagation(); playHere(); } } }),
      el('span', { class: 'meta', text: meta })),
    el('span', { class: 'badge', text: t.is_separated ? 'separated' : '' }),
    el('span', { class: 'actions' },
      el('button', { class: 'next', type: 'button', text: 'Next', attrs: { 'aria-label': `Play ${t.title} next` }, on: { click: (e) => { e.stopPropagation(); playNext(t); } } }),
      el('button', { class: 'add', type: 'button', text: '+', attrs: { 'aria-label': `Add ${t.title} to the queue` }, on: { click: (e) => { e.stopPropagation(); addToQueue([t]); } } }),
      !t.is_separated && installed().length
        ? el('button', { class: 'separate', type: 'button', text: 'Separate', attrs: { 'aria-label': `Separate ${t.title} into stems` }, on: { click: (e) => { e.stopPropagation(); separate([t], $('#model-choice')?.value); } } })
        : null),
  ].filter(Boolean));
  li.addEventListener('click', playHere);
  return li;
}

/// A list of `total` tracks fetched a page at a time from `/api/tracks` with
/// `query`, drawn a screenful at a time (rows have one height: the list's
/// height is total × row).
function virtualTracks(query, total, first) {
  const pages = new Map([[0, first]]);
  const scroller = el('div', { class: 'scroller' });
  const list = el('ol', { id: 'tracks', class: 'virtual', attrs: { 'aria-label': 'Tracks', 'aria-rowcount': total } });
  scroller.append(list);
  let rowH = 0;
  // Pages still in flight are null in `pages`: they add no rows.
  const loaded = () => [...pages.keys()].sort((a, b) => a - b).flatMap((p) => pages.get(p) ?? []);
  const item = (i) => pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  const fetchPage = async (p) => {
    if (pages.has(p)) return;
    pages.set(p, null);
    try {
      const page = await json(`/api/tracks?${query}&offset=${p * PAGE}&limit=${PAGE}`);
      pages.set(p, page.items);
      draw();
    } catch (e) {
      pages.delete(p);
      toast(`Cannot load tracks: ${e.message}`);
    }
  };
  // Play from a row: the loaded tracks in list order, from that one.
  const context = () => loaded();
  const draw = () => {
    if (!rowH) {
      const probe = trackRow(first[0] ?? { id: 0, title: '' }, 0, context);
      list.append(probe);
      rowH = probe.getBoundingClientRect().height || 56;
      probe.remove();
      list.style.height = `${total * rowH}px`;
    }
    const top = Math.max(0, Math.floor(scroller.scrollTop / rowH) - OVERSCAN);
    const end = Math.min(total, Math.ceil((scroller.scrollTop + scroller.clientHeight) / rowH) + OVERSCAN);
    const rows = [];
    for (let i = top; i < end; i++) {
      const t = item(i);
      if (t === undefined) fetchPage(Math.floor(i / PAGE));
      if (!t) continue;
      const offsetInLoaded = loaded().indexOf(t);
      const row = trackRow(t, offsetInLoaded, context);
      row.style.top = `${i * rowH}px`;
      row.setAttribute('aria-rowindex', i + 1);
      rows.push(row);
    }
    list.replaceChildren(...rows);
  };
  let pending = false;
  scroller.addEventListener('scroll', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  });
  return { scroller, draw };
}

async function tracksView(label, params, empty) {
  const query = new URLSearchParams(params).toString();
  const first = await json(`/api/tracks?${query}&offset=0&limit=${PAGE}`);
  title(label, first.total);
  const sorts = [['title', 'Title'], ['artist', 'Artist'], ['album', 'Album'], ['added', 'Added'], ['duration', 'Length'], ['year', 'Year']];
  const tools = el('div', { class: 'tools' });
  if (!params.q) {
    const current = params.sort || 'title';
    const menu = el('select', { attrs: { 'aria-label': 'Sort by' } },
      ...sorts.map(([v, text]) => el('option', { value: v, text: `Sort: ${text}`, selected: v === current })));
    menu.addEventListener('change', () => router.go(router.current().view, null, { sort: menu.value }));
    tools.append(menu);
  }
  tools.append(el('button', { text: 'Play all', on: { click: () => playList(first.items, 0) } }));
  // Separate a selection: the tracks this list shows (a search, a sort), the
  // first page of them, that have no stems yet; with the model chosen here.
  const todo = first.items.filter((t) => !t.is_separated);
  if (installed().length && todo.length) {
    tools.append(el('button', {
      class: 'separate-all', text: `Separate ${todo.length === first.total ? 'all' : 'these'} (${todo.length})`,
      attrs: { title: 'Queue a separation of every track listed here that has no stems yet' },
      on: { click: () => separate(todo, $('#model-choice')?.value) },
    }));
    const menu = modelMenu('model-choice');
    if (menu) tools.append(menu);
  }
  if (!first.total) {
    $('#view').replaceChildren(el('p', { class: 'meta', text: empty }));
    return;
  }
  const v = virtualTracks(query, first.total, first.items);
  $('#view').replaceChildren(tools, v.scroller);
  v.draw();
}

function cover(album, size = '') {
  const img = el('img', { class: `cover ${size}`, alt: '', loading: 'lazy', src: album.cover_url });
  const fallback = el('span', { class: `cover none ${size}`, attrs: { 'aria-hidden': 'true' }, text: (album.title || '?').slice(0, 1) });
  img.addEventListener('error', () => img.replaceWith(fallback));
  return img;
}

async function allAlbums() {
  const out = [];
  for (let offset = 0; ; offset += 500) {
    const page = await json(`/api/albums?offset=${offset}&limit=500`);
    out.push(...page.items);
    if (out.length >= page.total || !page.items.length) return out;
  }
}

function albumCard(a) {
  return el('li', {},
    el('a', { href: `#/album/${a.id}`, class: 'album', attrs: { 'aria-label': `${a.title} by ${a.artist || 'unknown artist'}` } },
      cover(a),
      el('strong', { text: a.title }),
      el('span', { class: 'meta', text: [a.artist, a.year].filter(Boolean).join(' · ') })));
}

async function albumsView() {
  const albums = await allAlbums();
  title('Albums', albums.length);
  $('#view').replaceChildren(albums.length
    ? el('ol', { id: 'albums', class: 'grid' }, ...albums.map(albumCard))
    : el('p', { class: 'meta', text: 'No albums yet: upload tracks or point --library at a folder of music.' }));
}

async function albumView(id) {
  // The album's fields and its tracks (`items`) in play order.
  const { items, ...a } = await json(`/api/albums/${encodeURIComponent(id)}`);
  title(a.title);
  document.title = `${a.title} · Sonántica`;
  const list = el('ol', { id: 'tracks', class: 'album-tracks' });
  let disc = null;
  items.forEach((t, i) => {
    if (a.discs > 1 && t.disc_no !== disc) {
      disc = t.disc_no;
      list.append(el('li', { class: 'disc', attrs: { role: 'presentation' }, text: disc == null ? 'No disc number' : `Disc ${disc}` }));
    }
    list.append(trackRow(t, i, () => items, { number: true, album: false }));
  });
  const menu = modelMenu('model-choice');
  const unseparated = items.filter((t) => !t.is_separated);
  $('#view').replaceChildren(
    el('div', { class: 'album-head' }, cover(a, 'large'),
      el('div', {},
        a.artist ? el('a', { href: `#/artist/${encodeURIComponent(a.artist)}`, text: a.artist }) : null,
        el('p', { class: 'meta', text: [a.year, a.genre, plural(a.tracks, 'track'), a.discs > 1 ? plural(a.discs, 'disc') : null, fmtTime(a.duration_s)].filter(Boolean).join(' · ') }),
        el('div', { class: 'tools' },
          el('button', { text: 'Play', on: { click: () => playList(items, 0) } }),
          el('button', { text: 'Play next', on: { click: () => items.slice().reverse().forEach((t) => playNext(t)) } }),
          el('button', { text: 'Add to queue', on: { click: () => addToQueue(items) } }),
          installed().length && unseparated.length
            ? el('button', { text: `Separate album (${unseparated.length})`, on: { click: () => separate(unseparated, $('#model-choice')?.value) } })
            : null,
          menu))),
    list);
}

/// Playlists made in Subsonic players (#/playlists).
async function playlistsView() {
  const lists = await json('/api/playlists');
  title('Playlists', lists.length);
  if (!lists.length) {
    $('#view').replaceChildren(el('p', { class: 'meta', text: 'No playlists yet: make them in a Subsonic player (see Players). The Karaoke and A cappella playlists players see are the Separated tracks.' }));
    return;
  }
  $('#view').replaceChildren(el('ol', { id: 'playlists' }, ...lists.map((p) => el('li', {},
    el('a', { class: 'title', href: `#/playlist/${p.id}`, text: p.name }),
    el('span', { class: 'meta', text: [plural(p.tracks, 'track'), fmtTime(p.duration_s), p.comment].filter(Boolean).join(' · ') })))));
}

/// One playlist's tracks in its order (#/playlist/ID).
async function playlistView(id) {
  const { items, ...p } = await json(`/api/playlists/${encodeURIComponent(id)}`);
  title(p.name, items.length);
  document.title = `${p.name} · Sonántica`;
  $('#view').replaceChildren(...[
    p.comment ? el('p', { class: 'meta', text: p.comment }) : null,
    el('div', { class: 'tools' },
      el('button', { text: 'Play', on: { click: () => playList(items, 0) } }),
      el('button', { text: 'Add to queue', on: { click: () => addToQueue(items) } })),
    el('ol', { id: 'tracks' }, ...items.map((t, i) => trackRow(t, i, () => items))),
  ].filter(Boolean));
}

async function artistsView() {
  const artists = await json('/api/artists');
  title('Artists', artists.length);
  $('#view').replaceChildren(el('ul', { id: 'artists' }, ...artists.map((a) => el('li', {},
    el('a', { href: `#/artist/${encodeURIComponent(a.name)}`, text: a.name }),
    el('span', { class: 'meta', text: ` ${plural(a.albums, 'album')} · ${plural(a.tracks, 'track')}` })))));
}

async function artistView(name) {
  const [albums, tracks] = await Promise.all([
    allAlbums(),
    json(`/api/tracks?artist=${encodeURIComponent(name)}&sort=album&limit=500`),
  ]);
  title(name);
  // Its albums, and the albums it plays on.
  const on = new Set(tracks.items.map((t) => t.album_id).filter((id) => id != null));
  const own = albums.filter((a) => a.artist === name || on.has(a.id));
  const list = el('ol', { id: 'tracks' }, ...tracks.items.map((t, i) => trackRow(t, i, () => tracks.items)));
  $('#view').replaceChildren(
    el('div', { class: 'tools' },
      el('button', { text: `Play all (${tracks.total})`, on: { click: () => playList(tracks.items, 0) } }),
      el('button', { text: 'Shuffle', on: { click: () => { const i = Math.floor(Math.random() * tracks.items.length); playList(tracks.items, i); } } })),
    own.length ? el('h3', { text: 'Albums' }) : null,
    own.length ? el('ol', { id: 'albums', class: 'grid' }, ...own.map(albumCard)) : null,
    el('h3', { text: 'Tracks' }),
    list);
}

/// Shows the view the address names.
export async function show(route) {
  const { view, arg, params } = route;
  document.querySelectorAll('#views a').forEach((a) => a.setAttribute('aria-current', String(a.dataset.view === view)));
  $('#drop-hint').hidden = !['albums', 'tracks', 'recent'].includes(view);
  $('#view').setAttribute('aria-busy', 'true');
  try {
    switch (view) {
      case 'album': await albumView(arg); break;
      case 'artists': await artistsView(); break;
      case 'artist': await artistView(arg); break;
      case 'tracks': await tracksView('Tracks', { sort: params.get('sort') || 'title' }, 'No tracks yet: drop audio files here.'); break;
      case 'recent': await tracksView('Recently added', { sort: 'added', order: 'desc' }, 'Nothing added yet.'); break;
      case 'separated': await tracksView('Separated', { separated: 'true', sort: params.get('sort') || 'title' }, 'No track has stems yet: press Separate on one.'); break;
      case 'search': {
        const q = params.get('q') || '';
        if ($('#q').value !== q) $('#q').value = q;
        await tracksView(`Search: ${q}`, { q, sort: 'relevance' }, `Nothing matches “${q}”.`);
        break;
      }
      case 'playlists': await playlistsView(); break;
      case 'playlist': await playlistView(arg); break;
      case 'players': {
        const { playersView } = await import('./players.js');
        title('Players');
        await playersView();
        break;
      }
      case 'jobs': {
        const { jobsView } = await import('./jobs.js');
        title('Jobs');
        await jobsView();
        break;
      }
      default: await albumsView();
    }
  } catch (e) {
    $('#view').replaceChildren(el('p', { class: 'error', attrs: { role: 'alert' }, text: `Cannot show this view: ${e.message}` }));
  } finally {
    $('#view').removeAttribute('aria-busy');
  }
}

/// Reloads the current view (after an upload, a finished job, a reconnect).
export const refresh = () => show(router.current());

export async function loadModels() {
  try { state.models = await json('/api/models'); } catch { state.models = []; }
}

/// Uploads files one at a time; a refused file says why in a toast.
export async function upload(files) {
  let added = 0;
  for (const f of files) {
    const body = new FormData();
    body.append('file', f, f.name);
    try {
      await api('/api/tracks', { method: 'POST', body });
      added += 1;
    } catch (e) {
      toast(`${f.name} was not added: ${e.message}`);
    }
  }
  if (added) toast(`${plural(added, 'track')} added`, 'info');
  await refresh();
}
