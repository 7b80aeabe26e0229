// What the browser tests share: the real `sonantica serve` (target/debug) on a
// fresh data folder, Debian's chromium through playwright-core, a logged-in
// page, uploads, and generated signals.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, copyFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const TOKEN = 'studio-e2e-token-0123456789';
export const SHOTS = join(ROOT, 'docs/screenshots');
export const auth = { Authorization: `Bearer ${TOKEN}` };

/// A 16-bit stereo WAV: an `hz` sine (1 kHz by default) at `dbfs` peak in both
/// channels; `phase0` (samples) continues a sine started in an earlier file.
export function sineWav(seconds, dbfs, rate = 48000, { hz = 1000, phase0 = 0 } = {}) {
  const n = Math.round(seconds * rate);
  const amp = 10 ** (dbfs / 20);
  const buf = Buffer.alloc(44 + n * 4);
  buf.write('RIFF', 0); buf.writeUInt32LE(36 + n * 4, 4); buf.write('WAVE', 8);
  buf.write('fmt ', 12); buf.writeUInt32LE(16, 16); buf.writeUInt16LE(1, 20); buf.writeUInt16LE(2, 22);
  buf.writeUInt32LE(rate, 24); buf.writeUInt32LE(rate * 4, 28); buf.writeUInt16LE(4, 32); buf.writeUInt16LE(16, 34);
  buf.write('data', 36); buf.writeUInt32LE(n * 4, 40);
  for (let i = 0; i < n; i++) {
    const v = Math.round(amp * Math.sin((2 * Math.PI * hz * (i + phase0)) / rate) * 32767);
    buf.writeInt16LE(v, 44 + 4 * i);
    buf.writeInt16LE(v, 46 + 4 * i);
  }
  return buf;
}

/// Starts the station with the four-source fixture model as default and the
/// six-source one as the bag "six". `library`: a music folder to scan;
/// `data`/`listen`: to restart a station where it was.
export async function startServer({ library = null, data = null, listen = '127.0.0.1:0' } = {}) {
  data ??= await mkdtemp(join(tmpdir(), 'sonantica-e2e-'));
  const bin = join(ROOT, 'target/debug/sonantica');
  const fixtures = join(ROOT, 'crates/demucs/tests/fixtures');
  const model = join(fixtures, 'small4.safetensors');
  const store = join(data, 'store');
  await mkdir(store, { recursive: true });
  await copyFile(join(fixtures, 'small6.safetensors'), join(store, 'small6.safetensors'));
  await writeFile(join(store, 'six.yaml'), "models: ['small6']\n");
  const args = ['serve', '--data-dir', data, '--listen', listen, '--model', model, '--models-dir', store];
  if (library) args.push('--library', library);
  const child = spawn(join(bin), args, {
    env: { ...process.env, SONANTICA_TOKEN: TOKEN, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.:]+)\//);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code})`)));
  });
  return { child, base, data };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/// Uploads `bytes` as `name` to the station at `base`.
export async function upload(base, name, bytes) {
  const body = new FormData();
  body.append('file', new Blob([bytes]), name);
  const res = await fetch(`${base}/api/tracks`, { method: 'POST', body, headers: auth });
  assert.equal(res.status, 201);
  return res.json();
}

/// GET `path` on the station as JSON.
export async function get(base, path) {
  const res = await fetch(`${base}${path}`, { headers: auth });
  assert.equal(res.status, 200, path);
  return res.json();
}

/// Separates `track` with `model` (the default when null) and waits for it.
export async function separate(base, track, model = null) {
  const res = await fetch(`${base}/api/tracks/${track.id}/separate`, {
    method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(model ? { model } : {}),
  });
  assert.equal(res.status, 202);
  const job = await res.json();
  for (let status = job.status; status !== 'done';) {
    assert.ok(['queued', 'running'].includes(status), `job ${status}`);
    await new Promise((r) => setTimeout(r, 250));
    status = (await get(base, `/api/jobs/${job.id}`)).status;
  }
}

/// A new page of `browser` at `viewport` showing `hash`, logged in with the
/// token; `errors` collects the page's uncaught errors.
export async function login(browser, base, viewport, hash = '#/tracks') {
  const page = await browser.newPage({ viewport });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/${hash}`);
  await page.fill('#token', TOKEN);
  await page.click('#login-form button');
  return { page, errors };
}

/// Samples of a WAV file (16-bit PCM or 32-bit float, plain or extensible):
/// `{ rate, channels: [Float32Array, ...] }`.
export function parseWav(buf) {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let fmt = null;
  for (let at = 12; at + 8 <= v.byteLength;) {
    const id = String.fromCharCode(...buf.subarray(at, at + 4));
    const size = v.getUint32(at + 4, true);
    if (id === 'fmt ') {
      fmt = { tag: v.getUint16(at + 8, true), channels: v.getUint16(at + 10, true), rate: v.getUint32(at + 12, true), bits: v.getUint16(at + 22, true) };
      if (fmt.tag === 0xfffe) fmt.tag = v.getUint16(at + 32, true);
    } else if (id === 'data') {
      assert.ok(fmt, 'fmt before data');
      const bytes = fmt.bits / 8;
      const frames = Math.floor(Math.min(size, v.byteLength - at - 8) / (bytes * fmt.channels));
      const channels = Array.from({ length: fmt.channels }, () => new Float32Array(frames));
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < fmt.channels; c++) {
          const o = at + 8 + (i * fmt.channels + c) * bytes;
          channels[c][i] = fmt.tag === 3 ? v.getFloat32(o, true) : v.getInt16(o, true) / 32768;
        }
      }
      return { rate: fmt.rate, channels };
    }
    at += 8 + size + (size % 2);
  }
  throw new Error('no data chunk');
}

/// A 16-bit stereo WAV that never repeats: three drifting partials and noise,
/// different in each channel (so a stretch of it can be found in its stems).
export function musicWav(seconds, rate) {
  const n = Math.round(seconds * rate);
  const buf = Buffer.alloc(44 + n * 4);
  buf.write('RIFF', 0); buf.writeUInt32LE(36 + n * 4, 4); buf.write('WAVE', 8);
  buf.write('fmt ', 12); buf.writeUInt32LE(16, 16); buf.writeUInt16LE(1, 20); buf.writeUInt16LE(2, 22);
  buf.writeUInt32LE(rate, 24); buf.writeUInt32LE(rate * 4, 28); buf.writeUInt16LE(4, 32); buf.writeUInt16LE(16, 34);
  buf.write('data', 36); buf.writeUInt32LE(n * 4, 40);
  let s = 12345;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 - 0.5; };
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const tone = 0.2 * Math.sin(2 * Math.PI * (110 + 3 * t) * t) + 0.1 * Math.sin(2 * Math.PI * 523 * t * (1 + 0.01 * Math.sin(t)))
      + 0.05 * Math.sin(2 * Math.PI * 2200 * t);
    buf.writeInt16LE(Math.round((tone + 0.05 * rnd()) * 32767), 44 + 4 * i);
    buf.writeInt16LE(Math.round((0.8 * tone + 0.05 * rnd()) * 32767), 46 + 4 * i);
  }
  return buf;
}

/// Where `frames` (planar channels) start inside `stems` (planar channels), to
/// the sample; -1 if nowhere.
export function locate(frames, stems) {
  const len = Math.min(64, frames[0].length);
  const n = stems[0].length - frames[0].length;
  for (let o = 0; o <= n; o++) {
    let ok = true;
    for (let c = 0; c < frames.length && ok; c++) {
      for (let i = 0; i < len; i++) if (Math.abs(frames[c][i] - stems[c][o + i]) > 1e-6) { ok = false; break; }
    }
    if (ok) return o;
  }
  return -1;
}
