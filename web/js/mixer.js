// The stem mixer: one sonantica_mix::MixSettings (preset, each stem's gain,
// mute, solo, layout) that the screen shows, the worklet plays and Save mix
// renders; the channel check renders it offline to any layout.

import { $, el, toast } from './ui.js';
import { api } from './api.js';
import { state } from './state.js';

export const SOURCES4 = ['drums', 'bass', 'other', 'vocals'];
export const SOURCES6 = ['drums', 'bass', 'other', 'vocals', 'guitar', 'piano'];
// Index = sonantica_mix::PRESETS order.
const PRESETS = [
  ['original', 'Original'], ['karaoke', 'Karaoke'], ['acappella', 'A cappella'],
  ['musician', 'Musician'], ['bass-practice', 'Bass practice'], ['drum-practice', 'Drum practice'],
];
// Output layouts in menu order, each with its channels in WAVE order (ffmpeg's
// labels), as sonantica-mix writes them.
export const SPEAKERS = {
  stereo: ['FL', 'FR'], mono: ['FC'], '2.1': ['FL', 'FR', 'LFE'],
  '5.1': ['FL', 'FR', 'FC', 'LFE', 'BL', 'BR'], '7.1': ['FL', 'FR', 'FC', 'LFE', 'BL', 'BR', 'SL', 'SR'],
};
export const LAYOUTS = Object.keys(SPEAKERS);
export const layoutChannels = (name) => SPEAKERS[name].length;

const FADER_MIN = -30; // the fader's bottom is off (−∞ dB)
const dbText = (db) => (db === null ? '−∞ dB' : `${db.toFixed(1)} dB`);

/// The mix as sonantica_mix::MixSettings for `layout`: the one description that
/// the worklet applies and Save mix posts (gains are what each stem plays at,
/// null for off).
export function mixSettings(m, layout) {
  const { preset, gains, mute, solo } = m.mix;
  return { preset, gains: { ...gains }, mute: [...mute], solo: [...solo], layout };
}

/// The mix for the address bar (`mix=`): compact JSON, URL-safe base64.
export function encodeMix(m) {
  const json = JSON.stringify({ p: m.mix.preset, g: m.mix.gains, m: m.mix.mute, s: m.mix.solo });
  return btoa(json).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function decodeMix(text, sources) {
  try {
    const d = JSON.parse(atob(text.replace(/-/g, '+').replace(/_/g, '/')));
    const known = (list) => (Array.isArray(list) ? list.filter((s) => sources.includes(s)) : []);
    const gains = {};
    for (const s of sources) {
      const v = d.g?.[s];
      gains[s] = v === null ? null : Number.isFinite(v) ? Math.max(FADER_MIN, Math.min(12, v)) : 0;
    }
    const preset = PRESETS.some(([id]) => id === d.p) ? d.p : 'original';
    return { preset, gains, mute: known(d.m), solo: known(d.s) };
  } catch {
    return null; // a damaged link: start from the preset
  }
}

/// The mixer of a track without stems: Separate and the presets start a
/// separation from where the listener is (`onPick` with the preset's id, or
/// null), whose stems take over as soon as they are ready.
export function offerStems(onPick) {
  $('#mixer').hidden = false;
  $('#mixer-body').hidden = true;
  $('#presets').replaceChildren(
    el('button', { class: 'separate-here', text: 'Separate', attrs: { title: 'Separate this track into stems, starting where you are listening' }, on: { click: () => onPick(null) } }),
    ...PRESETS.filter(([id]) => id !== 'original').map(([id, label]) => el('button', {
      text: label, data: { preset: id }, attrs: { title: `Separate this track and play it as ${label}` }, on: { click: () => onPick(id) },
    })));
  $('#strips').replaceChildren();
  stemStatus('Not separated yet: press Separate or a preset, and the stems play within seconds, from where you are.');
}

/// The line under the presets (what a separation started here is doing).
export function stemStatus(text) {
  $('#stem-status').textContent = text;
}

/// Builds the mixer for `sources` of `model`; `saved` is a `mix=` value to
/// restore, `preset` a preset's id to start from instead. `onChange` is called
/// with the mixer after every change.
export function buildMixer(sources, model, saved, onChange, preset = null) {
  $('#mixer').hidden = false;
  $('#mixer-body').hidden = false;
  const m = { sources, model, mix: null, strips: [], presetButtons: [] };
  const send = () => {
    state.node?.port.postMessage({ type: 'settings', settings: mixSettings(m, state.layout) });
    onChange?.(m);
  };
  m.pristine = () => {
    const { gains, mute, solo } = m.mix;
    return m.presetGains && sources.every((s) => m.presetGains[s] === gains[s]) && !mute.length && !solo.length;
  };
  /// The mix's name for files and messages: the preset, or "custom" once changed.
  m.name = () => (m.pristine() ? m.mix.preset : `custom (from ${m.mix.preset})`);
  const show = () => {
    const { preset, gains, mute, solo } = m.mix;
    // A preset button is lit while the faders are still what it set.
    const pristine = m.pristine();
    m.presetButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.preset === preset && pristine)));
    m.strips.forEach((s, k) => {
      const db = gains[sources[k]];
      s.fader.value = db === null ? FADER_MIN : db;
      s.value.textContent = dbText(db);
      s.fader.setAttribute('aria-valuetext', db === null ? 'off' : s.value.textContent);
      s.solo.setAttribute('aria-pressed', String(solo.includes(sources[k])));
      s.mute.setAttribute('aria-pressed', String(mute.includes(sources[k])));
    });
  };
  const presetGains = (i) => {
    const gains = {};
    sources.forEach((name, k) => {
      const db = state.wasm.exports.son_preset_gain_db(i, sources.length, k);
      gains[name] = Number.isFinite(db) ? db : null;
    });
    return gains;
  };
  // A preset starts the mix afresh: its gains on the faders, no mute or solo.
  const fromPreset = (i) => {
    m.presetGains = presetGains(i);
    m.mix = { preset: PRESETS[i][0], gains: { ...m.presetGains }, mute: [], solo: [] };
  };
  m.presetButtons = PRESETS.map(([id, label], i) => el('button', {
    text: label, data: { preset: id }, on: { click: () => { fromPreset(i); show(); send(); } },
  }));
  $('#presets').replaceChildren(...m.presetButtons);
  m.strips = sources.map((name) => {
    const div = el('div', { class: 'strip' });
    div.innerHTML = `<span class="name"></span><meter min="-60" max="0" aria-label="${name} level"></meter>
      <input type="range" min="${FADER_MIN}" max="12" step="0.5" value="0" aria-label="${name} gain in dB" aria-valuetext="0.0 dB">
      <output>0.0 dB</output><span><button class="solo" aria-pressed="false" aria-label="Solo ${name}">S</button>
      <button class="mute" aria-pressed="false" aria-label="Mute ${name}">M</button></span>`;
    div.querySelector('.name').textContent = name;
    const strip = {
      div, fader: div.querySelector('input'), value: div.querySelector('output'), meter: div.querySelector('meter'),
      solo: div.querySelector('.solo'), mute: div.querySelector('.mute'),
    };
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
  $('#save-status span').textContent = '';
  fromPreset(Math.max(0, PRESETS.findIndex(([id]) => id === preset)));
  const restored = saved && decodeMix(saved, sources);
  if (restored) {
    const i = PRESETS.findIndex(([id]) => id === restored.preset);
    m.presetGains = presetGains(i);
    m.mix = restored;
  }
  show();
  return m;
}

export function hideMixer() {
  $('#mixer').hidden = true;
}

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

/// Channel check: renders ten seconds of the mix from the playing position to
/// the export layout offline and shows each output channel's level, so a
/// listener with a stereo sound card sees where the stems land in 5.1 or 7.1.
async function channelCheck() {
  const t = state.current;
  const m = state.mixer;
  if (!t || !m) return;
  const layout = $('#export-layout').value;
  const seconds = 10;
  const from = Math.max(0, Math.min(state.player?.currentTime || 0, (t.duration_s || seconds) - seconds));
  const out = $('#channels');
  out.dataset.ready = 'false';
  const say = (text) => out.replaceChildren(el('p', { class: 'meta', text }));
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
  const div = el('div', { class: 'meter', data: { channel: name } });
  div.innerHTML = '<span></span><meter min="-60" max="0"></meter><output></output>';
  div.querySelector('span').textContent = name;
  const meter = div.querySelector('meter');
  meter.value = Math.max(rms, -60);
  meter.setAttribute('aria-label', `${name} level`);
  const text = (x) => (Number.isFinite(x) ? x.toFixed(1) : '−∞');
  div.querySelector('output').textContent = `${text(rms)} dB RMS · peak ${text(db(peak))}`;
  return div;
}

/// Save mix: the station renders the mix on screen; the page shows that it is
/// working and says what went wrong if it fails.
async function saveMix() {
  const t = state.current;
  const m = state.mixer;
  if (!t || !m) return;
  const [format, depth] = $('#export-format').value.split('/');
  const layout = $('#export-layout').value;
  const body = { ...mixSettings(m, layout), model: m.model, format, bit_depth: depth };
  const status = $('#save-status span');
  const bar = $('#save-progress');
  const button = $('#save-mix');
  button.disabled = true;
  bar.hidden = false;
  bar.removeAttribute('value'); // indeterminate: the station renders the whole track
  status.textContent = `Rendering the ${m.name()} mix (${layout}, ${format})…`;
  try {
    const res = await api(`/api/tracks/${t.id}/mix`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(await res.blob());
    a.download = `${t.title} (${m.pristine() ? m.mix.preset : 'custom mix'}, ${layout}).${format}`;
    a.click();
    URL.revokeObjectURL(a.href);
    status.textContent = `Saved ${a.download}`;
  } catch (e) {
    status.textContent = `Save mix failed: ${e.message}`;
    toast(`Save mix failed: ${e.message}`);
  } finally {
    button.disabled = false;
    bar.hidden = true;
  }
}

export function initMixer() {
  $('#check').addEventListener('click', channelCheck);
  $('#save-mix').addEventListener('click', saveMix);
}
