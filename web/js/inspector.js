// The live Inspector: the worklet's readings (sonantica-meter in wasm) on
// meters and readouts, the goniometer and the spectrum analyser. Live figures
// are labelled as such and kept apart from the stored analysis of the file;
// a level below the meter's floor reads "−∞", and every reading starts afresh
// when the track or layout changes.

import { $, fmt, fmtLevel } from './ui.js';
import { state } from './state.js';

let clipHold = 0;
let lastClips = 0;

/// Clears every live reading (a new track, a new layout): nothing from the
/// previous stream stays on screen.
export function resetInspector() {
  for (const id of ['#m-corr', '#m-width', '#m-crest', '#m-mom', '#m-short']) {
    const m = $(`${id} meter`);
    m.value = m.min;
    $(`${id} output`).textContent = '–';
  }
  for (const id of ['#r-int', '#r-tp', '#r-lra']) $(id).textContent = '–';
  $('#r-clip').textContent = '0';
  $('#r-clip').classList.remove('on');
  clipHold = 0;
  lastClips = 0;
  state.lastReadings = null;
  state.lastSpectrum = null;
  const g = $('#goniometer').getContext('2d');
  g.fillStyle = '#0c0d0f';
  g.fillRect(0, 0, 240, 240);
  const s = $('#spectrum').getContext('2d');
  s.fillStyle = '#0c0d0f';
  s.fillRect(0, 0, 480, 240);
}

export function showReadings({ readings: r, stems, points, spectrum }) {
  const [, mom, short, int, lra, tp, , crest, corr, width, , clips] = r;
  const set = (id, v, text) => {
    const m = $(`${id} meter`);
    m.value = Number.isFinite(v) ? Math.max(m.min, Math.min(m.max, v)) : m.min;
    $(`${id} output`).textContent = text;
  };
  set('#m-corr', corr, fmt(corr, 2, ''));
  set('#m-width', width, Number.isNaN(width) ? '–' : `${Math.round(width * 100)} %`);
  set('#m-crest', crest, fmt(crest, 1, ' dB'));
  set('#m-mom', mom, fmtLevel(mom, 1, ' LUFS'));
  set('#m-short', short, fmtLevel(short, 1, ' LUFS'));
  $('#r-int').textContent = fmtLevel(int, 1, ' LUFS');
  $('#r-tp').textContent = fmtLevel(tp, 1, ' dBTP');
  // The range needs some seconds of short-term readings before it means anything.
  $('#r-lra').textContent = r[0] >= 3 ? fmt(lra, 1, ' LU') : '–';
  // The clip indicator holds for two seconds after the count last rose.
  if (clips > lastClips) clipHold = performance.now() + 2000;
  lastClips = clips;
  const clip = $('#r-clip');
  clip.textContent = String(clips);
  clip.classList.toggle('on', performance.now() < clipHold);
  if (state.mixer) {
    stems.forEach((s, k) => {
      const strip = state.mixer.strips[k];
      if (strip) strip.meter.value = Number.isFinite(s[1]) ? Math.max(-60, s[1]) : -60;
    });
  }
  state.lastReadings = r;
  drawGoniometer(points);
  if (spectrum) drawSpectrum(spectrum);
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

const FLOOR = -90; // dB at the bottom of the spectrum display

/// The spectrum from the worklet: `levels` and `peaks` in dB for `bands`
/// log-spaced bands between `lo` and `hi` Hz (sonantica_meter::Spectrum).
function drawSpectrum(s) {
  state.lastSpectrum = s;
  const c = $('#spectrum');
  const g = c.getContext('2d');
  const { width: w, height: h } = c;
  g.fillStyle = '#0c0d0f';
  g.fillRect(0, 0, w, h);
  // Grid: 100 Hz, 1 kHz and 10 kHz, and every 20 dB.
  g.strokeStyle = '#2c3036';
  g.fillStyle = '#8d8a83';
  g.font = '10px system-ui, sans-serif';
  const x = (f) => (Math.log(f / s.lo) / Math.log(s.hi / s.lo)) * w;
  const y = (db) => h - ((Math.max(db, FLOOR) - FLOOR) / -FLOOR) * h;
  g.beginPath();
  for (const f of [100, 1000, 10000]) { g.moveTo(x(f), 0); g.lineTo(x(f), h); }
  for (let db = -20; db > FLOOR; db -= 20) { g.moveTo(0, y(db)); g.lineTo(w, y(db)); }
  g.stroke();
  const bw = w / s.levels.length;
  g.fillStyle = 'rgba(216, 166, 87, 0.55)';
  s.levels.forEach((db, i) => { const top = y(db); g.fillRect(i * bw, top, Math.max(bw - 1, 1), h - top); });
  // Labels over the bars, on a dark backing, so they read while music plays.
  for (const [f, label] of [[100, '100 Hz'], [1000, '1 kHz'], [10000, '10 kHz']]) {
    const tw = g.measureText(label).width;
    g.fillStyle = 'rgba(12, 13, 15, 0.75)';
    g.fillRect(x(f) + 1, 1, tw + 4, 12);
    g.fillStyle = '#8d8a83';
    g.fillText(label, x(f) + 3, 11);
  }
  g.fillStyle = '#d9d6cf';
  s.peaks.forEach((db, i) => g.fillRect(i * bw, y(db), Math.max(bw - 1, 1), 1.5));
}
