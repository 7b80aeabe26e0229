// The Studio as a player: a generated library of three albums (covers embedded
// and beside the files, two discs, album artists) scanned by the real station
// and browsed in chromium by album, artist and search; the queue and loudness
// normalisation measured on the worklet's output; the Inspector and its
// spectrum after many track and layout changes; phone and tablet layouts; the
// address keeping track, position and mix over a refresh; and the page riding
// out a station restart. Writes docs/screenshots/{albums,album,jobs}-*.png.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as h from './harness.mjs';
import { SHOTS, sineWav } from './harness.mjs';
import { makeLibrary } from './fixture.mjs';

const libraryDir = await mkdtemp(join(tmpdir(), 'sonantica-e2e-library-'));
const albums = await makeLibrary(libraryDir);
let server = await h.startServer({ library: libraryDir });
const browser = await h.launchBrowser();
after(async () => {
  await browser.close();
  server.child.kill();
});
await mkdir(SHOTS, { recursive: true });

const login = (viewport, hash) => h.login(browser, server.base, viewport, hash);
const DESKTOP = { width: 1280, height: 900 };
const TABLET = { width: 820, height: 1180 };
const PHONE = { width: 390, height: 844 };

/// Waits until the station has catalogued the scanned library.
async function catalogued() {
  for (let i = 0; i < 100; i++) {
    const page = await h.get(server.base, '/api/albums');
    if (page.total === albums.length) return page.items;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the library was never catalogued');
}

/// The mean colour of an <img> on the page (drawn into a canvas).
const meanColour = (page, selector) => page.$eval(selector, (img) => {
  const c = document.createElement('canvas');
  c.width = 16; c.height = 16;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0, 16, 16);
  const d = g.getImageData(0, 0, 16, 16).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) sum[k] += d[i + k];
  return sum.map((v) => Math.round(v / 256));
});

const RGB = { steelblue: [70, 130, 180], darkred: [139, 0, 0], darkgreen: [0, 100, 0] };

test('albums are ordered by artist with their covers; an album plays in disc and track order', async () => {
  const listed = await catalogued();
  assert.deepEqual(listed.map((a) => a.title), ['Quiet Rooms', 'Legends of the North', 'Battle Hymns']);
  const { page, errors } = await login(DESKTOP, '#/albums');
  await page.waitForSelector('#albums li img.cover');
  assert.deepEqual(await page.$$eval('#albums a.album strong', (els) => els.map((e) => e.textContent)),
    ['Quiet Rooms', 'Legends of the North', 'Battle Hymns']);
  // Each cover is the picture that album carries (embedded, cover.jpg, front.png).
  await page.waitForFunction(() => [...document.querySelectorAll('#albums img.cover')].every((i) => i.complete && i.naturalWidth > 0));
  for (const [i, a] of listed.entries()) {
    const want = RGB[albums.find((x) => x.album === a.title).colour];
    const got = await meanColour(page, `#albums li:nth-child(${i + 1}) img.cover`);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(got[k] - want[k]) < 12, `${a.title}: cover ${got} is not ${want}`);
    assert.ok(await page.$eval(`#albums li:nth-child(${i + 1}) img.cover`, (img) => img.naturalWidth <= 600), 'covers are resized to 600 px at most');
  }
  await page.screenshot({ path: join(SHOTS, 'albums-1280.png') });

  await page.click('#albums a.album:has-text("Legends of the North")');
  await page.waitForSelector('.album-head');
  assert.equal(await page.evaluate(() => location.hash.split('?')[0]), `#/album/${listed[1].id}`);
  const rows = await page.$$eval('#tracks li', (els) => els.map((li) => (li.classList.contains('disc')
    ? li.textContent : `${li.querySelector('.no').textContent} ${li.querySelector('.title').textContent}`)));
  assert.deepEqual(rows, ['Disc 1', '1 Frozen Fjord', '2 Long Night', 'Disc 2', '1 Dawn Over Ice', '2 The Last Saga']);
  assert.match(await page.textContent('.album-head'), /2019 · Folk · 4 tracks · 2 discs · 0:16/);
  await page.screenshot({ path: join(SHOTS, 'album-1280.png') });

  // Play: the queue is the album in order, and Next walks it.
  await page.click('.album-head button:has-text("Play")');
  await page.waitForFunction(() => window.studio.current?.title === 'Frozen Fjord');
  assert.deepEqual(await page.$$eval('#queue li .title', (els) => els.map((e) => e.textContent)),
    ['Frozen Fjord', 'Long Night', 'Dawn Over Ice', 'The Last Saga']);
  // The playing track cannot be removed from under itself; the others can.
  assert.equal(await page.$$eval('#queue li[aria-current="true"] .remove', (els) => els.length), 0);
  assert.equal(await page.$$eval('#queue li .remove', (els) => els.length), 3);
  await page.click('#next');
  await page.waitForFunction(() => window.studio.current?.title === 'Long Night');
  // Play next puts a track right after the playing one.
  await page.click('#views a[data-view="tracks"]');
  await page.locator('#tracks li', { hasText: 'Siege' }).locator('button.next').click();
  assert.deepEqual(await page.$$eval('#queue li .title', (els) => els.map((e) => e.textContent)),
    ['Frozen Fjord', 'Long Night', 'Siege', 'Dawn Over Ice', 'The Last Saga']);
  await page.click('#next');
  await page.waitForFunction(() => window.studio.current?.title === 'Siege');
  assert.deepEqual(errors, []);
  await page.close();
});

test('artist pages list the artist\'s albums and tracks; track artists get their own page', async () => {
  const { page, errors } = await login(DESKTOP, '#/artists');
  await page.waitForSelector('#artists li');
  const names = await page.$$eval('#artists li a', (els) => els.map((e) => e.textContent));
  for (const name of ['Aurora Ensemble', 'Kai Westlund', 'Various Artists']) assert.ok(names.includes(name), `${name} in ${names}`);
  await page.click('#artists a:text("Kai Westlund")');
  await page.waitForSelector('#albums a.album');
  assert.deepEqual(await page.$$eval('#albums a.album strong', (els) => els.map((e) => e.textContent)), ['Legends of the North']);
  assert.equal(await page.$$eval('#tracks li', (els) => els.length), 4);
  await page.goto(`${server.base}/#/artist/Anna%20Berg`);
  await page.waitForSelector('#view-title:text("Anna Berg")');
  await page.waitForSelector('#tracks li');
  assert.deepEqual(await page.$$eval('#tracks li .title', (els) => els.map((e) => e.textContent)), ['Siege']);
  assert.deepEqual(errors, []);
  await page.close();
});

test('search finds words in any order across artist, album, genre and title, best match first', async () => {
  const { page, errors } = await login(DESKTOP, '#/albums');
  await page.waitForSelector('#albums');
  const search = async (q) => {
    await page.fill('#q', q);
    await page.press('#q', 'Enter');
    // The view of this search (not the last one's rows, still on screen
    // until the new results arrive).
    await page.waitForFunction((q) => document.querySelector('#view-title').textContent.startsWith(`Search: ${q}`)
      && !document.querySelector('#view').hasAttribute('aria-busy'), q);
    return page.$$eval('#tracks li .title', (els) => els.map((e) => e.textContent));
  };
  // Artist and album words, in the other order (the report: "westlund legends" found nothing).
  assert.deepEqual((await search('north westlund')).sort(), ['Dawn Over Ice', 'Frozen Fjord', 'Long Night', 'The Last Saga']);
  assert.deepEqual((await search('legends westl')).length, 4, 'word prefixes match');
  assert.equal((await search('saga north'))[0], 'The Last Saga');
  assert.deepEqual(await search('ambient wool'), ['Wool'], 'genre and title');
  // A search is a selection to separate.
  assert.equal(await page.textContent('#view .separate-all'), 'Separate all (1)');
  assert.deepEqual(await search('various siege'), ['Siege'], 'album artist and title');
  assert.deepEqual(await search('nothing like this'), []);
  assert.match(await page.textContent('#view'), /Nothing matches/);
  assert.deepEqual(errors, []);
  await page.close();
});

/// The peak of the played output (after normalisation) over 8192 frames, in dBFS.
async function playedPeakDb(page) {
  return page.evaluate(async () => {
    const d = await window.studio.capture(8192);
    let peak = 0;
    for (const q of d.played) for (const ch of q) for (const v of ch) peak = Math.max(peak, Math.abs(v));
    return 20 * Math.log10(peak);
  });
}

test('loudness normalisation: tracks at -10 and -25 LUFS both play at -18 LUFS', async () => {
  // A 1 kHz stereo sine at P dBFS peak reads P LUFS (EBU Tech 3341 case 1), so
  // the peak of what plays is its loudness.
  const loud = await h.upload(server.base, 'Loud sine.wav', sineWav(8, -10));
  const quiet = await h.upload(server.base, 'Quiet sine.wav', sineWav(8, -25));
  for (const t of [loud, quiet]) {
    for (let i = 0; i < 100 && (await h.get(server.base, `/api/tracks/${t.id}`)).analysis_status !== 'done'; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const { page, errors } = await login(DESKTOP, '#/recent');
  for (const [t, lufs] of [[loud, -10], [quiet, -25]]) {
    await page.locator(`#tracks li[data-id="${t.id}"] button.title`).click();
    await page.waitForFunction((id) => window.studio.current?.id === id && !window.studio.player.paused
      && window.studio.player.currentTime > 0.5, t.id);
    const peak = await playedPeakDb(page);
    assert.ok(Math.abs(peak - -18) < 0.5, `${lufs} LUFS track plays at ${peak.toFixed(2)} dBFS`);
    assert.match(await page.textContent('#bar-norm'), new RegExp(`^${lufs === -10 ? '−8\\.0' : '\\+7\\.0'} dB to -18 LUFS \\(track\\)`));
  }
  // Off: the file as it is.
  await page.selectOption('#norm-mode', 'off');
  await page.waitForTimeout(200);
  const peak = await playedPeakDb(page);
  assert.ok(Math.abs(peak - -25) < 0.1, `unnormalised ${peak}`);
  await page.selectOption('#norm-mode', 'track');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the Inspector after five track changes and two layout changes reads a -20 dBFS sine, from one meter stream, with its spectrum peak at 1 kHz', async () => {
  const sine = await h.upload(server.base, 'Inspector sine.wav', sineWav(30, -20));
  const stems = await h.upload(server.base, 'Stems for layouts.wav', sineWav(6, -12, 44100, { hz: 220 }));
  await h.separate(server.base, stems);
  const { page, errors } = await login(DESKTOP, '#/recent');
  const pick = async (t) => {
    await page.locator(`#tracks li[data-id="${t.id}"] button.title`).click();
    await page.waitForFunction((id) => window.studio.current?.id === id, t.id);
    await page.waitForTimeout(400);
  };
  await pick(sine);
  await pick(stems);
  await page.waitForSelector('#mixer:not([hidden]) #strips .strip');
  const layouts = await page.$$eval('#layout option', (os) => os.map((o) => o.value));
  assert.ok(layouts.includes('mono'), `${layouts}`);
  await page.selectOption('#layout', 'mono');
  await page.waitForTimeout(400);
  await page.selectOption('#layout', 'stereo');
  await page.waitForTimeout(400);
  await pick(sine);
  await pick(stems);
  await pick(sine);
  await page.waitForFunction(() => window.studio.lastReadings && window.studio.lastReadings[0] > 5, null, { timeout: 30000 });
  const [, momentary, shortTerm, , , truePeak, samplePeak] = await page.evaluate(() => window.studio.lastReadings);
  assert.ok(Math.abs(momentary - -20) < 0.3, `momentary ${momentary}`);
  assert.ok(Math.abs(shortTerm - -20) < 0.3, `short-term ${shortTerm}`);
  assert.ok(Math.abs(samplePeak - -20) < 0.1, `sample peak ${samplePeak}`);
  assert.ok(Math.abs(truePeak - -20) < 0.3, `true peak ${truePeak}`);
  // One worklet posts: the live count from the worklet's shared scope.
  const live = [];
  for (let i = 0; i < 10; i++) { live.push(await page.evaluate(() => window.studio.live)); await page.waitForTimeout(100); }
  assert.deepEqual(live, Array(10).fill(1), 'meter streams posting');
  // The screen says what the meter says, in range.
  assert.equal(await page.textContent('#m-mom output'), `${momentary.toFixed(1)} LUFS`);
  const spectrum = await page.evaluate(() => {
    const s = window.studio.lastSpectrum;
    return { lo: s.lo, hi: s.hi, levels: Array.from(s.levels) };
  });
  const n = spectrum.levels.length;
  const top = spectrum.levels.reduce((b, v, i, a) => (v > a[b] ? i : b), 0);
  const edge = (i) => spectrum.lo * (spectrum.hi / spectrum.lo) ** (i / n);
  assert.ok(edge(top) <= 1000 && 1000 < edge(top + 1), `spectrum peak in ${edge(top)}..${edge(top + 1)} Hz`);
  assert.ok(Math.abs(spectrum.levels[top] - -20) < 1.5, `spectrum peak ${spectrum.levels[top]} dBFS`);
  await page.screenshot({ path: join(SHOTS, 'inspector-1280.png'), fullPage: true });
  // Paused, nothing reads below the meter's floor as a number.
  await page.click('#play');
  await page.waitForTimeout(1500);
  for (const id of ['#m-mom', '#m-short']) {
    const text = await page.textContent(`${id} output`);
    assert.ok(/^(−∞ LUFS|-?\d+\.\d LUFS|–)$/.test(text) && !/-\d{3,}/.test(text), `${id} shows ${text}`);
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('jobs: an album separated with a chosen model shows in the jobs panel, a queued job cancels, the rest finish', async () => {
  const album = (await catalogued()).find((a) => a.title === 'Quiet Rooms');
  const { page, errors } = await login(DESKTOP, `#/album/${album.id}`);
  await page.waitForSelector('.album-head');
  // Both fixture models are installed: the job's model is chosen on the page.
  assert.deepEqual(await page.$$eval('#model-choice option', (os) => os.map((o) => o.value)).then((v) => v.sort()),
    (await h.get(server.base, '/api/models')).filter((m) => m.installed).map((m) => m.name).sort());
  await page.selectOption('#model-choice', 'six');
  await page.click('.album-head button:has-text("Separate album")');
  // The page queues the album one track at a time; the toast comes after the
  // last request, and only then are all three jobs on the server (the panel
  // may already list an earlier test's job, so its first row proves nothing).
  await page.waitForSelector('.toast:has-text("separations queued")');
  await page.click('#views a[data-view="jobs"]');
  await page.waitForSelector('#jobs li');
  const jobs = await h.get(server.base, '/api/jobs?limit=3');
  assert.equal(jobs.length, 3);
  assert.ok(jobs.every((j) => j.model === 'six'), JSON.stringify(jobs.map((j) => j.model)));
  // Cancel the last one while it waits (one job runs at a time).
  const last = jobs.find((j) => j.status === 'queued');
  if (last) {
    await page.click(`#jobs li[data-id="${last.id}"] button.cancel`);
    await page.waitForSelector(`#jobs li[data-id="${last.id}"][data-status="cancelled"]`);
  }
  await page.screenshot({ path: join(SHOTS, 'jobs-1280.png') });
  // The others finish, and the panel says so without a reload.
  for (const j of jobs.filter((x) => x.id !== last?.id)) {
    await page.waitForSelector(`#jobs li[data-id="${j.id}"][data-status="done"]`, { timeout: 120000 });
  }
  assert.equal(await page.textContent('#jobs-badge'), '', 'no job is active');
  await page.click('#views a[data-view="albums"]');
  await page.click('#albums a.album:has-text("Quiet Rooms")');
  await page.waitForSelector('.album-head');
  const badges = await page.$$eval('#tracks li .badge', (els) => els.map((e) => e.textContent));
  assert.equal(badges.filter((b) => b === 'separated').length, last ? 2 : 3);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the keyboard: Space pauses what Enter started, arrows seek, the skip link reaches the player, nothing throws', async () => {
  const { page, errors } = await login(DESKTOP, '#/tracks');
  await page.waitForSelector('#tracks li');
  // Space with nothing chosen says so instead of throwing.
  await page.keyboard.press('Space');
  await page.waitForSelector('.toast:has-text("Choose a track")');
  await page.locator('#tracks li', { hasText: 'Inspector sine' }).locator('button.title').focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => !window.studio.player.paused && window.studio.player.currentTime > 0.3);
  await page.keyboard.press('Space');
  await page.waitForFunction(() => window.studio.player.paused);
  const at = await page.evaluate(() => window.studio.player.currentTime);
  await page.keyboard.press('ArrowRight');
  const seeked = await page.evaluate(() => window.studio.player.currentTime);
  assert.ok(Math.abs(seeked - at - 5) < 0.5, `ArrowRight from ${at} to ${seeked}`);
  await page.keyboard.press('Space');
  await page.waitForFunction(() => !window.studio.player.paused);
  // From the top of a fresh page: Tab reaches the skip link first, and it leads
  // to the player (the view stays where it was).
  await page.reload();
  await page.waitForSelector('#tracks li');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to the player');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'bar-title');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'prev');
  assert.match(await page.evaluate(() => location.hash), /^#\/tracks/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('gapless: a sine split into two tracks plays across the junction with no gap and no click', async () => {
  const probe = await browser.newPage();
  const rate = await probe.evaluate(() => new AudioContext().sampleRate);
  await probe.close();
  // One continuous 1 kHz sine at -12 dBFS, cut into 3 s and 2 s at a sample
  // that is not on a zero crossing.
  const first = Math.round(3 * rate) + 17;
  const a = await h.upload(server.base, 'Gapless part 1.wav', sineWav(first / rate, -12, rate));
  const b = await h.upload(server.base, 'Gapless part 2.wav', sineWav(2, -12, rate, { phase0: first }));
  for (const t of [a, b]) {
    for (let i = 0; i < 100 && (await h.get(server.base, `/api/tracks/${t.id}`)).analysis_status !== 'done'; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const tracks = [await h.get(server.base, `/api/tracks/${a.id}`), await h.get(server.base, `/api/tracks/${b.id}`)];
  const { page, errors } = await login(DESKTOP, '#/recent');
  await page.waitForSelector('#tracks li');
  await page.evaluate((ts) => import('/js/player.js').then((p) => p.playList(ts, 0)), tracks);
  await page.waitForFunction((id) => window.studio.current?.id === id && !window.studio.player.paused, a.id);
  // From 1 s before the junction, 2 s of what plays.
  await page.waitForFunction(() => window.studio.player.currentTime > 2.0);
  const { played, after } = await page.evaluate(async () => {
    const d = await window.studio.capture(Math.round(2 * window.studio.ctx.sampleRate));
    const left = d.played.flatMap((q) => Array.from(q[0]));
    return { played: left, after: window.studio.current.id };
  });
  assert.equal(after, b.id, 'the second track is playing after the junction');
  // A pure sine obeys x[i] = 2cos(w)·x[i-1] - x[i-2]: a gap, an overlap or a
  // jump anywhere breaks it by far more than 16-bit rounding does.
  const amp = 10 ** (-12 / 20) * 10 ** (-6 / 20); // normalised to -18 LUFS: 6 dB down
  const k = 2 * Math.cos((2 * Math.PI * 1000) / rate);
  let worst = 0;
  let at = -1;
  for (let i = 2; i < played.length; i++) {
    const e = Math.abs(played[i] - (k * played[i - 1] - played[i - 2]));
    if (e > worst) { worst = e; at = i; }
  }
  let peak = 0;
  for (const v of played) peak = Math.max(peak, Math.abs(v));
  assert.ok(Math.abs(20 * Math.log10(peak / amp)) < 0.5, `peak ${peak}, expected ${amp}`);
  assert.ok(worst < 2e-4, `the sine breaks by ${worst} at frame ${at} of ${played.length}`);
  assert.deepEqual(errors, []);
  await page.close();
});

/// Controls on screen without a name, and how far the page scrolls sideways.
async function layoutProblems(page) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const tree = await page.locator('body').ariaSnapshot();
  const unnamed = tree.split('\n').filter((line) => /^\s*- (button|slider|combobox|meter|link|textbox|searchbox|img|progressbar)\b(?! ")/.test(line));
  const small = await page.evaluate(() => [...document.querySelectorAll('button, input, select, a.button')]
    .filter((e) => e.offsetParent !== null && e.closest('#studio, #player'))
    .map((e) => { const r = e.getBoundingClientRect(); return { e: e.getAttribute('aria-label') || e.textContent || e.id, w: r.width, h: r.height, right: r.right }; })
    .filter((b) => b.right > window.innerWidth + 1 || (window.innerWidth < 900 && Math.max(b.w, b.h) < 44)));
  return { overflow, unnamed, small };
}

test('phones and tablets: no sideways scroll, the now-playing bar after picking a track, every control named', async () => {
  const stems = (await h.get(server.base, '/api/tracks?separated=true')).items[0];
  for (const [viewport, label] of [[PHONE, '390'], [TABLET, '820']]) {
    const { page, errors } = await login(viewport, '#/albums');
    await page.waitForSelector('#albums a.album');
    for (const hash of ['#/albums', '#/tracks', '#/artists', `#/album/${(await catalogued())[1].id}`]) {
      await page.evaluate((hh) => { location.hash = hh; }, hash);
      await page.waitForFunction(() => !document.querySelector('#view').hasAttribute('aria-busy'));
      await page.waitForTimeout(200);
      const p = await layoutProblems(page);
      assert.ok(p.overflow <= 0, `${label} px ${hash}: ${p.overflow} px of sideways scroll`);
      assert.deepEqual(p.unnamed, [], `${label} px ${hash}: unnamed controls`);
      assert.deepEqual(p.small, [], `${label} px ${hash}: controls off screen or under 44 px`);
      if (hash.startsWith('#/album/')) await page.screenshot({ path: join(SHOTS, `album-${label}.png`) });
      if (hash === '#/albums') await page.screenshot({ path: join(SHOTS, `albums-${label}.png`) });
    }
    // Pick a track: the bar at the bottom shows it, within the screen, with play/pause.
    await page.locator('#tracks li button.title').first().click();
    await page.waitForFunction(() => window.studio.current);
    const bar = await page.$eval('#player', (b) => { const r = b.getBoundingClientRect(); return { top: r.top, bottom: r.bottom, h: window.innerHeight }; });
    assert.ok(bar.top >= 0 && bar.bottom <= bar.h + 0.5, `bar at ${bar.top}..${bar.bottom} of ${bar.h}`);
    assert.notEqual(await page.textContent('#bar-track'), 'Nothing playing');
    assert.ok(await page.isVisible('#play'));
    await page.waitForFunction(() => window.studio.lastSpectrum);
    await page.locator('#inspector').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, `inspector-${label}.png`) });
    await page.evaluate(() => { location.hash = '#/jobs'; });
    await page.waitForSelector('#jobs li');
    const pj = await layoutProblems(page);
    assert.ok(pj.overflow <= 0 && !pj.unnamed.length && !pj.small.length, `${label} px jobs: ${JSON.stringify(pj)}`);
    await page.screenshot({ path: join(SHOTS, `jobs-${label}.png`) });
    // The mixer of a separated track fits too.
    await page.evaluate((id) => import('/js/player.js').then((p) => p.load(id)), stems.id);
    await page.waitForSelector('#mixer:not([hidden]) #strips .strip');
    const p = await layoutProblems(page);
    assert.ok(p.overflow <= 0, `${label} px mixer: ${p.overflow} px of sideways scroll`);
    assert.deepEqual(p.unnamed, []);
    assert.deepEqual(p.small, [], `${label} px mixer: controls off screen or under 44 px`);
    await page.screenshot({ path: join(SHOTS, `mixer-${label}.png`), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  }
});

test('a refresh mid-playback comes back to the track, its position and its mix', async () => {
  const stems = (await h.get(server.base, '/api/tracks?separated=true')).items[0];
  const { page, errors } = await login(DESKTOP, '#/separated');
  await page.locator(`#tracks li[data-id="${stems.id}"] button.title`).click();
  await page.waitForSelector('#mixer:not([hidden]) #strips .strip');
  await page.click('button[data-preset="karaoke"]');
  await page.locator('#strips input[aria-label="vocals gain in dB"]').fill('-6');
  await page.click('button[aria-label="Solo bass"]');
  await page.waitForFunction(() => window.studio.player.currentTime > 2.5);
  await page.click('#play'); // pause
  const before = await page.evaluate(() => ({ t: window.studio.player.currentTime, hash: location.hash }));
  assert.match(before.hash, new RegExp(`play=${stems.id}`));
  const shown = () => page.$$eval('#strips .strip', (ss) => ss.map((s) => [s.querySelector('.name').textContent, s.querySelector('output').textContent,
    s.querySelector('.solo').getAttribute('aria-pressed'), s.querySelector('.mute').getAttribute('aria-pressed')]));
  const mix = await shown();
  const queued = await page.$$eval('#queue li .title', (els) => els.map((e) => e.textContent));
  // Browsing elsewhere keeps what plays in the address.
  await page.click('#views a[data-view="albums"]');
  await page.waitForSelector('#albums a.album');
  assert.match(await page.evaluate(() => location.hash), new RegExp(`^#/albums\\?.*play=${stems.id}`));
  await page.reload();
  await page.waitForFunction((id) => window.studio.current?.id === id, stems.id);
  await page.waitForSelector('#mixer:not([hidden]) #strips .strip');
  const t = await page.evaluate(() => window.studio.player.currentTime);
  assert.ok(Math.abs(t - before.t) <= 1, `position ${t} s after the refresh, ${before.t} s before`);
  assert.deepEqual(await shown(), mix);
  assert.deepEqual(mix.find(([n]) => n === 'vocals'), ['vocals', '-6.0 dB', 'false', 'false']);
  assert.deepEqual(mix.find(([n]) => n === 'bass'), ['bass', '0.0 dB', 'true', 'false']);
  // ... and the queue around it.
  assert.deepEqual(await page.$$eval('#queue li .title', (els) => els.map((e) => e.textContent)), queued);
  // And the worklet plays that mix: the engine took it.
  assert.equal(await page.evaluate(() => window.studio.applied), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a stopped station shows a banner, and the page recovers by itself when it is back', async () => {
  const { page, errors } = await login(DESKTOP, '#/albums');
  await page.waitForSelector('#albums a.album');
  const port = new URL(server.base).port;
  server.child.kill();
  await new Promise((r) => server.child.once('exit', r));
  await page.evaluate(() => { location.hash = '#/artists'; });
  await page.waitForSelector('#banner:not([hidden])', { timeout: 10000 });
  assert.match(await page.textContent('#banner'), /cannot be reached/);
  server = await h.startServer({ library: libraryDir, data: server.data, listen: `127.0.0.1:${port}` });
  await page.waitForSelector('#banner', { state: 'hidden', timeout: 15000 });
  // The view that failed loads again, without a reload and still logged in.
  await page.waitForSelector('#artists li', { timeout: 10000 });
  assert.equal(await page.isVisible('#login'), false);
  assert.deepEqual(errors, []);
  await page.close();
});
