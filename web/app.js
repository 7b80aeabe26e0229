// The Studio: library, player, live Inspector and stem mixer, as plain ES
// modules with no build step (web/js/: api, router, library, player,
// inspector, mixer, jobs). Audio runs through one AudioWorklet (worklet.js)
// with the wasm build of sonantica-meter and sonantica-mix.

import { $ } from './js/ui.js';
import * as apiMod from './js/api.js';
import * as router from './js/router.js';
import * as library from './js/library.js';
import * as player from './js/player.js';
import { initMixer } from './js/mixer.js';
import { state } from './js/state.js';
import { watchJobs, whenFinished } from './js/jobs.js';

function showLogin() {
  $('#studio').hidden = true;
  $('#login').hidden = false;
  $('#token').focus();
}
apiMod.on('login', showLogin);

$('#login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  let res;
  try {
    res = await fetch('/api/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: $('#token').value.trim() }),
    });
  } catch {
    $('#login-error').textContent = 'The station cannot be reached.';
    return;
  }
  if (res.ok) {
    $('#login').hidden = true;
    $('#login-error').textContent = '';
    start();
  } else if (res.status === 429) {
    $('#login-error').textContent = 'Too many tries: wait a minute, then try again.';
  } else {
    $('#login-error').textContent = 'That token is not right.';
  }
});

// The skip link moves focus to the player without touching the address (which
// holds the view).
$('.skip').addEventListener('click', (e) => {
  e.preventDefault();
  $('#player').focus();
});

// Uploads: the button, or files dropped anywhere.
$('#upload').addEventListener('change', (e) => library.upload(e.target.files));
$('#upload-button').addEventListener('click', () => $('#upload').click());
document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  library.upload(e.dataTransfer.files);
});

// Search: words in any order, ranked by the station (`#/search?q=`).
let searchTimer;
const search = () => {
  const q = $('#q').value.trim();
  if (q) router.go('search', null, { q });
  else if (router.current().view === 'search') router.go('albums');
};
$('#search').addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(searchTimer); search(); });
$('#q').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 300); });

// A finished job: the row shows "separated", and the open track gets its
// mixer (or keeps playing the stems it already plays as they were made).
whenFinished((trackId) => {
  library.refresh();
  player.stemsFinished(trackId);
});

// When the station is back after being unreachable, the view reloads itself.
apiMod.on('back', () => { library.refresh(); watchJobs(); });

const showView = router.onChange(async (route) => {
  await library.show(route);
  // Focus moves to what the command opened (its heading), except on the first load.
  if (started) $('#view-title').focus({ preventScroll: false });
});
let started = false;

async function start() {
  await library.loadModels();
  $('#studio').hidden = false;
  await showView();
  started = true;
  watchJobs();
  // What was playing before a refresh (or in a shared link), paused at its place.
  const { params } = router.current();
  const id = Number(params.get('play'));
  if (id > 0) {
    player.restoreQueue(id);
    try {
      await player.load(id, { at: Number(params.get('t')) || 0, mix: params.get('mix'), autoplay: false });
    } catch { /* gone: nothing to restore */ }
  }
}

player.initPlayer();
initMixer();
// A session cookie may already be there: try the library, else ask for the token.
apiMod.json('/api/models').then(() => start()).catch(() => {});
