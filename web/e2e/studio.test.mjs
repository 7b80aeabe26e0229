// The Studio in a real browser (Debian's chromium through playwright-core)
// against the real `sonantica serve`: a generated track is uploaded and played,
// and the live meters (sonantica-meter as wasm in the AudioWorklet) read what the
// signal is known to be. Writes screenshots to docs/screenshots/.
//
// Run by scripts/test after `cargo test` has built target/debug/sonantica:
//   npm ci --prefix web/e2e && node --test web/e2e/
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = new URL('../../', import.meta.url).pathname;
const TOKEN = 'studio-e2e-token-0123456789';
const SHOTS = join(ROOT, 'docs/screenshots');

/// A 16-bit stereo WAV: a 1 kHz sine at `dbfs` peak in both channels.
function sineWav(seconds, dbfs, rate = 48000) {
  const n = Math.round(seconds * rate);
  const amp = 10 ** (dbfs / 20);
  const buf = Buffer.alloc(44 + n * 4);
  buf.write('RIFF', 0); buf.writeUInt32LE(36 + n * 4, 4); buf.write('WAVE', 8);
  buf.write('fmt ', 12); buf.writeUInt32LE(16, 16); buf.writeUInt16LE(1, 20); buf.writeUInt16LE(2, 22);
  buf.writeUInt32LE(rate, 24); buf.writeUInt32LE(rate * 4, 28); buf.writeUInt16LE(4, 32); buf.writeUInt16LE(16, 34);
  buf.write('data', 36); buf.writeUInt32LE(n * 4, 40);
  for (let i = 0; i < n; i++) {
    const v = Math.round(amp * Math.sin((2 * Math.PI * 1000 * i) / rate) * 32767);
    buf.writeInt16LE(v, 44 + 4 * i);
    buf.writeInt16LE(v, 46 + 4 * i);
  }
  return buf;
}

async function startServer() {
  const data = await mkdtemp(join(tmpdir(), 'sonantica-e2e-'));
  const bin = join(ROOT, 'target/debug/sonantica');
  const model = join(ROOT, 'crates/demucs/tests/fixtures/small4.safetensors');
  const child = spawn(bin, ['serve', '--data-dir', data, '--listen', '127.0.0.1:0', '--model', model], {
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
  return { child, base };
}

const server = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
after(async () => {
  await browser.close();
  server.child.kill();
});

async function upload(name, bytes) {
  const body = new FormData();
  body.append('file', new Blob([bytes]), name);
  const res = await fetch(`${server.base}/api/tracks`, {
    method: 'POST', body, headers: { Authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.status, 201);
  return res.json();
}

test('the live Inspector reads a known sine: -20 LUFS, correlation +1, peak -20 dBFS', async () => {
  await upload('Sine 1 kHz -20 dBFS.wav', sineWav(20, -20));
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.base}/`);
  await page.fill('#token', TOKEN);
  await page.click('#login-form button');
  await page.waitForSelector('#tracks li');
  await mkdir(SHOTS, { recursive: true });
  // Wait for the stored analysis before the library screenshot.
  await page.waitForFunction(async () => {
    const r = await fetch('/api/tracks');
    return (await r.json()).items.every((t) => t.analysis_status === 'done');
  });
  await page.screenshot({ path: join(SHOTS, 'library.png') });
  await page.click('#tracks li');
  // 5 s of audio through the worklet: momentary (400 ms) and short-term (3 s) settle.
  await page.waitForFunction(() => window.studio.lastReadings && window.studio.lastReadings[0] > 5,
    null, { timeout: 30000 });
  const [, momentary, shortTerm, , , truePeak, samplePeak, crest, correlation, width] =
    await page.evaluate(() => window.studio.lastReadings);
  // A stereo sine at -20 dBFS in both channels is -20 LUFS (as EBU Tech 3341 case 1
  // is -23 at -23); the browser may resample to its own rate, hence the margins.
  assert.ok(Math.abs(momentary - -20) < 0.3, `momentary ${momentary}`);
  assert.ok(Math.abs(shortTerm - -20) < 0.3, `short-term ${shortTerm}`);
  assert.ok(Math.abs(samplePeak - -20) < 0.1, `sample peak ${samplePeak}`);
  assert.ok(Math.abs(truePeak - -20) < 0.3, `true peak ${truePeak}`);
  assert.ok(Math.abs(crest - 3.01) < 0.1, `crest ${crest}`);
  assert.ok(correlation > 0.99, `correlation ${correlation}`);
  assert.ok(width < 0.01, `width ${width}`);
  // The page shows the same numbers.
  const shown = await page.textContent('#m-corr output');
  assert.match(shown, /^(0\.99|1\.00)$/);
  await page.screenshot({ path: join(SHOTS, 'inspector.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('separated with the fixture model, karaoke takes the vocal stem out of the worklet output', async () => {
  const track = await upload('Mix for stems.wav', sineWav(12, -12));
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.base}/`);
  await page.fill('#token', TOKEN);
  await page.click('#login-form button');
  const row = page.locator(`#tracks li[data-id="${track.id}"]`);
  await row.locator('button').click();
  await page.waitForSelector(`#tracks li[data-id="${track.id}"] .badge:text("separated")`, { timeout: 120000 });
  await page.locator(`#tracks li[data-id="${track.id}"]`).click();
  await page.waitForSelector('#mixer:not([hidden])');
  // The worklet counts time from its start even before audio arrives: wait until
  // the multistem file really plays and the meters see signal.
  await page.waitForFunction(() => {
    const a = document.querySelector('#audio');
    const r = window.studio.lastReadings;
    return window.studio.mode === 'stems' && !a.paused && a.currentTime > 1 && r && Number.isFinite(r[1]);
  }, null, { timeout: 30000 });
  await page.click('button[data-preset="karaoke"]');
  await page.waitForTimeout(300); // past the gain ramp
  const { inputs, outputs } = await page.evaluate(async () => {
    const d = await window.studio.capture(4096);
    const plain = (q) => q.map((chs) => chs.map((c) => Array.from(c)));
    return { inputs: plain(d.inputs), outputs: plain(d.outputs) };
  });
  // Inputs: 8 channels (drums, bass, other, vocals × L/R); output: stereo.
  let worst = 0;
  let vocal = 0;
  for (let q = 0; q < inputs.length; q++) {
    assert.equal(inputs[q].length, 8);
    for (let side = 0; side < 2; side++) {
      for (let i = 0; i < outputs[q][side].length; i++) {
        const rest = inputs[q][side][i] + inputs[q][2 + side][i] + inputs[q][4 + side][i];
        worst = Math.max(worst, Math.abs(outputs[q][side][i] - rest));
        vocal = Math.max(vocal, Math.abs(inputs[q][6 + side][i]));
      }
    }
  }
  assert.ok(vocal > 1e-3, `the vocal stem carries signal (${vocal})`);
  assert.ok(worst < 1e-5, `karaoke output differs from drums + bass + other by ${worst}`);
  await page.screenshot({ path: join(SHOTS, 'mixer.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
