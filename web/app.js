// The Studio: library, player, live Inspector and stem mixer. Plain ES module, no
// build step. Audio runs through one AudioWorklet (worklet.js) with the wasm
// build of sonantica-meter and sonantica-mix.

const $ = (s) => document.querySelector(s);
const SOURCES4 = ['drums', 'bass', 'other', 'vocals'];
const SOURCES6 = ['drums', 'bass', 'other', 'vocals', 'guitar', 'piano'];
// Index = sonantica_mix::PRESETS order.
const PRESETS = [
  ['original', 'Original'], ['karaoke', 'Karaoke'], ['acappella', 'A cappella'],
  ['musician', 'Musician'], ['bass-practice', 'Bass practice'], ['drum-practice', 'Drum practice'],
];
// Output layouts in menu order, each with its channels in WAVE order (ffmpeg's
// labels), as sonantica-mix writes them.
const SPEAKERS = {
  stereo: ['FL', 'FR'], mono: ['FC'], '2.1': ['FL', 'FR', 'LFE'],
  '5.1': ['FL', 'FR', 'FC', 'LFE', 'BL', 'BR'], '7.1': ['FL', 'FR', 'FC', 'LFE', 'BL', 'BR', 'SL', 'SR'],
};
const LAYOUTS = Object.keys(SPEAKERS);
const layoutChannels = (name) => SPEAKERS[name].length;

const state = {
  tracks: [], current: null, ctx: null, module: null, node: null, source: null,
  gain: null, mode: 'track', layout: 'stereo', mixer: null, clipHold: 0, trail: [],
};
window.studio = state; // for the browser tests

/// The worklet's next `frames` frames of input and output (quanta of planar
/// channels), for the browser tests.
state.capture = (frames) => new Promise((resolve) => {
  state.onCapture = (d) => { state.onCapture = null; resolve(d); };
  state.node.port.postMessage({ type: 'capture', frames });
});

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: 'same-origin', ...options });
  if (res.status === 401) {
    showLogin();
    throw new Error('unauthorized');
  }
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  return res;
}

function showLogin() {
  $('#studio').hidden = true;
  $('#login').hidden = false;
  $('#token').focus();
}

$('#login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const res = await fetch('/api/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: $('#token').value.trim() }),
  });
  if (res.ok) {
    $('#login').hidden = true;
    start();
  } else {
    $('#login-error').textContent = 'That token is not right.';
  }
});

const fmtTime = (s) => (Number.isFinite(s) ? `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}` : '–');
const fmt = (v, digits, unit) => (v == null || Number.isNaN(v) ? '–' : `${v.toFixed(digits)}${unit}`);

async function loadTracks() {
  const q = encodeURIComponent($('#q').value);
  const page = await (await api(`/api/tracks?limit=500&q=${q}`)).json();
  state.tracks = page.items;
  $('#count').textContent = `(${page.total})`;
  const list = $('#tracks');
  list.replaceChildren(...page.items.map(trackRow));
}

function trackRow(t) {
  const li = document.createElement('li');
  li.dataset.id = t.id;
  li.setAttribute('aria-current', String(state.current?.id === t.id));
  const a = t.analysis || {};
  // The title is the row's button (a keyboard and screen reader reach it); a
  // click anywhere on the row does the same.
  li.innerHTML = `<button class="title" type="button"></button><span class="actions"></span>
    <span class="meta"></span><span class="badge"></span>`;
  li.querySelector('.title').textContent = t.title;
  li.querySelector('.meta').textContent = [t.artist, fmtTime(t.duration_s),
    a.integrated_lufs != null ? `${a.integrated_lufs.toFixed(1)} LUFS` : null,
    a.dr != null ? `DR ${a.dr}` : null].filter(Boolean).join(' · ');
  li.querySelector('.badge').textContent = t.is_separated ? 'separated' : '';
  const actions = li.querySelector('.actions');
  if (!t.is_separated) {
    const b = document.createElement('button');
    b.textContent = 'Separate';
    b.setAttribute('aria-label', `Separate ${t.title} into stems`);
    b.addEventListener('click', (e) => { e.stopPropagation(); separate(t, actions); });
    actions.append(b);
  }
  li.addEventListener('click', () => select(t.id));
  return li;
}

async function separate(track, slot) {
  let job;
  try {
    job = await (await api(`/api/tracks/${track.id}/separate`, { method: 'POST' })).json();
  } catch (e) {
    // E.g. the model is not installed: say so where the button was.
    const msg = document.createElement('span');
    msg.className = 'meta';
    msg.setAttribute('role', 'alert');
    msg.textContent = e.message;
    slot.replaceChildren(msg);
    return;
  }
  const bar = document.createElement('progress');
  bar.max = 1;
  bar.setAttribute('aria-label', `Separating ${track.title}`);
  const eta = document.createElement('span');
  eta.className = 'meta';
  slot.replaceChildren(bar, eta);
  const events = new EventSource(job.events_url);
  events.addEventListener('job', async (e) => {
    const j = JSON.parse(e.data);
    bar.value = j.progress;
    eta.textContent = j.status === 'running' && j.eta_s != null ? ` ${Math.ceil(j.eta_s)} s left` : ` ${j.status}`;
    if (['done', 'failed', 'cancelled'].includes(j.status)) {
      events.close();
      if (j.status === 'failed') eta.textContent = ` failed: ${j.error}`;
      await loadTracks();
      if (state.current?.id === track.id) select(track.id, { keepPlaying: true });
    }
  });
}

async function upload(files) {
  for (const f of files) {
    const body = new FormData();
    body.append('file', f, f.name);
    try { await api('/api/tracks', { method: 'POST', body }); } catch (e) { alert(`${f.name}: ${e.message}`); }
  }
  await loadTracks();
}

$('#upload').addEventListener('change', (e) => upload(e.target.files));
$('#upload-button').addEventListener('click', () => $('#upload').click());
document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  upload(e.dataTransfer.files);
});
$('#search').addEventListener('submit', (e) => { e.preventDefault(); loadTracks(); });
$('#q').addEventListener('input', () => { clearTimeout(state.searchTimer); state.searchTimer = setTimeout(loadTracks, 250); });

function showAnalysis(t) {
  const a = t.analysis || {};
  const rows = [
    ['Integrated', fmt(a.integrated_lufs, 1, ' LUFS')], ['LRA', fmt(a.loudness_range_lu, 1, ' LU')],
    ['True peak', fmt(a.true_peak_dbtp, 1, ' dBTP')], ['DR', a.dr ?? '–'],
    ['Crest', fmt(a.crest_factor_db, 1, ' dB')], ['Correlation', fmt(a.correlation, 2, '')],
    ['Width', a.width == null ? '–' : `${Math.round(a.width * 100)} %`], ['Clipping', a.clip_events ?? '–'],
  ];
  $('#analysis').replaceChildren(...rows.map(([k, v]) => {
    const d = document.createElement('div');
    d.innerHTML = '<dt></dt><dd></dd>';
    d.querySelector('dt').textContent = k;
    d.querySelector('dd').textContent = v;
    return d;
  }));
}

async function ensureAudio() {
  if (state.ctx) return;
  state.ctx = new AudioContext({ latencyHint: 'playback' });
  await state.ctx.audioWorklet.addModule('/worklet.js');
  state.module = await WebAssembly.compileStreaming(fetch('/sonantica.wasm'));
  state.wasm = await WebAssembly.instantiate(state.module, {});
  state.source = state.ctx.createMediaElementSource($('#audio'));
  state.gain = state.ctx.createGain();
  state.gain.connect(state.ctx.destination);
  state.gain.gain.value = $('#volume').value / 100;
  const max = state.ctx.destination.maxChannelCount;
  const options = (list) => list.map((name) => {
    const o = document.createElement('option');
    o.value = name; o.textContent = `${name} (${layoutChannels(name)} ch)`;
    return o;
  });
  // Live output: what the sound card can take. Export and channel check: any.
  $('#layout').replaceChildren(...options(LAYOUTS.filter((name) => layoutChannels(name) <= Math.max(max, 2))));
  $('#export-layout').replaceChildren(...options(LAYOUTS));
}

/// (Re)builds the worklet for the current mode and layout.
function connectWorklet(inputChannels, stems) {
  const { ctx } = state;
  if (state.node) {
    // The old node stops for good, and nothing it still posts reaches the page.
    state.node.port.onmessage = null;
    state.node.port.postMessage({ type: 'stop' });
    state.source.disconnect();
    state.node.disconnect();
  }
  const channels = state.mode === 'stems' ? layoutChannels(state.layout) : 2;
  ctx.destination.channelCount = Math.min(channels, ctx.destination.maxChannelCount);
  ctx.destination.channelInterpretation = channels > 2 ? 'discrete' : 'speakers';
  state.node = new AudioWorkletNode(ctx, 'sonantica', {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [channels],
    channelCount: inputChannels, channelCountMode: 'explicit', channelInterpretation: 'discrete',
    processorOptions: {
      module: state.module, mode: state.mode, channels, stems,
      settings: state.mixer ? mixSettings(state.mixer, state.layout) : null,
    },
  });
  state.node.port.onmessage = (e) => {
    if (e.data.type === 'readings') showReadings(e.data);
    else if (e.data.type === 'capture') state.onCapture?.(e.data);
    else if (e.data.type === 'applied') state.applied = e.data.status; // 0: the engine took the mix
  };
  state.source.connect(state.node).connect(state.gain);
}

/// The mix as sonantica_mix::MixSettings for `layout`: the one description that
/// the worklet applies and Save mix posts (gains are what each stem plays at,
/// null for off).
function mixSettings(m, layout) {
  const { preset, gains, mute, solo } = m.mix;
  return { preset, gains: { ...gains }, mute: [...mute], solo: [...solo], layout };
}

/// Renders `input` (an AudioBuffer with each stem's left and right, in source
/// order) to `layout` through the same worklet and wasm Stem Engine as live
/// playback, in an OfflineAudioContext: any layout, whatever the sound card has.
/// Output sample i comes from input sample i.
state.renderStems = async (input, layout, settings) => {
  const channels = layoutChannels(layout);
  const stems = input.numberOfChannels / 2;
  const ctx = new OfflineAudioContext({ numberOfChannels: channels, length: input.length, sampleRate: input.sampleRate });
  await ctx.audioWorklet.addModule('/worklet.js');
  state.module ??= await WebAssembly.compileStreaming(fetch('/sonantica.wasm'));
  const node = new AudioWorkletNode(ctx, 'sonantica', {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [channels],
    channelCount: 2 * stems, channelCountMode: 'explicit', channelInterpretation: 'discrete',
    processorOptions: { module: state.module, mode: 'stems', channels, stems, settings: { ...settings, layout } },
  });
  ctx.destination.channelInterpretation = 'discrete';
  const source = new AudioBufferSourceNode(ctx, { buffer: input });
  source.connect(node).connect(ctx.destination);
  source.start(0);
  return ctx.startRendering();
};

/// The sample rate in a WAV file's `fmt ` chunk.
function wavRate(bytes) {
  const v = new DataView(bytes);
  for (let at = 12; at + 8 <= v.byteLength; at += 8 + v.getUint32(at + 4, true) + (v.getUint32(at + 4, true) % 2)) {
    if (String.fromCharCode(v.getUint8(at), v.getUint8(at + 1), v.getUint8(at + 2), v.getUint8(at + 3)) === 'fmt ') {
      return v.getUint32(at + 12, true);
    }
  }
  throw new Error('the server sent a WAV without a fmt chunk');
}

/// Channel check: renders ten seconds of the mix from the playing position to
/// the export layout offline and shows each output channel's level, so a
/// listener with a stereo sound card sees where the stems land in 5.1 or 7.1.
async function channelCheck() {
  const t = state.current;
  const m = state.mixer;
  const layout = $('#export-layout').value;
  const seconds = 10;
  const from = Math.max(0, Math.min($('#audio').currentTime || 0, (t.duration_s || seconds) - seconds));
  const out = $('#channels');
  out.dataset.ready = 'false';
  const say = (text) => out.replaceChildren(Object.assign(document.createElement('p'), { className: 'meta', textContent: text }));
  say(`Rendering ${layout}…`);
  try {
    const res = await api(`/api/tracks/${t.id}/multistem?model=${encodeURIComponent(m.model)}&start_s=${from.toFixed(3)}&duration_s=${seconds}`);
    const bytes = await res.arrayBuffer();
    const rate = wavRate(bytes);
    const input = await new OfflineAudioContext(1, 1, rate).decodeAudioData(bytes);
    const output = await state.renderStems(input, layout, mixSettings(m, layout));
    state.lastCheck = { layout, from, input, output };
    out.replaceChildren(...SPEAKERS[layout].map((name, c) => channelRow(name, output.getChannelData(c))));
  } catch (e) {
    say(`Channel check failed: ${e.message}`);
  }
  out.dataset.ready = 'true';
}

function channelRow(name, data) {
  let sum = 0;
  let peak = 0;
  for (const v of data) { sum += v * v; peak = Math.max(peak, Math.abs(v)); }
  const db = (x) => (x > 0 ? 20 * Math.log10(x) : -Infinity);
  const rms = db(Math.sqrt(sum / Math.max(data.length, 1)));
  const div = document.createElement('div');
  div.className = 'meter';
  div.dataset.channel = name;
  div.innerHTML = '<span></span><meter min="-60" max="0"></meter><output></output>';
  div.querySelector('span').textContent = name;
  const meter = div.querySelector('meter');
  meter.value = Math.max(rms, -60);
  meter.setAttribute('aria-label', `${name} level`);
  const text = (x) => (Number.isFinite(x) ? x.toFixed(1) : '−∞');
  div.querySelector('output').textContent = `${text(rms)} dB RMS · peak ${text(db(peak))}`;
  return div;
}

async function select(id, { keepPlaying = false } = {}) {
  await ensureAudio();
  const t = await (await api(`/api/tracks/${id}`)).json();
  const audio = $('#audio');
  const wasPlaying = keepPlaying && !audio.paused;
  const at = audio.currentTime;
  state.current = t;
  document.querySelectorAll('#tracks li').forEach((li) => li.setAttribute('aria-current', String(li.dataset.id == id)));
  $('#detail-title').textContent = t.title;
  $('#detail-meta').textContent = [t.artist, t.album, `${t.codec} · ${t.sample_rate / 1000} kHz · ${t.layout}`].filter(Boolean).join(' · ');
  showAnalysis(t);
  const stems = t.is_separated ? t.stems.filter((s) => s.model === t.stems[0].model) : [];
  state.mode = stems.length ? 'stems' : 'track';
  if (stems.length) {
    const model = stems[0].model;
    audio.src = `/api/tracks/${t.id}/multistem?model=${encodeURIComponent(model)}`;
    $('#zip').href = `/api/tracks/${t.id}/stems.zip?model=${encodeURIComponent(model)}`;
    state.mixer = buildMixer(stems.length === 6 ? SOURCES6 : SOURCES4, model);
    connectWorklet(stems.length * 2, stems.length);
  } else {
    audio.src = t.audio_url;
    state.mixer = null;
    $('#mixer').hidden = true;
    connectWorklet(Math.min(Math.max(t.channels, 1), 8), 0);
  }
  state.node.port.postMessage({ type: 'reset' });
  state.clipHold = 0;
  if (keepPlaying) audio.currentTime = at;
  if (wasPlaying || !keepPlaying) await play();
}

const FADER_MIN = -30; // the fader's bottom is off (−∞ dB)
const dbText = (db) => (db === null ? '−∞ dB' : `${db.toFixed(1)} dB`);

function buildMixer(sources, model) {
  $('#mixer').hidden = false;
  // The mix: a preset as the starting point, then what each stem really plays
  // at. The screen shows exactly this, and it is what the worklet plays and
  // Save mix renders.
  const m = { sources, model, mix: null, strips: [], presetButtons: [] };
  const send = () => state.node?.port.postMessage({ type: 'settings', settings: mixSettings(m, state.layout) });
  const show = () => {
    const { preset, gains, mute, solo } = m.mix;
    m.presetButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.preset === preset)));
    m.strips.forEach((s, k) => {
      const db = gains[sources[k]];
      s.fader.value = db === null ? FADER_MIN : db;
      s.value.textContent = dbText(db);
      s.fader.setAttribute('aria-valuetext', db === null ? 'off' : s.value.textContent);
      s.solo.setAttribute('aria-pressed', String(solo.includes(sources[k])));
      s.mute.setAttribute('aria-pressed', String(mute.includes(sources[k])));
    });
  };
  // A preset starts the mix afresh: its gains on the faders, no mute or solo.
  const fromPreset = (i) => {
    const gains = {};
    sources.forEach((name, k) => {
      const db = presetGain(i, sources, k);
      gains[name] = Number.isFinite(db) ? db : null;
    });
    m.mix = { preset: PRESETS[i][0], gains, mute: [], solo: [] };
  };
  m.presetButtons = PRESETS.map(([id, label], i) => {
    const b = document.createElement('button');
    b.textContent = label;
    b.dataset.preset = id;
    b.addEventListener('click', () => { fromPreset(i); show(); send(); });
    return b;
  });
  $('#presets').replaceChildren(...m.presetButtons);
  m.strips = sources.map((name) => {
    const div = document.createElement('div');
    div.className = 'strip';
    div.innerHTML = `<span class="name"></span><meter min="-60" max="0" aria-label="${name} level"></meter>
      <input type="range" min="${FADER_MIN}" max="12" step="0.5" value="0" aria-label="${name} gain in dB" aria-valuetext="0.0 dB">
      <output>0.0 dB</output><span><button class="solo" aria-pressed="false" aria-label="Solo ${name}">S</button>
      <button class="mute" aria-pressed="false" aria-label="Mute ${name}">M</button></span>`;
    div.querySelector('.name').textContent = name;
    const strip = { div, fader: div.querySelector('input'), value: div.querySelector('output'), meter: div.querySelector('meter'),
      solo: div.querySelector('.solo'), mute: div.querySelector('.mute') };
    strip.fader.addEventListener('input', () => {
      const v = Number(strip.fader.value);
      m.mix.gains[name] = v <= FADER_MIN ? null : v;
      show(); send();
    });
    for (const key of ['solo', 'mute']) {
      strip[key].addEventListener('click', () => {
        const list = m.mix[key];
        m.mix[key] = list.includes(name) ? list.filter((s) => s !== name) : [...list, name];
        show(); send();
      });
    }
    return strip;
  });
  $('#strips').replaceChildren(...m.strips.map((s) => s.div));
  $('#channels').replaceChildren();
  $('#save-status').textContent = '';
  fromPreset(0);
  show();
  return m;
}

// The dB preset `index` of sonantica_mix::PRESETS gives stem `k` (−∞ for off),
// from the wasm module: the presets are defined once, in Rust.
function presetGain(index, sources, k) {
  return state.wasm.exports.son_preset_gain_db(index, sources.length, k);
}

$('#layout').addEventListener('change', () => {
  state.layout = $('#layout').value;
  if (state.mode === 'stems') connectWorklet(state.mixer.sources.length * 2, state.mixer.sources.length);
});

$('#check').addEventListener('click', channelCheck);
$('#save-mix').addEventListener('click', async () => {
  const t = state.current;
  const m = state.mixer;
  if (!t || !m) return;
  const [format, depth] = $('#export-format').value.split('/');
  const layout = $('#export-layout').value;
  const body = { ...mixSettings(m, layout), model: m.model, format, bit_depth: depth };
  const status = $('#save-status');
  const button = $('#save-mix');
  button.disabled = true;
  status.textContent = `Rendering ${m.mix.preset} mix (${layout}, ${format})…`;
  try {
    const res = await api(`/api/tracks/${t.id}/mix`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    if (!res.ok) {
      const err = await res.json().catch(() => ({}));
      throw new Error(err.detail || `the station answered ${res.status}`);
    }
    const a = document.createElement('a');
    a.href = URL.createObjectURL(await res.blob());
    a.download = `${t.title} (${m.mix.preset}, ${layout}).${format}`;
    a.click();
    URL.revokeObjectURL(a.href);
    status.textContent = `Saved ${a.download}`;
  } catch (e) {
    status.textContent = `Save mix failed: ${e.message}`;
  } finally {
    button.disabled = false;
  }
});

function showReadings({ readings: r, stems, points }) {
  const [, mom, short, int, lra, tp, , crest, corr, width, , clips] = r;
  const set = (id, v, text) => {
    const el = $(id);
    el.querySelector('meter').value = Number.isNaN(v) ? el.querySelector('meter').min : v;
    el.querySelector('output').textContent = text;
  };
  set('#m-corr', corr, fmt(corr, 2, ''));
  set('#m-width', width, Number.isNaN(width) ? '–' : `${Math.round(width * 100)} %`);
  set('#m-crest', crest, fmt(crest, 1, ' dB'));
  set('#m-mom', mom, fmt(mom, 1, ' LUFS'));
  set('#m-short', short, fmt(short, 1, ' LUFS'));
  $('#r-int').textContent = fmt(int, 1, ' LUFS');
  $('#r-tp').textContent = fmt(tp, 1, ' dBTP');
  $('#r-lra').textContent = fmt(lra, 1, ' LU');
  // The clip indicator holds for two seconds after the count last rose.
  if (clips > (state.lastClips ?? 0)) state.clipHold = performance.now() + 2000;
  state.lastClips = clips;
  const clip = $('#r-clip');
  clip.textContent = String(clips);
  clip.classList.toggle('on', performance.now() < state.clipHold);
  if (state.mixer) stems.forEach((s, k) => { state.mixer.strips[k].meter.value = Number.isNaN(s[1]) ? -60 : s[1]; });
  state.lastReadings = r;
  drawGoniometer(points);
}

function drawGoniometer(points) {
  const c = $('#goniometer');
  const g = c.getContext('2d');
  const w = c.width;
  // Phosphor: the old trace fades instead of disappearing.
  g.fillStyle = 'rgba(12, 13, 15, 0.25)';
  g.fillRect(0, 0, w, w);
  g.strokeStyle = '#2c3036';
  g.beginPath(); g.moveTo(w / 2, 0); g.lineTo(w / 2, w); g.moveTo(0, w / 2); g.lineTo(w, w / 2); g.stroke();
  g.fillStyle = 'rgba(216, 166, 87, 0.7)';
  for (let i = 0; i < points.length; i += 2) {
    // x = side (L-R), y = mid (L+R): a mono signal is a vertical line.
    const px = w / 2 + points[i] * (w / 2) * 0.9;
    const py = w / 2 - points[i + 1] * (w / 2) * 0.9;
    g.fillRect(px, py, 1.5, 1.5);
  }
}

async function play() {
  await state.ctx.resume();
  await $('#audio').play();
}

const audio = $('#audio');
$('#play').addEventListener('click', () => (audio.paused ? play() : audio.pause()));
audio.addEventListener('play', () => { $('#play').textContent = 'Pause'; $('#play').setAttribute('aria-label', 'Pause (Space)'); });
audio.addEventListener('pause', () => { $('#play').textContent = 'Play'; $('#play').setAttribute('aria-label', 'Play (Space)'); });
audio.addEventListener('timeupdate', () => {
  $('#clock').textContent = `${fmtTime(audio.currentTime)} / ${fmtTime(audio.duration)}`;
  if (audio.duration) $('#seek').value = Math.round((audio.currentTime / audio.duration) * 1000);
  $('#seek').setAttribute('aria-valuetext', `${fmtTime(audio.currentTime)} of ${fmtTime(audio.duration)}`);
});
audio.addEventListener('ended', () => step(1));
$('#seek').addEventListener('input', () => {
  if (audio.duration) audio.currentTime = ($('#seek').value / 1000) * audio.duration;
});
$('#volume').addEventListener('input', () => { if (state.gain) state.gain.gain.value = $('#volume').value / 100; });
$('#prev').addEventListener('click', () => step(-1));
$('#next').addEventListener('click', () => step(1));

function step(d) {
  const i = state.tracks.findIndex((t) => t.id === state.current?.id);
  const next = state.tracks[i + d];
  if (next) select(next.id);
}

document.addEventListener('keydown', (e) => {
  if (e.target.matches('input[type=search], input[type=password], input[type=text]')) return;
  if (e.key === ' ' && !e.target.matches('button')) { e.preventDefault(); $('#play').click(); }
  else if (e.key === 'ArrowRight' && e.target === document.body) audio.currentTime += 5;
  else if (e.key === 'ArrowLeft' && e.target === document.body) audio.currentTime -= 5;
  else if (e.key === 'n') step(1);
  else if (e.key === 'p') step(-1);
  else if (e.key === '/') { e.preventDefault(); $('#q').focus(); }
});

async function start() {
  try {
    await loadTracks();
    $('#studio').hidden = false;
  } catch (e) {
    if (e.message !== 'unauthorized') throw e;
  }
}

start();
