// The player: a queue (play now, play next, add, shuffle, repeat), the audio
// graph (the stream engine → one AudioWorklet → volume), gapless playback,
// loudness normalisation from the stored analysis, the waveform seek bar, the
// now-playing bar and the keyboard.

import { $, el, fmt, fmtLevel, fmtTime, toast } from './ui.js';
import { api, json, post } from './api.js';
import { Engine } from './engine.js';
import { state } from './state.js';
import { resetInspector, showReadings } from './inspector.js';
import {
  buildMixer, encodeMix, hideMixer, LAYOUTS, layoutChannels, mixSettings, offerStems, SOURCES4, SOURCES6, stemStatus,
} from './mixer.js';
import * as router from './router.js';
import { watchJobs } from './jobs.js';

const TARGET_LUFS = -18;
const CEILING_DBTP = -1;

export const queue = { items: [], pos: -1, shuffle: false, repeat: 'off', unshuffled: null };
state.queue = queue;

/// Builds the audio graph once: the worklet module, the wasm, the element's
/// source and the volume.
async function ensureAudio() {
  if (state.ctx) return;
  state.ctx = new AudioContext({ latencyHint: 'playback' });
  await state.ctx.audioWorklet.addModule('/worklet.js');
  state.module = await WebAssembly.compileStreaming(fetch('/sonantica.wasm'));
  state.wasm = await WebAssembly.instantiate(state.module, {});
  // Every scheduled buffer goes into this bus, and the bus into the worklet
  // (which a layout change replaces).
  state.source = new GainNode(state.ctx, { channelCountMode: 'max', channelInterpretation: 'discrete' });
  state.engine = new Engine(state.ctx, {
    input: () => state.source,
    fetch: api,
    compatible,
    onStart: junctionReached,
    onEnded: ended,
    onError: (item, e) => toast(`Cannot play ${titleOf(item.id)}: ${e.message}`),
    onJunction: junctionAhead,
    onBuffering: (on) => { $('#buffering').hidden = !on; },
  });
  state.engine.upNext = upNext;
  state.gain = state.ctx.createGain();
  state.gain.connect(state.ctx.destination);
  state.gain.gain.value = $('#volume').value / 100;
  const max = state.ctx.destination.maxChannelCount;
  const options = (list) => list.map((name) => el('option', { value: name, text: `${name} (${layoutChannels(name)} ch)` }));
  // Live output: what the sound card can take. Export and channel check: any.
  $('#layout').replaceChildren(...options(LAYOUTS.filter((name) => layoutChannels(name) <= Math.max(max, 2))));
  $('#export-layout').replaceChildren(...options(LAYOUTS));
}

/// (Re)builds the worklet for the current mode and layout. The old node is
/// stopped for good and nothing it still posts reaches the page, so only one
/// meter stream ever feeds the Inspector.
function connectWorklet(inputChannels, stems) {
  const { ctx } = state;
  if (state.node) {
    state.node.port.onmessage = null;
    state.node.port.postMessage({ type: 'stop' });
    state.source.disconnect();
    state.node.disconnect();
  }
  const channels = state.mode === 'stems' ? layoutChannels(state.layout) : 2;
  ctx.destination.channelCount = Math.min(channels, ctx.destination.maxChannelCount);
  ctx.destination.channelInterpretation = channels > 2 ? 'discrete' : 'speakers';
  const node = new AudioWorkletNode(ctx, 'sonantica', {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [channels],
    channelCount: inputChannels, channelCountMode: 'explicit', channelInterpretation: 'discrete',
    processorOptions: {
      module: state.module, mode: state.mode, channels, stems, gain: state.normGain ?? 1,
      settings: state.mixer ? mixSettings(state.mixer, state.layout) : null,
    },
  });
  state.node = node;
  resetInspector();
  node.port.onmessage = (e) => {
    if (state.node !== node) return;
    if (e.data.type === 'readings') { state.live = e.data.live; showReadings(e.data); }
    else if (e.data.type === 'capture') state.onCapture?.(e.data);
    else if (e.data.type === 'applied') state.applied = e.data.status; // 0: the engine took the mix
  };
  state.source.connect(node).connect(state.gain);
}

/// The worklet's next `frames` frames of input, output (as measured) and
/// played output (after normalisation), for the browser tests.
state.capture = (frames) => new Promise((resolve) => {
  state.onCapture = (d) => { state.onCapture = null; resolve(d); };
  state.node.port.postMessage({ type: 'capture', frames });
});

// ---- loudness normalisation ----

const albumCache = new Map();

async function albumLoudness(albumId) {
  if (!albumCache.has(albumId)) {
    albumCache.set(albumId, json(`/api/albums/${albumId}`).then(({ items }) => {
      // Energy mean of the tracks' integrated loudness, weighted by length
      // (what measuring the album as one programme would give, near enough).
      let energy = 0;
      let seconds = 0;
      let peak = -Infinity;
      for (const t of items) {
        const a = t.analysis;
        if (a?.integrated_lufs == null || !t.duration_s) continue;
        energy += t.duration_s * 10 ** (a.integrated_lufs / 10);
        seconds += t.duration_s;
        if (a.true_peak_dbtp != null) peak = Math.max(peak, a.true_peak_dbtp);
      }
      return seconds ? { lufs: 10 * Math.log10(energy / seconds), peak } : null;
    }).catch(() => null));
  }
  return albumCache.get(albumId);
}

/// The gain in dB that brings `t` to the target, never pushing its true peak
/// above the ceiling; with what it was worked out from, for the screen.
async function normalisation(t) {
  const mode = $('#norm-mode').value;
  if (mode === 'off') return { db: 0, text: 'Loudness normalisation off' };
  const a = t.analysis;
  let lufs = a?.integrated_lufs;
  let peak = a?.true_peak_dbtp;
  let how = 'track';
  if (mode === 'album' && t.album_id != null) {
    const album = await albumLoudness(t.album_id);
    if (album) { lufs = album.lufs; peak = album.peak; how = 'album'; }
  }
  if (lufs == null || !Number.isFinite(lufs)) {
    const analysed = t.analysis_status === 'done' || (t.analysis && how === 'track');
    return { db: 0, text: analysed ? 'Not normalised: too quiet to measure' : 'Not normalised: no analysis yet' };
  }
  let db = TARGET_LUFS - lufs;
  let limited = false;
  if (peak != null && Number.isFinite(peak) && peak + db > CEILING_DBTP) { db = CEILING_DBTP - peak; limited = true; }
  const sign = db >= 0 ? '+' : '−';
  return {
    db,
    text: `${sign}${Math.abs(db).toFixed(1)} dB to ${TARGET_LUFS} LUFS (${how}${limited ? ', held to −1 dBTP' : ''})`,
  };
}

async function applyNormalisation() {
  const t = state.current;
  if (!t) return;
  const n = await normalisation(t);
  state.normGain = 10 ** (n.db / 20);
  $('#bar-norm').textContent = n.text;
  state.node?.port.postMessage({ type: 'gain', gain: state.normGain });
}

// ---- the waveform seek bar ----

async function showOverview(t) {
  const c = $('#overview');
  const g = c.getContext('2d');
  state.overview = null;
  g.clearRect(0, 0, c.width, c.height);
  try {
    state.overview = await json(`/api/tracks/${t.id}/overview`);
  } catch {
    return; // not analysed yet: the bar stays plain
  }
  drawOverview();
}

function drawOverview() {
  const o = state.overview;
  const c = $('#overview');
  const g = c.getContext('2d');
  const { width: w, height: h } = c;
  g.fillStyle = '#0c0d0f';
  g.fillRect(0, 0, w, h);
  if (!o || !o.min?.length) return;
  const wave = h * 0.7;
  const n = o.min.length;
  const played = player.duration ? player.currentTime / player.duration : 0;
  for (let x = 0; x < w; x++) {
    const i = Math.min(n - 1, Math.floor((x / w) * n));
    const top = wave / 2 - (o.max[i] / 127) * (wave / 2);
    const bottom = wave / 2 - (o.min[i] / 127) * (wave / 2);
    g.fillStyle = x / w < played ? '#d8a657' : '#5b5852';
    g.fillRect(x, top, 1, Math.max(1, bottom - top));
  }
  // Short-term loudness under the waveform: −60 … 0 LUFS.
  g.strokeStyle = '#8fb573';
  g.beginPath();
  let pen = false;
  (o.loudness || []).forEach((l, i) => {
    const x = (i / n) * w;
    if (l == null) { pen = false; return; }
    const y = h - 2 - ((Math.max(l, -60) + 60) / 60) * (h - wave - 4);
    if (pen) g.lineTo(x, y); else g.moveTo(x, y);
    pen = true;
  });
  g.stroke();
  // Clipped spots in red.
  g.fillStyle = '#d26a5c';
  for (const i of o.clipped || []) g.fillRect((i / n) * w, 0, Math.max(2, w / n), wave);
}

// ---- loading and playing ----

/// What the page and its tests see of playback (the engine's state).
export const player = {
  get paused() { return !state.engine || state.engine.paused; },
  get currentTime() { return state.engine ? state.engine.position : 0; },
  get duration() { return state.current?.duration_s ?? NaN; },
  play: () => play(),
  pause: () => state.engine?.pause().then(showPlayState),
  seek: (t) => seek(t),
};
state.player = player;

/// The engine's item for a track: its stems of one model, or the track;
/// `live` (`{ model, stems }`): the stems a running job is making.
function itemOf(t, live = null) {
  if (live) return { id: t.id, model: live.model, channels: 2 * live.stems, stems: live.stems, duration: t.duration_s, live: true };
  const stems = t.is_separated ? t.stems.filter((s) => s.model === t.stems[0].model) : [];
  return stems.length
    ? { id: t.id, model: stems[0].model, channels: 2 * stems.length, stems: stems.length, duration: t.duration_s }
    : { id: t.id, model: null, channels: Math.min(Math.max(t.channels, 1), 8), stems: 0, duration: t.duration_s };
}

/// Whether `b` can follow `a` on the same worklet, sample for sample.
const compatible = (a, b) => a.channels === b.channels && a.stems === b.stems;

const titleOf = (id) => queue.items.find((t) => t.id === id)?.title ?? (state.current?.id === id ? state.current.title : `track ${id}`);

function showAnalysis(t) {
  const a = t.analysis || {};
  const rows = [
    ['Integrated', fmtLevel(a.integrated_lufs, 1, ' LUFS')], ['LRA', fmt(a.loudness_range_lu, 1, ' LU')],
    ['True peak', fmtLevel(a.true_peak_dbtp, 1, ' dBTP')], ['DR', a.dr ?? '–'],
    ['Crest', fmt(a.crest_factor_db, 1, ' dB')], ['Correlation', fmt(a.correlation, 2, '')],
    ['Width', a.width == null ? '–' : `${Math.round(a.width * 100)} %`], ['Clipping', a.clip_events ?? '–'],
    // Estimated at analysis time (tracks analysed before it show a dash).
    ['Tempo', a.bpm == null ? '–' : `${a.bpm.toFixed(1)} BPM`], ['Key', a.key ?? '–'],
  ];
  $('#analysis').replaceChildren(...rows.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: String(v) }))));
}

function showCover(t) {
  for (const id of ['#now-cover', '#bar-cover']) {
    const img = $(id);
    img.hidden = t.album_id == null;
    if (t.album_id != null) {
      img.onerror = () => { img.hidden = true; };
      img.src = `/api/albums/${t.album_id}/cover`;
    }
  }
}

/// Everything on screen about the playing track `t`.
function showTrack(t) {
  state.current = t;
  document.querySelectorAll('#tracks li, #queue li').forEach((li) => li.setAttribute('aria-current', String(Number(li.dataset.id) === t.id)));
  $('#detail-title').textContent = t.title;
  $('#bar-track').textContent = [t.title, t.artist].filter(Boolean).join(' · ');
  $('#detail-meta').textContent = [t.artist, t.album, `${t.codec} · ${t.sample_rate / 1000} kHz · ${t.layout}`].filter(Boolean).join(' · ');
  showAnalysis(t);
  showCover(t);
  showOverview(t);
  document.title = `${t.title} · Sonántica`;
}

/// Loads track `id` into the player. `at`: position in seconds; `mix`: a
/// saved mix (`mix=` of the address); `autoplay`: start playing;
/// `keepPlaying`: the same track again (its stems are ready), where it was;
/// `live`: its stems as a running job makes them (`{ model, stems }`);
/// `preset`: the mixer's preset to start from.
export async function load(id, { at = 0, mix = null, autoplay = true, keepPlaying = false, live = null, preset = null } = {}) {
  await ensureAudio();
  const t = await json(`/api/tracks/${id}`);
  const wasPlaying = keepPlaying && !player.paused;
  const position = keepPlaying ? player.currentTime : at;
  if (!state.engine.paused) await state.engine.pause();
  if (separating && separating.trackId !== id) separating = null; // it runs on in Jobs
  showTrack(t);
  const item = itemOf(t, live);
  state.mode = item.stems ? 'stems' : 'track';
  await applyNormalisation();
  if (item.stems) {
    $('#zip').href = `/api/tracks/${t.id}/stems.zip?model=${encodeURIComponent(item.model)}`;
    $('#zip').hidden = Boolean(live);
    state.mixer = buildMixer(item.stems === 6 ? SOURCES6 : SOURCES4, item.model, mix, (m) => router.setPlayer({ mix: encodeMix(m) }), preset);
    stemStatus('');
  } else if (state.models?.some((m) => m.installed)) {
    state.mixer = null;
    offerStems(separateHere);
  } else {
    state.mixer = null;
    hideMixer();
  }
  connectWorklet(item.channels, item.stems);
  state.engine.load(item, position);
  router.setPlayer({ play: t.id, mix: item.stems ? mix ?? null : null, t: position > 0 ? position.toFixed(1) : null });
  renderQueue();
  showPosition();
  if (wasPlaying || (autoplay && !keepPlaying)) await play();
  else showPlayState();
}

// ---- separating the playing track ----

/// A separation started from the player for the playing track:
/// `{ trackId, jobId, preset, live }` (`live` once its stems play).
let separating = null;
const AHEAD_READY_S = 3; // stems this far ahead are ready: they take over

/// Separates the playing track from where the listener is; its stems take
/// over (with `preset` on the mixer) as soon as the next seconds are ready,
/// without a jump, and play on while the rest is separated.
export async function separateHere(preset = null) {
  const t = state.current;
  if (!t) return;
  if (separating?.trackId === t.id) {
    separating.preset = preset ?? separating.preset;
    return;
  }
  const model = document.querySelector('#model-choice')?.value;
  const body = { from_s: Number(player.currentTime.toFixed(3)) };
  if (model) body.model = model;
  let job;
  try {
    job = await (await post(`/api/tracks/${t.id}/separate`, body)).json();
  } catch (e) {
    toast(`Cannot separate ${t.title}: ${e.message}`);
    return;
  }
  separating = { trackId: t.id, jobId: job.id, preset, live: null };
  stemStatus(`Separating from ${fmtTime(body.from_s)}…`);
  watchJobs();
  followSeparation(separating);
}

/// Whether `spans` (`[[start_s, end_s], …]`) hold `[from, to)`.
const covers = (spans, from, to) => spans.some(([a, b]) => a <= from + 1e-6 && to <= b + 1e-6);

/// Watches the job of `s` while it is the playing track's: says how far it
/// is, and switches to its stems once the seconds ahead are ready.
async function followSeparation(s) {
  if (separating !== s) return;
  let job = null;
  try { job = await json(`/api/jobs/${s.jobId}`); } catch { /* try again */ }
  if (separating !== s) return;
  if (job && ['done', 'failed', 'cancelled'].includes(job.status)) {
    separating = null;
    if (job.status === 'done') await stemsFinished(s.trackId, s.preset);
    else {
      toast(`Separation ${job.status}${job.error ? `: ${job.error}` : ''}`);
      // Stems that will never be complete: back to the track, where it was.
      if (s.live) await load(s.trackId, { keepPlaying: true });
      else stemStatus('');
    }
    return;
  }
  if (job?.status === 'running' && job.stems && !s.live) {
    const at = player.currentTime;
    const end = Math.min(at + AHEAD_READY_S, (state.current?.duration_s ?? at) - 0.01);
    if (covers(job.ready, at, end)) {
      s.live = { model: job.model, stems: job.stems };
      await load(s.trackId, { keepPlaying: true, live: s.live, preset: s.preset });
    }
  }
  if (job) {
    const pct = `${Math.round(job.progress * 100)} %`;
    stemStatus(s.live
      ? `Separating the rest (${pct}): the stems play as they are made.`
      : job.status === 'queued' ? 'Waiting for the separation to start…' : `Separating (${pct}): the stems play as soon as the next seconds are ready.`);
  }
  setTimeout(() => followSeparation(s), 300);
}

/// A job for `trackId` finished: if that track is playing, its stems take
/// over; if they already play (made live), they play on untouched and only
/// the page learns that the files exist.
export async function stemsFinished(trackId, preset = null) {
  if (state.current?.id !== trackId) return;
  const item = state.engine?.item;
  if (item?.id === trackId && item.stems) {
    let t;
    try { t = await json(`/api/tracks/${trackId}`); } catch { return; }
    if (state.current?.id !== trackId) return;
    item.live = false;
    state.current = t;
    for (const q of queue.items) if (q.id === trackId) Object.assign(q, { is_separated: t.is_separated, stems: t.stems });
    $('#zip').hidden = false;
    stemStatus('');
    return;
  }
  if (separating?.trackId === trackId && !separating.live) return; // followSeparation switches
  await load(trackId, { keepPlaying: true, preset });
}

export async function play() {
  if (!state.current) {
    // Nothing chosen yet: start the queue, else say what to do.
    if (queue.items.length) return playAt(Math.max(queue.pos, 0));
    toast('Choose a track to play first.', 'info');
    return;
  }
  await state.engine.play();
  showPlayState();
}

export function togglePlay() {
  if (state.current && !player.paused) player.pause(); else play();
}

function seek(t) {
  if (!state.current) return;
  state.engine.seek(t);
  showPosition();
  if (player.paused) router.setPlayer({ t: player.currentTime.toFixed(1) });
}

function showPlayState() {
  const playing = !player.paused;
  $('#play').textContent = playing ? 'Pause' : 'Play';
  $('#play').setAttribute('aria-label', playing ? 'Pause (Space)' : 'Play (Space)');
  if (!playing && state.current) router.setPlayer({ t: player.currentTime.toFixed(1) });
}

let lastUrl = 0;
let seeking = false; // the seek slider is being dragged
function showPosition() {
  if (seeking) return;
  const t = player.currentTime;
  const d = player.duration;
  $('#clock').textContent = `${fmtTime(t)} / ${fmtTime(d)}`;
  if (d) $('#seek').value = Math.round((t / d) * 1000);
  $('#seek').setAttribute('aria-valuetext', `${fmtTime(t)} of ${fmtTime(d)}`);
  if (state.overview) drawOverview();
  // The position in the address, once a second (a refresh comes back here).
  if (state.current && !player.paused && Math.abs(t - lastUrl) >= 1) {
    lastUrl = t;
    router.setPlayer({ t: t.toFixed(1) });
  }
}

// ---- the queue ----

async function playAt(pos) {
  if (pos < 0 || pos >= queue.items.length) return;
  queue.pos = pos;
  try {
    await load(queue.items[pos].id);
  } catch (e) {
    toast(`Cannot play ${queue.items[pos].title}: ${e.message}`);
  }
}

/// Replaces the queue with `tracks` and plays the one at `index`.
export function playList(tracks, index = 0) {
  queue.items = [...tracks];
  queue.unshuffled = null;
  if (queue.shuffle) shuffleRest(index);
  return playAt(queue.shuffle ? 0 : index);
}

export function playNext(track) {
  queue.items.splice(queue.pos + 1, 0, track);
  queueChanged();
  toast(`${track.title} plays next`, 'info');
}

export function addToQueue(tracks) {
  queue.items.push(...tracks);
  queueChanged();
  toast(tracks.length === 1 ? `${tracks[0].title} added to the queue` : `${tracks.length} tracks added to the queue`, 'info');
}

function shuffleRest(from) {
  queue.unshuffled = [...queue.items];
  const first = queue.items.splice(from, 1);
  for (let i = queue.items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [queue.items[i], queue.items[j]] = [queue.items[j], queue.items[i]];
  }
  queue.items = [...first, ...queue.items];
}

/// The queue position after the playing one (repeat and the end considered).
function nextPos() {
  if (queue.repeat === 'one') return queue.pos;
  const pos = queue.pos + 1;
  if (pos < queue.items.length) return pos;
  return queue.repeat === 'all' && queue.items.length ? 0 : -1;
}

/// The engine asks what follows the playing track, to stream it in time.
function upNext() {
  const pos = nextPos();
  const t = pos >= 0 ? queue.items[pos] : null;
  return t ? { ...itemOf(t), pos } : null;
}

/// A gapless junction is coming at context time `when`: the worklet resets its
/// meters and takes the next track's normalisation on that very frame.
async function junctionAhead(when, next) {
  const t = queue.items[next.pos];
  const n = t ? await normalisation(t) : { db: 0 };
  state.node?.port.postMessage({ type: 'at', frame: Math.round(when * state.ctx.sampleRate), reset: true, gain: 10 ** (n.db / 20) });
}

/// The junction has been reached: the next track is the playing one.
async function junctionReached(next) {
  queue.pos = next.pos;
  const t = queue.items[next.pos];
  try {
    const full = await json(`/api/tracks/${t.id}`);
    showTrack(full);
    const n = await normalisation(full);
    state.normGain = 10 ** (n.db / 20);
    $('#bar-norm').textContent = n.text;
  } catch { /* shown as it was */ }
  resetInspector();
  router.setPlayer({ play: t.id, t: null });
  renderQueue();
}

/// The playing track ended with nothing following it on the same worklet.
function ended(next) {
  showPlayState();
  if (next) playAt(next.pos);
}

export function step(d) {
  if (!queue.items.length) return;
  let pos = queue.pos + d;
  if (queue.repeat === 'all') pos = (pos + queue.items.length) % queue.items.length;
  if (pos >= 0 && pos < queue.items.length) playAt(pos);
}

/// The queue changed: show it, and let the engine choose again what follows
/// the playing track (it may already be streaming the old choice).
function queueChanged() {
  renderQueue();
  state.engine?.replan();
}

// The queue survives a refresh: the tracks' few fields the player needs.
const QUEUE_KEY = 'sonantica.queue';
const slim = (t) => ({
  id: t.id, title: t.title, artist: t.artist, album_id: t.album_id, duration_s: t.duration_s,
  channels: t.channels, is_separated: t.is_separated, stems: (t.stems || []).map((x) => ({ model: x.model, source: x.source })),
  analysis: t.analysis ? { integrated_lufs: t.analysis.integrated_lufs, true_peak_dbtp: t.analysis.true_peak_dbtp } : null,
});
let saveTimer;
function saveQueue() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    try {
      localStorage.setItem(QUEUE_KEY, JSON.stringify({ items: queue.items.slice(0, 2000).map(slim), pos: queue.pos }));
    } catch { /* storage full or off: the queue is just not kept */ }
  }, 300);
}

/// Restores the queue saved before a refresh if it holds track `id`.
export function restoreQueue(id) {
  try {
    const saved = JSON.parse(localStorage.getItem(QUEUE_KEY) || 'null');
    const pos = saved?.items?.findIndex((t) => t.id === id) ?? -1;
    if (pos < 0) return;
    queue.items = saved.items;
    queue.pos = saved.items[saved.pos]?.id === id ? saved.pos : pos;
  } catch { /* nothing usable */ }
}

function renderQueue() {
  const list = $('#queue');
  list.replaceChildren(...queue.items.map((t, i) => el('li', {
    data: { id: t.id }, attrs: { 'aria-current': String(i === queue.pos) },
  },
  el('button', { class: 'title', text: t.title, attrs: { 'aria-label': `Play ${t.title} from the queue` }, on: { click: () => playAt(i) } }),
  el('span', { class: 'meta', text: [t.artist, fmtTime(t.duration_s)].filter(Boolean).join(' · ') }),
  i === queue.pos
    ? el('span', { class: 'meta playing', text: 'playing' })
    : el('button', {
      class: 'remove', text: '×', attrs: { 'aria-label': `Remove ${t.title} from the queue` },
      on: {
        click: () => {
          queue.items.splice(i, 1);
          if (i < queue.pos) queue.pos -= 1;
          queueChanged();
        },
      },
    }))));
  saveQueue();
  if (!queue.items.length) list.replaceChildren(el('li', { class: 'meta', text: 'The queue is empty: play an album or add tracks.' }));
}

// ---- controls ----

const isTextField = (t) => t.matches?.('input:not([type=range]):not([type=button]), textarea, select, [contenteditable]');

export function initPlayer() {
  $('#play').addEventListener('click', togglePlay);
  // The bar's title opens the playing track's panel (far down on a phone).
  $('#bar-title').addEventListener('click', () => {
    $('#detail').scrollIntoView({ behavior: 'smooth', block: 'start' });
    $('#detail-title').focus({ preventScroll: true });
  });
  setInterval(() => { if (state.current) showPosition(); }, 250);
  // While the slider is dragged only the clock follows; the stream restarts
  // once, where it is let go.
  $('#seek').addEventListener('input', () => {
    seeking = true;
    const t = ($('#seek').value / 1000) * (player.duration || 0);
    $('#clock').textContent = `${fmtTime(t)} / ${fmtTime(player.duration)}`;
  });
  $('#seek').addEventListener('change', () => {
    seeking = false;
    if (player.duration) seek(($('#seek').value / 1000) * player.duration);
  });
  $('#overview').addEventListener('click', (e) => {
    const r = e.currentTarget.getBoundingClientRect();
    if (player.duration) seek(((e.clientX - r.left) / r.width) * player.duration);
  });
  $('#volume').addEventListener('input', () => { if (state.gain) state.gain.gain.value = $('#volume').value / 100; });
  // Prev restarts the track after its first seconds, as players do.
  $('#prev').addEventListener('click', () => (player.currentTime > 3 ? seek(0) : step(-1)));
  $('#next').addEventListener('click', () => step(1));
  $('#layout').addEventListener('change', () => {
    state.layout = $('#layout').value;
    if (state.mode === 'stems') connectWorklet(state.mixer.sources.length * 2, state.mixer.sources.length);
  });
  $('#norm-mode').addEventListener('change', () => {
    localStorage.setItem('sonantica.norm', $('#norm-mode').value);
    applyNormalisation();
  });
  $('#norm-mode').value = localStorage.getItem('sonantica.norm') || 'track';
  $('#shuffle').addEventListener('click', () => {
    queue.shuffle = !queue.shuffle;
    $('#shuffle').setAttribute('aria-pressed', String(queue.shuffle));
    if (queue.shuffle && queue.items.length) {
      shuffleRest(Math.max(queue.pos, 0));
      queue.pos = 0;
    } else if (!queue.shuffle && queue.unshuffled) {
      const id = queue.items[queue.pos]?.id;
      queue.items = queue.unshuffled;
      queue.unshuffled = null;
      queue.pos = Math.max(0, queue.items.findIndex((t) => t.id === id));
    }
    queueChanged();
  });
  $('#repeat').addEventListener('click', () => {
    const modes = ['off', 'all', 'one'];
    queue.repeat = modes[(modes.indexOf(queue.repeat) + 1) % modes.length];
    $('#repeat').textContent = `Repeat: ${queue.repeat}`;
    $('#repeat').setAttribute('aria-label', `Repeat: ${queue.repeat}`);
    $('#repeat').dataset.mode = queue.repeat;
    state.engine?.replan();
  });
  $('#clear-queue').addEventListener('click', () => {
    queue.items = queue.pos >= 0 && state.current ? [queue.items[queue.pos]].filter(Boolean) : [];
    queue.pos = queue.items.length ? 0 : -1;
    queueChanged();
  });
  renderQueue();

  // Space plays and pauses everywhere but in text fields (also with a button
  // focused: it must not press it again); arrows seek unless a slider or
  // menu has them.
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || isTextField(e.target)) return;
    const slider = e.target.matches?.('input[type=range]');
    if (e.key === ' ') { e.preventDefault(); togglePlay(); }
    else if (e.key === 'ArrowRight' && !slider) { e.preventDefault(); seek(player.currentTime + 5); }
    else if (e.key === 'ArrowLeft' && !slider) { e.preventDefault(); seek(Math.max(0, player.currentTime - 5)); }
    else if (e.key === 'n') step(1);
    else if (e.key === 'p') step(-1);
    else if (e.key === '/') { e.preventDefault(); $('#q').focus(); }
  });
  // A space on a focused button would click it on key-up.
  document.addEventListener('keyup', (e) => { if (e.key === ' ' && !isTextField(e.target)) e.preventDefault(); });
}
