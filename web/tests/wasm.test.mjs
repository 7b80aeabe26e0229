// The wasm build of sonantica-meter and sonantica-mix (crates/wasm), loaded the
// way the Studio's AudioWorklet loads it, checked against signals with known
// answers. Run by scripts/test after building the module:
//   cargo build -p sonantica-wasm --target wasm32-unknown-unknown --profile wasm
//   node --test web/tests/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

const WASM = new URL('../../target/wasm32-unknown-unknown/wasm/sonantica_wasm.wasm', import.meta.url);
const { instance } = await WebAssembly.instantiate(await readFile(WASM), {});
const x = instance.exports;
const RATE = 48000;
const Q = 128; // one Web Audio render quantum
const f32 = (ptr, n) => new Float32Array(x.memory.buffer, ptr, n);

function meterRun(channels, seconds, gen) {
  const m = x.son_meter_new(RATE, channels);
  assert.notEqual(m, 0);
  const total = Math.round(seconds * RATE);
  for (let start = 0; start < total; start += Q) {
    for (let c = 0; c < channels; c++) {
      const buf = f32(x.son_meter_input(m, c), Q);
      for (let i = 0; i < Q; i++) buf[i] = gen(c, start + i);
    }
    assert.equal(x.son_meter_process(m, Q), 0);
  }
  const r = new Float64Array(x.memory.buffer, x.son_meter_readings(m), 12);
  const out = {
    time: r[0], momentary: r[1], shortTerm: r[2], integrated: r[3], lra: r[4],
    truePeak: r[5], samplePeak: r[6], crest: r[7], correlation: r[8], width: r[9],
    balance: r[10], clipEvents: r[11],
  };
  const points = x.son_meter_goniometer(m, 256);
  out.points = Array.from(f32(x.son_meter_points(m), 2 * points));
  x.son_meter_free(m);
  return out;
}

const sine = (f, amp) => (c, i) => amp * Math.sin((2 * Math.PI * f * i) / RATE);

test('EBU Tech 3341 case 1: a stereo 1 kHz sine at -23 dBFS reads -23.0 LUFS', () => {
  const r = meterRun(2, 20, sine(1000, 10 ** (-23 / 20)));
  for (const v of [r.momentary, r.shortTerm, r.integrated]) {
    assert.ok(Math.abs(v - -23.0) <= 0.1, `${v} LUFS`);
  }
  assert.ok(Math.abs(r.time - 20) < 0.01);
});

test('identical channels correlate at +1, inverted ones at -1; peaks and crest are exact', () => {
  const same = meterRun(2, 1, sine(440, 0.5));
  assert.ok(same.correlation > 0.999, `${same.correlation}`);
  assert.ok(same.width < 0.001, `width ${same.width}`);
  assert.ok(Math.abs(same.samplePeak - 20 * Math.log10(0.5)) < 0.01, `${same.samplePeak}`);
  assert.ok(Math.abs(same.crest - 3.01) < 0.05, `crest ${same.crest}`);
  const inverted = meterRun(2, 1, (c, i) => (c ? -1 : 1) * sine(440, 0.5)(c, i));
  assert.ok(inverted.correlation < -0.999, `${inverted.correlation}`);
  // Goniometer points of a mono signal lie on the vertical axis (x = (L-R)/√2 = 0).
  assert.ok(same.points.length > 0);
  for (let i = 0; i < same.points.length; i += 2) assert.ok(Math.abs(same.points[i]) < 1e-6);
});

test('silence has no loudness (NaN), and bad arguments give null objects', () => {
  const r = meterRun(2, 1, () => 0);
  assert.ok(Number.isNaN(r.momentary) && Number.isNaN(r.correlation));
  assert.equal(x.son_meter_new(RATE, 0), 0);
  assert.equal(x.son_meter_new(RATE, 9), 0);
  assert.equal(x.son_engine_new(5, 2, RATE), 0);
  assert.equal(x.son_engine_new(4, 4, RATE), 0);
});

// Four stems of deterministic noise, and an engine fed one quantum at a time.
function noise(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s / 4294967296 - 0.5) * 0.4;
  };
}

/// Hands `settings` (sonantica_mix::MixSettings as JSON) to the engine; its answer.
function applySettings(e, settings) {
  const bytes = new TextEncoder().encode(JSON.stringify(settings));
  const ptr = x.son_engine_settings_buffer(e, bytes.length);
  assert.notEqual(ptr, 0);
  new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
  return x.son_engine_apply(e);
}

function engineRun(stems, channels, frames, setup, input) {
  const e = x.son_engine_new(stems.length, channels, RATE);
  assert.notEqual(e, 0);
  setup(e);
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let start = 0; start < frames; start += Q) {
    const n = Math.min(Q, frames - start);
    for (let k = 0; k < 2 * stems.length; k++) {
      const buf = f32(x.son_engine_input(e, k), n);
      for (let i = 0; i < n; i++) buf[i] = input(k, start + i);
    }
    assert.equal(x.son_engine_process(e, n), 0);
    for (let c = 0; c < channels; c++) out[c].set(f32(x.son_engine_output(e, c), n), start);
  }
  x.son_engine_free(e);
  return out;
}

test('karaoke removes the vocal stem: the output is drums + bass + other', () => {
  const frames = RATE;
  const data = Array.from({ length: 8 }, (_, k) => {
    const g = noise(1234 + k);
    return Float32Array.from({ length: frames }, g);
  });
  const out = engineRun(['drums', 'bass', 'other', 'vocals'], 2, frames, (e) => {
    assert.equal(applySettings(e, { preset: 'karaoke' }), 0);
    x.son_engine_reset(e); // start at the preset, no ramp
  }, (k, i) => data[k][i]);
  let worst = 0;
  for (let side = 0; side < 2; side++) {
    for (let i = 0; i < frames; i++) {
      const want = data[side][i] + data[2 + side][i] + data[4 + side][i];
      worst = Math.max(worst, Math.abs(out[side][i] - want));
    }
  }
  assert.ok(worst < 1e-6, `karaoke differs from drums+bass+other by ${worst}`);
});

test('a click at the same sample in every stem comes out at that sample', () => {
  const frames = 4 * Q;
  const at = 300; // inside the third quantum
  const out = engineRun(['drums', 'bass', 'other', 'vocals'], 2, frames, () => {},
    (k, i) => (i === at ? 0.25 : 0));
  for (let side = 0; side < 2; side++) {
    let peak = 0;
    for (let i = 1; i < frames; i++) if (Math.abs(out[side][i]) > Math.abs(out[side][peak])) peak = i;
    assert.equal(peak, at);
    assert.ok(Math.abs(out[side][at] - 1.0) < 1e-6, `${out[side][at]}: four stems of 0.25`);
  }
});

test('5.1: the centre carries the vocal stem', () => {
  const frames = RATE;
  const g = noise(99);
  const vocal = Float32Array.from({ length: frames }, g);
  const out = engineRun(['drums', 'bass', 'other', 'vocals'], 6, frames, (e) => {
    assert.equal(applySettings(e, { solo: ['vocals'], layout: '5.1' }), 0);
    x.son_engine_reset(e);
  }, (k, i) => (k >= 6 ? vocal[i] : 0));
  const centre = out[2];
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < frames; i++) {
    sxy += centre[i] * vocal[i]; sxx += centre[i] ** 2; syy += vocal[i] ** 2;
  }
  const rho = sxy / Math.sqrt(sxx * syy);
  assert.ok(rho > 0.999, `centre vs vocal correlation ${rho}`);
  // Nothing of the vocal in the LFE (it is not low-frequency content of the rhythm).
  assert.ok(out[3].every((v) => v === 0), 'LFE carries no vocal');
});

test('settings the engine cannot play are refused whole, and a gain of null is off', () => {
  const e = x.son_engine_new(4, 2, RATE);
  assert.equal(applySettings(e, { gains: { vocals: 'loud' } }), -2); // not a number
  assert.equal(applySettings(e, { preset: 'polka' }), -2);
  assert.equal(applySettings(e, { gains: { vocals: 30 } }), -2); // above +24 dB
  assert.equal(applySettings(e, { mute: ['guitar'] }), -3); // a four-stem engine
  assert.equal(applySettings(e, { layout: '5.1' }), -3); // a stereo engine
  assert.equal(applySettings(e, { gains: { vocals: null, drums: -6 } }), 0);
  x.son_engine_free(e);
  const out = engineRun(['drums', 'bass', 'other', 'vocals'], 2, Q, (e) => {
    assert.equal(applySettings(e, { preset: 'musician', gains: { vocals: null, drums: -6 } }), 0);
    x.son_engine_reset(e);
  }, (k) => [1, 0, 0, 0, 0, 0, 1, 1][k]);
  // drums at -6 dB (replacing Musician's +3), vocals off.
  assert.ok(Math.abs(out[0][5] - 10 ** (-6 / 20)) < 1e-6, `${out[0][5]}`);
  assert.ok(Math.abs(out[1][5]) < 1e-7, `${out[1][5]}`);
});

test('preset gains come from sonantica_mix::PRESETS (as the README lists them)', () => {
  const g = (preset, stem) => x.son_preset_gain_db(preset, 4, stem);
  // 0 original, 1 karaoke, 2 a cappella, 3 musician, 4 bass practice, 5 drum practice;
  // stems: 0 drums, 1 bass, 2 other, 3 vocals.
  assert.deepEqual([0, 1, 2, 3].map((s) => g(0, s)), [0, 0, 0, 0]);
  assert.deepEqual([0, 1, 2, 3].map((s) => g(1, s)), [0, 0, 0, -Infinity]);
  assert.deepEqual([0, 1, 2, 3].map((s) => g(3, s)), [3, 4, 0, -9]);
  assert.equal(g(4, 1), -Infinity);
  assert.equal(g(5, 0), -Infinity);
  assert.ok(Number.isNaN(x.son_preset_gain_db(9, 4, 0)));
  assert.equal(x.son_preset_count(), 6);
});

test('the spectrum analyser puts a 1 kHz sine at -20 dBFS in the band holding 1 kHz', () => {
  const m = x.son_meter_new(RATE, 2);
  const gen = sine(1000, 0.1);
  for (let start = 0; start < 8192; start += Q) {
    for (let c = 0; c < 2; c++) {
      const buf = f32(x.son_meter_input(m, c), Q);
      for (let i = 0; i < Q; i++) buf[i] = gen(c, start + i);
    }
    assert.equal(x.son_meter_process(m, Q), 0);
  }
  const bands = 96;
  const hi = x.son_meter_spectrum_hi_hz(m);
  assert.equal(hi, 20000);
  const levels = Array.from(f32(x.son_meter_spectrum(m, 0.05), 2 * bands));
  const top = levels.slice(0, bands).reduce((b, v, i, a) => (v > a[b] ? i : b), 0);
  // Band i spans 20·1000^(i/96) .. 20·1000^((i+1)/96) Hz.
  const edge = (i) => 20 * (hi / 20) ** (i / bands);
  assert.ok(edge(top) <= 1000 && 1000 < edge(top + 1), `peak band ${edge(top)}..${edge(top + 1)} Hz`);
  assert.ok(levels[top] > -21.5 && levels[top] < -19.9, `${levels[top]} dBFS`);
  assert.equal(levels[bands + top], levels[top], 'the peak hold starts at the level');
  x.son_meter_free(m);
});

test('tempo 0.8 and -2 semitones: the engine reads 0.8 input frames per output frame and the tone moves down', () => {
  const e = x.son_engine_new(4, 2, RATE);
  assert.notEqual(e, 0);
  assert.equal(applySettings(e, { tempo: 0.8, transpose: -2 }), 0);
  x.son_engine_reset(e);
  const f = 440;
  const seconds = 3;
  const out = [];
  let fed = 0;
  for (let made = 0; made < seconds * RATE; made += Q) {
    const need = x.son_engine_input_frames(e, Q);
    assert.ok(need >= 0 && need <= 16384, `needs ${need}`);
    for (let k = 0; k < 8; k++) {
      const buf = f32(x.son_engine_input(e, k), need);
      // The "other" stem carries the tone; the rest are silent.
      for (let i = 0; i < need; i++) buf[i] = k === 4 || k === 5 ? 0.3 * Math.sin((2 * Math.PI * f * (fed + i)) / RATE) : 0;
    }
    fed += need;
    assert.equal(x.son_engine_process_to(e, need, Q), 0);
    out.push(...f32(x.son_engine_output(e, 0), Q));
  }
  const position = x.son_engine_position(e);
  assert.ok(Math.abs(position - 0.8 * seconds * RATE) < 1, `position ${position}`);
  // Read ahead: more input than played, by no more than the look-ahead.
  assert.ok(fed >= position && fed - position < 9000, `fed ${fed}, played ${position}`);
  // Frequency from zero crossings over the last two seconds.
  const from = RATE;
  let crossings = 0;
  for (let i = from + 1; i < out.length; i++) if (out[i - 1] < 0 && out[i] >= 0) crossings += 1;
  const hz = crossings / ((out.length - from) / RATE);
  const want = f * 2 ** (-2 / 12);
  assert.ok(Math.abs(hz - want) / want < 0.005, `${hz.toFixed(2)} Hz, expected ${want.toFixed(2)}`);
  // A wrong input count is refused, not guessed at.
  assert.equal(x.son_engine_process_to(e, x.son_engine_input_frames(e, Q) + 1, Q), -3);
  x.son_engine_free(e);
});
