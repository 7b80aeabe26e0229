// The Studio in a real browser (Debian's chromium through playwright-core)
// against the real `sonantica serve`: a generated track is uploaded and played,
// and the live meters (sonantica-meter as wasm in the AudioWorklet) read what the
// signal is known to be; it is separated from the page (and a second track with
// the six-source fixture through the API), remixed (Karaoke), and
// rendered to 5.1 offline; the worklet is shown to keep stems sample-aligned; the
// page is checked at tablet width and for names a screen reader can announce.
// Writes docs/screenshots/mixer.png.
//
// Run by scripts/test after `cargo test` has built target/debug/sonantica:
//   npm ci --prefix web/e2e && node --test web/e2e/
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as h from './harness.mjs';
import { SHOTS, TOKEN, locate, musicWav, parseWav, sineWav } from './harness.mjs';

const server = await h.startServer();
const browser = await h.launchBrowser();
after(async () => {
  await browser.close();
  server.child.kill();
});

const upload = (name, bytes) => h.upload(server.base, name, bytes);

/// A new page at `viewport` showing `hash` (the track list by default), logged
/// in with the token; `errors` collects the page's uncaught errors.
const login = (viewport, hash = '#/tracks') => h.login(browser, server.base, viewport, hash);

test('the live Inspector reads a known sine: -20 LUFS, correlation +1, peak -20 dBFS', async () => {
  await upload('Sine 1 kHz -20 dBFS.wav', sineWav(20, -20));
  const { page, errors } = await login({ width: 1280, height: 900 });
  await page.waitForSelector('#tracks li');
  await mkdir(SHOTS, { recursive: true });
  // Wait for the stored analysis.
  await page.waitForFunction(async () => {
    const r = await fetch('/api/tracks');
    return (await r.json()).items.every((t) => t.analysis_status === 'done');
  });
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
    const a = window.studio.player;
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
  await row.locator('.actions button.separate').click();
  await page.waitForSelector(`#tracks li[data-id="${track.id}"] .badge:text("separated")`, { timeout: 120000 });
  await page.locator(`#tracks li[data-id="${track.id}"]`).click();
  await page.waitForSelector('#mixer:not([hidden]) #strips .strip');
  const { worst, vocal } = await karaoke(page, 4);
  assert.ok(vocal > 1e-3, `the vocal stem carries signal (${vocal})`);
  assert.ok(worst < 1e-5, `karaoke output differs from drums + bass + other by ${worst}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('six stems: the 12-channel stream plays through the worklet, and karaoke keeps the five others', async () => {
  const track = await upload('Six stems.wav', sineWav(6, -12));
  await h.separate(server.base, track, 'six');
  const { page, errors } = await login({ width: 1280, height: 1100 });
  await page.locator(`#tracks li[data-id="${track.id}"]`).click();
  await page.waitForSelector('#mixer:not([hidden]) #strips .strip');
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
  await page.waitForSelector('#mixer:not([hidden]) #strips .strip');
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
      const flat = {}; // MixSettings' defaults: every stem at 0 dB
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

/// The stems a mix description makes audible, with their linear gains, in the
/// mixer's source order (sonantica_mix::MixSettings' rules, written again here
/// from the README so that the check does not share the code it checks).
function linearGains(sources, mix) {
  return sources.map((name) => {
    const db = mix.gains[name];
    const soloed = mix.solo.length === 0 || mix.solo.includes(name);
    return db === null || mix.mute.includes(name) || !soloed ? 0 : 10 ** (db / 20);
  });
}

/// What the strips show: each stem's gain text and S/M states.
const shownMix = (page) => page.$$eval('#strips .strip', (strips) => strips.map((s) => ({
  name: s.querySelector('.name').textContent,
  text: s.querySelector('output').textContent,
  solo: s.querySelector('.solo').getAttribute('aria-pressed') === 'true',
  mute: s.querySelector('.mute').getAttribute('aria-pressed') === 'true',
})));

/// Clicks Save mix (as 32-bit float WAV in `layout`) and reads the download.
async function saveMix(page, layout) {
  await page.selectOption('#export-layout', layout);
  await page.selectOption('#export-format', 'wav/32f');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save-mix')]);
  const { readFile } = await import('node:fs/promises');
  return parseWav(await readFile(await download.path()));
}


test('what you hear is what you save: the worklet output equals the Save mix file for five mixes', async () => {
  // The track at the audio context's rate, so that nothing is resampled between
  // the stems, the worklet and the saved file.
  const probe = await browser.newPage();
  const rate = await probe.evaluate(() => new AudioContext().sampleRate);
  await probe.close();
  const seconds = 10;
  const track = await upload('What you hear.wav', musicWav(seconds, rate));
  const auth = h.auth;
  await h.separate(server.base, track);
  // Every stem, as the station serves it to the Studio (32-bit float).
  const window = await fetch(`${server.base}/api/tracks/${track.id}/multistem?start_s=0&duration_s=${seconds}`, { headers: auth });
  assert.equal(window.status, 200);
  const stems = parseWav(Buffer.from(await window.arrayBuffer()));
  assert.equal(stems.rate, rate);
  assert.equal(stems.channels.length, 8);

  const { page, errors } = await login({ width: 1280, height: 1100 });
  await page.locator(`#tracks li[data-id="${track.id}"]`).click();
  await page.waitForSelector('#mixer:not([hidden]) #strips .strip');
  // Repeat one: the track loops, sample for sample, while the mixes are compared.
  await page.evaluate(() => { window.studio.queue.repeat = 'one'; });
  await page.waitForFunction(() => window.studio.mode === 'stems' && !window.studio.player.paused
    && window.studio.player.currentTime > 0.5, null, { timeout: 30000 });
  const sources = ['drums', 'bass', 'other', 'vocals'];
  const fader = (name) => page.locator(`#strips input[aria-label="${name} gain in dB"]`);

  const cases = [
    ['Musician, drums fader +2 dB', async () => {
      await page.click('button[data-preset="musician"]');
      await fader('drums').focus();
      for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowUp'); // 0.5 dB a step
    }, { preset: 'musician', gains: { drums: 5, bass: 4, other: 0, vocals: -9 }, mute: [], solo: [] }],
    ['Karaoke, vocal fader raised to -12 dB', async () => {
      await page.click('button[data-preset="karaoke"]');
      await fader('vocals').fill('-12');
    }, { preset: 'karaoke', gains: { drums: 0, bass: 0, other: 0, vocals: -12 }, mute: [], solo: [] }],
    ['mute drums, then Bass practice', async () => {
      await page.click('button[aria-label="Mute drums"]');
      await page.click('button[data-preset="bass-practice"]');
    }, { preset: 'bass-practice', gains: { drums: 0, bass: null, other: 0, vocals: 0 }, mute: [], solo: [] }],
    ['solo bass and vocals', async () => {
      await page.click('button[data-preset="original"]');
      await page.click('button[aria-label="Solo bass"]');
      await page.click('button[aria-label="Solo vocals"]');
    }, { preset: 'original', gains: { drums: 0, bass: 0, other: 0, vocals: 0 }, mute: [], solo: ['bass', 'vocals'] }],
  ];
  for (const [name, act, want] of cases) {
    await act();
    // The screen shows the mix being played.
    const shown = await shownMix(page);
    assert.deepEqual(shown, sources.map((s) => ({
      name: s, text: want.gains[s] === null ? '−∞ dB' : `${want.gains[s].toFixed(1)} dB`,
      solo: want.solo.includes(s), mute: want.mute.includes(s),
    })), name);
    await page.waitForTimeout(300); // past the 20 ms gain ramps
    assert.equal(await page.evaluate(() => window.studio.applied), 0, `${name}: the engine took the settings`);
    // 4096 frames of the worklet, away from the loop's seam.
    let cap;
    let at = -1;
    for (let tries = 0; tries < 5 && (at < 0 || at + 4096 > stems.channels[0].length); tries++) {
      cap = await page.evaluate(async () => {
        const d = await window.studio.capture(4096);
        const join = (q, c) => q.flatMap((chs) => Array.from(chs[c] || []));
        return {
          inputs: Array.from({ length: 8 }, (_, c) => join(d.inputs, c)),
          outputs: Array.from({ length: 2 }, (_, c) => join(d.outputs, c)),
        };
      });
      at = locate(cap.inputs, stems.channels);
    }
    assert.ok(at >= 0 && at + cap.outputs[0].length <= stems.channels[0].length,
      `${name}: the captured stems are found in the track's stems (at ${at})`);
    const saved = await saveMix(page, 'stereo');
    assert.equal(saved.channels.length, 2);
    assert.equal(saved.channels[0].length, stems.channels[0].length, `${name}: the saved mix is as long as the track`);
    const g = linearGains(sources, want);
    let heard = 0;
    let played = 0;
    let described = 0;
    for (let c = 0; c < 2; c++) {
      for (let i = 0; i < cap.outputs[c].length; i++) {
        heard = Math.max(heard, Math.abs(cap.outputs[c][i]));
        played = Math.max(played, Math.abs(cap.outputs[c][i] - saved.channels[c][at + i]));
      }
      // ... and the file is the mix the screen describes, everywhere.
      for (let i = 0; i < saved.channels[c].length; i++) {
        let want = 0;
        for (let k = 0; k < 4; k++) want += g[k] * stems.channels[2 * k + c][i];
        described = Math.max(described, Math.abs(saved.channels[c][i] - want));
      }
    }
    assert.ok(heard > 1e-3, `${name}: the worklet plays something (${heard})`);
    assert.ok(played < 1e-4, `${name}: what the worklet played differs from the saved mix by ${played}`);
    assert.ok(described < 1e-4, `${name}: the saved mix differs from the mix on screen by ${described}`);
  }

  // 5.1 (more channels than the sound card has): the channel check renders the
  // mix through the same worklet offline, from the start of the track.
  await page.click('button[data-preset="musician"]');
  await page.click('button[aria-label="Mute other"]');
  await page.evaluate(async () => { const a = window.studio.player; await a.pause(); a.seek(0); });
  await page.selectOption('#export-layout', '5.1');
  await page.click('#check');
  await page.waitForSelector('#channels[data-ready="true"] .meter', { timeout: 30000 });
  const check = await page.evaluate(() => {
    const { from, output } = window.studio.lastCheck;
    const b64 = (f) => {
      const u8 = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
      let s = '';
      for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
      return btoa(s);
    };
    return { from, channels: Array.from({ length: output.numberOfChannels }, (_, c) => b64(output.getChannelData(c))) };
  });
  assert.equal(check.from, 0);
  const offline = check.channels.map((s) => { const b = Buffer.from(s, 'base64'); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); });
  const surround = await saveMix(page, '5.1');
  assert.equal(surround.channels.length, 6);
  let worst = 0;
  let centre = 0;
  for (let c = 0; c < 6; c++) {
    for (let i = 0; i < offline[c].length; i++) worst = Math.max(worst, Math.abs(offline[c][i] - surround.channels[c][i]));
  }
  for (const v of surround.channels[2]) centre = Math.max(centre, Math.abs(v));
  assert.ok(offline[0].length >= rate * 9, `${offline[0].length} frames checked`);
  assert.ok(centre > 1e-3, `the centre carries the vocals (${centre})`);
  assert.ok(worst < 1e-4, `5.1: the channel check differs from the saved mix by ${worst}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('after track changes the Inspector measures only the playing track, from its start', async () => {
  const { page, errors } = await login({ width: 1280, height: 900 });
  const sine = page.locator('#tracks li', { hasText: 'Sine 1 kHz' });
  const other = page.locator('#tracks li', { hasText: 'What you hear' });
  // Three switches between two tracks, ending on the sine.
  for (const row of [sine, other, sine, other, sine]) {
    await row.locator('button.title').click();
    await page.waitForTimeout(700);
  }
  // The readings count from the sine's start and only go forward: a replaced
  // node that kept posting would make them jump back and forth.
  const times = [];
  for (let i = 0; i < 30; i++) {
    times.push(await page.evaluate(() => window.studio.lastReadings?.[0] ?? NaN));
    await page.waitForTimeout(200);
  }
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i] >= times[i - 1], `readings went back from ${times[i - 1]} to ${times[i]} s: ${times}`);
  }
  assert.ok(times[0] < 3, `the first reading is ${times[0]} s into the track`);
  const [, momentary, shortTerm] = await page.evaluate(() => window.studio.lastReadings);
  assert.ok(Math.abs(momentary - -20) < 0.3, `momentary ${momentary}`);
  assert.ok(Math.abs(shortTerm - -20) < 0.5, `short-term ${shortTerm}`);
  assert.deepEqual(errors, []);
  await page.close();
});
