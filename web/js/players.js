// Players (#/players): how Subsonic players (Symfonium, DSub, Feishin, …) reach
// the station: the address to enter, the Subsonic user and password, and API
// keys made per player, shown once, revocable.

import { $, el, toast } from './ui.js';
import { api, json, post } from './api.js';

const fmtDate = (ms) => (ms ? new Date(ms).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : 'never');

function keyRow(k) {
  return el('li', { data: { id: k.id } },
    el('div', { class: 'what' },
      el('span', { class: 'title', text: k.name }),
      el('span', { class: 'meta', text: `made ${fmtDate(k.created_at)} · last used ${fmtDate(k.last_used_at)}` })),
    el('button', {
      text: 'Revoke', attrs: { 'aria-label': `Revoke the key for ${k.name}` },
      on: {
        click: async () => {
          try {
            await api(`/api/subsonic/keys/${k.id}`, { method: 'DELETE' });
            toast(`The key for ${k.name} no longer opens anything.`);
          } catch (e) { toast(`Cannot revoke: ${e.message}`); }
          await playersView();
        },
      },
    }));
}

/// The Players view.
export async function playersView() {
  const s = await json('/api/subsonic');
  const address = `${location.origin}/`;
  const user = el('input', { id: 'subsonic-user', value: s.user, attrs: { autocomplete: 'username', 'aria-label': 'Subsonic user name' } });
  const password = el('input', {
    id: 'subsonic-password', type: 'password',
    attrs: { autocomplete: 'new-password', 'aria-label': 'Subsonic password', placeholder: s.password_set ? 'set (type to replace it)' : 'not set' },
  });
  const login = el('form', { id: 'subsonic-login', class: 'form' },
    el('label', { text: 'User name' }, user),
    el('label', { text: 'Password' }, password),
    el('button', { type: 'submit', text: 'Save' }));
  login.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!password.value) { toast('Type the password players will use.'); return; }
    try {
      await api('/api/subsonic/login', {
        method: 'PUT', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user: user.value, password: password.value }),
      });
      toast('Saved: players sign in with it now.');
      await playersView();
    } catch (err) { toast(`Not saved: ${err.message}`); }
  });

  const name = el('input', { id: 'key-name', attrs: { 'aria-label': 'Player the key is for', placeholder: 'e.g. Phone (Symfonium)' } });
  const made = el('p', { id: 'new-key', attrs: { role: 'status' } });
  const newKey = el('form', { id: 'subsonic-key', class: 'form' }, el('label', { text: 'New key for' }, name), el('button', { type: 'submit', text: 'Make key' }));
  newKey.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const res = await post('/api/subsonic/keys', { name: name.value });
      const k = await res.json();
      await playersView();
      $('#new-key').replaceChildren(
        el('span', { text: `Key for ${k.name} (shown only now): ` }),
        el('code', { class: 'secret', text: k.key }));
    } catch (err) { toast(`No key made: ${err.message}`); }
  });

  $('#view').replaceChildren(
    el('p', { class: 'meta', text: 'Subsonic players (Symfonium, DSub, Tempo, Substreamer, Feishin, Supersonic…) play this library, and sing along with its Karaoke and A cappella playlists.' }),
    el('h3', { text: 'Server address' }),
    el('p', {}, el('code', { id: 'subsonic-address', text: address })),
    el('h3', { text: 'Sign in with a password' }),
    el('p', { class: 'meta', text: 'Kept readable by the station (Subsonic sign-in needs it), in a file only its owner reads: use one you use nowhere else. It opens the players\u2019 API only, not this Studio.' }),
    login,
    el('h3', { text: 'Or with an API key' }),
    el('p', { class: 'meta', text: 'One per player, for players that offer API keys (OpenSubsonic). Revoke a key and that player is signed out.' }),
    newKey,
    made,
    s.keys.length ? el('ol', { id: 'keys' }, ...s.keys.map(keyRow)) : el('p', { class: 'meta', text: 'No keys yet.' }));
}
