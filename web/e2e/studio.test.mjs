// The Studio in a real browser (Debian's chromium through playwright-core)
// against the real `sonantica serve`: a generated track is uploaded and played,
// and the live meters (sonantica-meter as wasm in the AudioWorklet) read what the
// signal is known to be; it is separated from the page (and a second track with
// the six-source fixture through the API), remixed (Karaoke), and
// rendered to 5.1 offline; the worklet is shown to keep stems sample-aligned; the
// page is checked at tablet width and for names a screen reader can announce.
// Writes docs/screenshots/{library,inspector,mixer,tablet}.png.
//
// Run by scripts/test after `cargo test` has built target/debug/sonantica:
//   npm ci --prefix web/e2e && node --test web/e2e/
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, copyFile, writeFile } from 'node:fs/promises';
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
  const fixtures = join(ROOT, 'crates/demucs/tests/fixtures');
  const model = join(fixtures, 'small4.safetensors');
  // A model store with the six-source fixture as the one-model bag "six".
  const store = join(data, 'store');
  await mkdir(store, { recursive: true });
  await copyFile(join(fixtures, 'small6.safetensors'), join(store, 'small6.safetensors'));
  await writeFile(join(store, 'six.yaml'), "models: ['small6']\n");
  const child = spawn(bin, ['serve', '--data-dir', data, '--listen', '127.0.0.1:0', '--model', model,
    '--models-dir', store], {
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

/// A new page at `viewport`, logged in with the token; `errors` collects the
/// page's uncaught errors.
async function login(viewport) {
  const page = await browser.newPage({ viewport });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.base}/`);
  await page.fill('#token', TOKEN);
  await page.click('#login-form button');
  return { page, errors };
}

test('the live Inspector reads a known sine: -20 LUFS, correlation +1, peak -20 dBFS', async () => {
  await upload('Sine 1 kHz -20 dBFS.wav', sineWav(20, -20));
  const { page, errors } = await login({ width: 1280, height: 900 });
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

/// Waits until the multistem file of the open track really plays (the worklet
/// counts time from its start even before audio arrives), presses Karaoke, and
/// captures 4096 frames of the worklet: how far its stereo output is from the
/// sum of every stem but the vocals (stem 3) in its input, and the vocal input's
/// peak.
async function karaoke(page, stems) {
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
  let worst = 0;
  let vocal = 0;
  for (let q = 0; q < inputs.length; q++) {
    // Inputs: each stem's left and right in source order; output: stereo.
    assert.equal(inputs[q].length, 2 * stems);
    for (let side = 0; side < 2; side++) {
      for (let i = 0; i < outputs[q][side].length; i++) {
        let rest = 0;
        for (let k = 0; k < stems; k++) if (k !== 3) rest += inputs[q][2 * k + side][i];
        worst = Math.max(worst, Math.abs(outputs[q][side][i] - rest));
        vocal = Math.max(vocal, Math.abs(inputs[q][6 + side][i]));
      }
    }
  }
  return { worst, vocal };
}

test('separated with the fixture model, karaoke takes the vocal stem out of the worklet output', async () => {
  const track = await upload('Mix for stems.wav', sineWav(12, -12));
  const { page, errors } = await login({ width: 1280, height: 1100 });
  const row = page.locator(`#tracks li[data-id="${track.id}"]`);
  await row.locator('.actions button').click();
  await page.waitForSelector(`#tracks li[data-id="${track.id}"] .badge:text("separated")`, { timeout: 120000 });
  await page.locator(`#tracks li[data-id="${track.id}"]`).click();
  await page.waitForSelector('#mixer:not([hidden])');
  const { worst, vocal } = await karaoke(page, 4);
  assert.ok(vocal > 1e-3, `the vocal stem carries signal (${vocal})`);
  assert.ok(worst < 1e-5, `karaoke output differs from drums + bass + other by ${worst}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('six stems: the 12-channel stream plays through the worklet, and karaoke keeps the five others', async () => {
  const track = await upload('Six stems.wav', sineWav(6, -12));
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const res = await fetch(`${server.base}/api/tracks/${track.id}/separate`, {
    method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'six' }),
  });
  assert.equal(res.status, 202);
  const job = await res.json();
  for (let status = job.status; status !== 'done';) {
    assert.ok(['queued', 'running'].includes(status), `job ${status}`);
    await new Promise((r) => setTimeout(r, 250));
    status = (await (await fetch(`${server.base}/api/jobs/${job.id}`, { headers: auth })).json()).status;
  }
  const { page, errors } = await login({ width: 1280, height: 1100 });
  await page.locator(`#tracks li[data-id="${track.id}"]`).click();
  await page.waitForSelector('#mixer:not([hidden])');
  assert.deepEqual(await page.$$eval('#strips .name', (els) => els.map((e) => e.textContent)),
    ['drums', 'bass', 'other', 'vocals', 'guitar', 'piano']);
  const { worst, vocal } = await karaoke(page, 6);
  assert.ok(vocal > 1e-3, `the vocal stem carries signal (${vocal})`);
  assert.ok(worst < 1e-5, `karaoke output differs from the five other stems by ${worst}`);
  assert.deepEqual(errors, []);
  await page.close();
});

/// Logs in at `viewport` and opens the separated "Mix for stems" track (the
/// previous test separated it) in the mixer.
async function openMixer(viewport) {
  const res = await fetch(`${server.base}/api/tracks?q=Mix%20for%20stems`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const track = (await res.json()).items.find((t) => t.is_separated);
  assert.ok(track, 'the karaoke test separated "Mix for stems"');
  const { page, errors } = await login(viewport);
  await page.locator(`#tracks li[data-id="${track.id}"]`).click();
  await page.waitForSelector('#mixer:not([hidden])');
  return { page, errors };
}

// In the page: how the centre of the last channel check relates to the vocal
// stem's mid (inputs 6 and 7): the least-squares scale, what is left after it,
// the correlation, and the vocal's own peak.
function centreVsVocal() {
  const { input, output } = window.studio.lastCheck;
  const [vl, vr] = [input.getChannelData(6), input.getChannelData(7)];
  const c = output.getChannelData(2);
  let cv = 0, vv = 0, cc = 0, vocalPeak = 0, centrePeak = 0;
  for (let i = 0; i < c.length; i++) {
    const mid = 0.5 * (vl[i] + vr[i]);
    cv += c[i] * mid; vv += mid * mid; cc += c[i] * c[i];
    vocalPeak = Math.max(vocalPeak, Math.abs(mid));
    centrePeak = Math.max(centrePeak, Math.abs(c[i]));
  }
  const scale = cv / vv;
  let residual = 0;
  for (let i = 0; i < c.length; i++) residual = Math.max(residual, Math.abs(c[i] - scale * 0.5 * (vl[i] + vr[i])));
  return {
    frames: c.length, channels: output.numberOfChannels, scale, residual, vocalPeak, centrePeak,
    rho: cv / Math.sqrt(cc * vv),
    rows: [...document.querySelectorAll('#channels .meter')].map((r) => [r.dataset.channel, r.querySelector('output').textContent]),
  };
}

test('5.1 through an OfflineAudioContext: the centre carries the vocal stem and nothing else', async () => {
  const { page, errors } = await openMixer({ width: 1280, height: 1100 });
  await page.click('button[data-preset="original"]');
  await page.selectOption('#export-layout', '5.1');
  const check = async () => {
    await page.click('#check');
    await page.waitForSelector('#channels[data-ready="true"] .meter', { timeout: 30000 });
    return page.evaluate(centreVsVocal);
  };
  const on = await check();
  assert.equal(on.channels, 6);
  assert.ok(on.frames > 44100, `${on.frames} frames rendered`);
  assert.deepEqual(on.rows.map(([name]) => name), ['FL', 'FR', 'FC', 'LFE', 'BL', 'BR']);
  assert.ok(on.vocalPeak > 1e-3, `the vocal stem carries signal (${on.vocalPeak})`);
  // sonantica-mix's default keeps 20 % of the vocal in front: C = 0.8·√2·mid.
  assert.ok(Math.abs(on.scale - 0.8 * Math.SQRT2) < 1e-4, `centre = ${on.scale} × vocal mid`);
  assert.ok(on.residual < 1e-5, `the centre holds something besides the vocal (${on.residual})`);
  assert.ok(on.rho > 0.99999, `correlation ${on.rho}`);
  assert.match(on.rows[2][1], /^-?\d+\.\d dB RMS/);
  await page.screenshot({ path: join(SHOTS, 'mixer.png'), fullPage: true });

  // Vocals muted: the centre is silent, so nothing else was ever in it.
  await page.click('button[aria-label="Mute vocals"]');
  const off = await check();
  assert.ok(off.centrePeak < 1e-7, `centre peak with the vocals muted: ${off.centrePeak}`);
  assert.match(off.rows[2][1], /^−∞ dB RMS/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('stem playback is sample-aligned: a click at the same sample in every stem comes out at that sample', async () => {
  const { page, errors } = await openMixer({ width: 1280, height: 900 });
  const at = 1111; // not on a 128-frame quantum boundary
  const found = await page.evaluate(async (at) => {
    const results = {};
    for (const stems of [4, 6]) {
      const input = new AudioBuffer({ numberOfChannels: 2 * stems, length: 4096, sampleRate: 44100 });
      for (let c = 0; c < 2 * stems; c++) input.getChannelData(c)[at] = 0.25;
      const flat = { preset: 0, gains: Array(stems).fill(0), mute: Array(stems).fill(false), solo: Array(stems).fill(false) };
      for (const layout of ['stereo', '5.1']) {
        const out = await window.studio.renderStems(input, layout, flat);
        results[`${stems} stems, ${layout}`] = Array.from({ length: out.numberOfChannels }, (_, c) => {
          const d = out.getChannelData(c);
          let peak = 0;
          for (let i = 1; i < d.length; i++) if (Math.abs(d[i]) > Math.abs(d[peak])) peak = i;
          let elsewhere = 0;
          for (let i = 0; i < d.length; i++) if (i !== peak) elsewhere = Math.max(elsewhere, Math.abs(d[i]));
          return { peak, value: d[peak], elsewhere };
        });
      }
    }
    return results;
  }, at);
  for (const stems of [4, 6]) {
    // Stereo is the plain sum: every stem's click lands on the same sample.
    for (const ch of found[`${stems} stems, stereo`]) {
      assert.equal(ch.peak, at);
      assert.ok(Math.abs(ch.value - 0.25 * stems) < 1e-6, `${stems} stems: ${ch.value}`);
      assert.ok(ch.elsewhere < 1e-7, `${stems} stems: ${ch.elsewhere} off the click`);
    }
    // 5.1: the fronts and the centre (the LFE is low-passed and the surrounds
    // deliberately decorrelated, so they are not clicks).
    const [fl, fr, fc] = found[`${stems} stems, 5.1`];
    for (const ch of [fl, fr, fc]) assert.equal(ch.peak, at, `${stems} stems 5.1: ${JSON.stringify(ch)}`);
    assert.ok(Math.abs(fc.value - 0.8 * Math.SQRT2 * 0.25) < 1e-6, `centre ${fc.value}`);
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('at tablet width nothing scrolls sideways, and every control has a name for screen readers', async () => {
  const { page, errors } = await openMixer({ width: 820, height: 1180 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
  // Every control is on the screen and wide enough to touch.
  const small = await page.evaluate(() => [...document.querySelectorAll('#studio button, #studio input, #studio select, #studio a.button')]
    .filter((el) => el.offsetParent !== null)
    .map((el) => { const r = el.getBoundingClientRect(); return { el: el.getAttribute('aria-label') || el.textContent || el.id, w: r.width, h: r.height, right: r.right }; })
    .filter((b) => b.right > window.innerWidth || Math.max(b.w, b.h) < 24));
  assert.deepEqual(small, []);
  await page.screenshot({ path: join(SHOTS, 'tablet.png'), fullPage: true });
  // What a screen reader gets: no button, slider, list box, meter or link without a name.
  const tree = await page.locator('body').ariaSnapshot();
  const unnamed = tree.split('\n').filter((line) => /^\s*- (button|slider|combobox|meter|link|textbox|searchbox|img|progressbar)\b(?! ")/.test(line));
  assert.deepEqual(unnamed, [], tree);
  if (process.env.SHOW_TREE) console.log(tree);
  for (const name of ['button "Mix for stems"', 'button "Upload"', 'button "Solo vocals"', 'button "Mute drums"',
    'slider "vocals gain in dB"', 'button "Previous track (P)"', 'img "Goniometer', 'button "Channel check"']) {
    assert.ok(tree.includes(name), `${name} is announced`);
  }
  // The live readouts change 20 times a second: shown, never read out.
  const chatty = await page.$$eval('#inspector output', (els) => els.filter((e) => e.getAttribute('aria-live') !== 'off').length);
  assert.equal(chatty, 0);
  // The keyboard alone: Tab to a fader, arrow it up, and its value is spoken in dB.
  await page.focus('#strips input[aria-label="vocals gain in dB"]');
  await page.keyboard.press('ArrowUp');
  assert.equal(await page.getAttribute('#strips input[aria-label="vocals gain in dB"]', 'aria-valuetext'), '0.5 dB');
  // ... and Enter on another track's title plays it.
  await page.locator('#tracks button.title', { hasText: 'Sine 1 kHz' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('#detail-title').textContent.startsWith('Sine'));
  assert.deepEqual(errors, []);
  await page.close();
});
