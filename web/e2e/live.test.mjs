// Live stems in a real browser (Debian's chromium through playwright-core)
// against the real `sonantica serve` with the four-source fixture model: a
// track plays, Karaoke is pressed on it, and its stems take over while the
// rest is still being separated — without a jump in position — then a seek
// into stems not made yet holds the clock ("separating…") while the station
// moves the job there, and playback carries on from there.
//
// Run by scripts/test after `cargo test` has built target/debug/sonantica:
//   npm ci --prefix web/e2e && node --test web/e2e/
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as h from './harness.mjs';
import { SHOTS, locate, musicWav, parseWav } from './harness.mjs';

const server = await h.startServer();
const browser = await h.launchBrowser();
after(async () => {
  await browser.close();
  server.child.kill();
});

/// The page's job for the track (there is one).
async function jobOf(track) {
  const jobs = await h.get(server.base, '/api/jobs?limit=10');
  const job = jobs.find((j) => j.track_id === track.id);
  assert.ok(job, 'the page queued a job for the track');
  return job;
}

/// 4096 frames of the worklet, with the track position its first frame
/// plays, by the engine's own clock (`from + (frame time - t0)`).
const capture = (page) => page.evaluate(async () => {
  const s = window.studio;
  const d = await s.capture(4096);
  const f = s.engine.feeds[0];
  const join = (q, c) => q.flatMap((chs) => Array.from(chs[c] || []));
  const channels = d.inputs[0].length;
  return {
    position: f.from + (d.frame / s.ctx.sampleRate - f.t0),
    inputs: Array.from({ length: channels }, (_, c) => join(d.inputs, c)),
    outputs: Array.from({ length: 2 }, (_, c) => join(d.outputs, c)),
  };
});

test('Karaoke on a playing track: its stems play while the job runs, without a jump, and a seek moves the job', async (t) => {
  const probe = await browser.newPage();
  const rate = await probe.evaluate(() => new AudioContext().sampleRate);
  await probe.close();
  const seconds = 90;
  const track = await h.upload(server.base, 'Live stems.wav', musicWav(seconds, rate));
  const { page, errors } = await h.login(browser, server.base, { width: 1280, height: 1100 });
  await page.locator(`#tracks li[data-id="${track.id}"]`).click();
  await page.waitForFunction(() => window.studio.mode === 'track' && !window.studio.player.paused
    && window.studio.player.currentTime > 2, null, { timeout: 30000 });
  // The mixer offers the presets on a track without stems.
  await page.waitForSelector('#mixer:not([hidden]) #presets button[data-preset="karaoke"]');
  assert.equal(await page.isHidden('#mixer-body'), true, 'no faders before there are stems');
  // On a phone the offer fits without scrolling sideways.
  await mkdir(SHOTS, { recursive: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator('#mixer').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, 'live-offer-390.png') });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `390 px: ${overflow} px of sideways scroll`);
  await page.setViewportSize({ width: 1280, height: 1100 });

  // The position as the page shows it, every 10 ms, across the switch.
  await page.evaluate(() => {
    const s = window.studio;
    s.trail = [];
    s.trailTimer = setInterval(() => s.trail.push([performance.now(), s.player.currentTime, s.mode]), 10);
  });
  const pressedAt = await page.evaluate(() => window.studio.player.currentTime);
  await page.click('#presets button[data-preset="karaoke"]');
  await page.waitForFunction(() => window.studio.mode === 'stems' && !window.studio.player.paused
    && !window.studio.engine.buffering && window.studio.engine.feeds[0]?.t0 !== null
    && window.studio.ctx.currentTime > window.studio.engine.feeds[0].t0 + 0.5, null, { timeout: 60000 });
  assert.ok(await page.isVisible('#strips .strip'), 'the mixer shows the stems');
  assert.equal(await page.getAttribute('button[data-preset="karaoke"]', 'aria-pressed'), 'true', 'Karaoke is on');
  await page.screenshot({ path: join(SHOTS, 'live-stems.png') });

  const heard = await capture(page);
  const running = await jobOf(track);
  assert.equal(running.status, 'running', 'the stems play before the job has finished');
  assert.ok(running.from_s >= pressedAt - 0.05 && running.from_s < pressedAt + 1,
    `the job starts where the listener was (${running.from_s} s, pressed at ${pressedAt} s)`);
  const trail = await page.evaluate(() => { clearInterval(window.studio.trailTimer); return window.studio.trail; });

  // The stem channels carry signal, and Karaoke is drums + bass + other.
  assert.equal(heard.inputs.length, 8);
  let worst = 0;
  let peak = 0;
  for (let side = 0; side < 2; side++) {
    for (let i = 0; i < heard.outputs[side].length; i++) {
      let rest = 0;
      for (let k = 0; k < 3; k++) rest += heard.inputs[2 * k + side][i];
      worst = Math.max(worst, Math.abs(heard.outputs[side][i] - rest));
      for (let c = 0; c < 8; c++) peak = Math.max(peak, Math.abs(heard.inputs[c][i]));
    }
  }
  assert.ok(peak > 1e-3, `the stems carry signal while the job runs (${peak})`);
  assert.ok(worst < 1e-5, `karaoke output differs from drums + bass + other by ${worst}`);

  // No jump: the shown position never goes back, nor ahead of the time that
  // passed, by more than 50 ms, from the track to its stems.
  assert.ok(trail.some(([, , m]) => m === 'track') && trail.some(([, , m]) => m === 'stems'), 'the trail spans the switch');
  for (let i = 1; i < trail.length; i++) {
    const [w0, p0] = trail[i - 1];
    const [w1, p1] = trail[i];
    const step = p1 - p0;
    assert.ok(step > -0.05 && step < (w1 - w0) / 1000 + 0.05,
      `the position jumped by ${step.toFixed(3)} s in ${(w1 - w0).toFixed(0)} ms (${p0.toFixed(3)} → ${p1.toFixed(3)})`);
  }

  // A seek beyond the stems made so far: the clock holds with "separating…"
  // shown, the station moves the job there, and playback goes on from there.
  const before = (await h.get(server.base, `/api/jobs/${running.id}`)).ready;
  const target = 75;
  assert.ok(!before.some(([a, b]) => a <= target && target < b), `${target} s is not ready yet (${JSON.stringify(before)})`);
  await page.evaluate((t) => {
    const s = window.studio;
    const shown = s.engine.onBuffering;
    s.holds = 0;
    s.engine.onBuffering = (on) => { if (on && document.querySelector('#buffering').hidden) s.holds += 1; shown(on); };
    s.player.seek(t);
  }, target);
  if (await page.isVisible('#buffering')) await page.screenshot({ path: join(SHOTS, 'live-stems-buffering.png') });
  await page.waitForFunction((t) => window.studio.player.currentTime > t + 0.5 && !window.studio.engine.buffering,
    target, { timeout: 60000 });
  assert.ok(await page.evaluate(() => window.studio.holds) >= 1, 'the clock held with "separating…" shown');
  assert.equal(await page.isHidden('#buffering'), true, 'the buffer state goes once the stems are there');
  const moved = await h.get(server.base, `/api/jobs/${running.id}`);
  const afterSeek = await capture(page);
  const [a0, b0] = moved.ready.find(([a, b]) => a <= target && target < b) ?? [];
  assert.ok(a0 !== undefined && a0 > before.at(-1)[1] - 1e-6 && a0 <= target,
    `the job made the stems at ${target} s next (ready ${JSON.stringify(moved.ready)}, before ${JSON.stringify(before)})`);
  assert.ok(b0 > target);

  // Back to stems made already (and far from the end of the track): once the
  // job is done they play on, untouched (no reload, no jump).
  await page.evaluate(() => window.studio.player.seek(10));
  await page.waitForFunction(() => window.studio.player.currentTime > 10.5 && !window.studio.engine.buffering,
    null, { timeout: 30000 });
  const trail2 = await page.evaluate(() => { const s = window.studio; s.trail = []; s.trailTimer = setInterval(() => s.trail.push([performance.now(), s.player.currentTime, s.engine.feeds[0]]), 10); return true; });
  assert.ok(trail2);
  for (let status = moved.status; status !== 'done';) {
    assert.ok(['queued', 'running'].includes(status), `job ${status}`);
    await new Promise((r) => setTimeout(r, 250));
    status = (await h.get(server.base, `/api/jobs/${running.id}`)).status;
  }
  await page.waitForFunction(() => document.querySelector('#stem-status').textContent === '', null, { timeout: 10000 });
  const sameFeed = await page.evaluate(() => {
    const s = window.studio;
    clearInterval(s.trailTimer);
    return s.trail.every(([, , f]) => f === s.engine.feeds[0]) && s.mode === 'stems' && !s.player.paused;
  });
  assert.ok(sameFeed, 'the stems play on from the same stream when the job ends');
  assert.equal(await page.isVisible('#zip'), true, 'the stems can be downloaded now');

  // What was heard is the finished stems, at the place the clock said.
  for (const [name, cap] of [['after Karaoke', heard], ['after the seek', afterSeek]]) {
    const start = Math.max(0, Math.floor(cap.position) - 2);
    const res = await fetch(`${server.base}/api/tracks/${track.id}/multistem?start_s=${start}&duration_s=5`, { headers: h.auth });
    assert.equal(res.status, 200);
    const stems = parseWav(Buffer.from(await res.arrayBuffer()));
    assert.equal(stems.rate, rate);
    const found = locate(cap.inputs, stems.channels);
    assert.ok(found >= 0, `${name}: the stems played are the finished stems`);
    const at = start + found / rate;
    t.diagnostic(`${name}: heard ${at.toFixed(5)} s, clock ${cap.position.toFixed(5)} s`);
    // The issue allows ±50 ms; the engine schedules to the sample.
    assert.ok(Math.abs(at - cap.position) < 0.002,
      `${name}: heard ${at.toFixed(4)} s of the track where the clock said ${cap.position.toFixed(4)} s`);
  }
  assert.deepEqual(errors, []);
  await page.close();
});
