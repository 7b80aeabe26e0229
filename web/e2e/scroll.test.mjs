// A library of 10,000 tracks (generated WAV files, scanned by the real
// station): the track list fetches pages as it scrolls and keeps only the rows
// on screen in the page, so that it scrolls as smoothly with 10,000 tracks as
// with ten.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as h from './harness.mjs';

const TRACKS = 10000;
const dir = await mkdtemp(join(tmpdir(), 'sonantica-e2e-10k-'));
// 0.1 s of quiet 8 kHz stereo: "Track 00000" … "Track 09999" (titles from the names).
const wav = h.sineWav(0.1, -30, 8000, { hz: 200 });
for (let i = 0; i < TRACKS; i++) await writeFile(join(dir, `Track ${String(i).padStart(5, '0')}.wav`), wav);
const server = await h.startServer({ library: dir });
const browser = await h.launchBrowser();
after(async () => {
  await browser.close();
  server.child.kill();
});

test('10,000 tracks: the list holds only the rows on screen, fetches pages as it scrolls, and reaches the last track', async () => {
  for (let i = 0; i < 600 && (await h.get(server.base, '/api/tracks?limit=1')).total < TRACKS; i++) {
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal((await h.get(server.base, '/api/tracks?limit=1')).total, TRACKS);
  const { page, errors } = await h.login(browser, server.base, { width: 1280, height: 900 }, '#/tracks');
  await page.waitForSelector('#tracks li');
  assert.match(await page.textContent('#view-title'), /Tracks \(10000\)/);
  const rows = () => page.$$eval('#tracks li', (els) => els.map((li) => li.querySelector('.title').textContent));
  const first = await rows();
  assert.equal(first[0], 'Track 00000');
  assert.ok(first.length < 60, `${first.length} rows in the page`);
  // Scroll through the list in big jumps: each stop shows the tracks that
  // belong there, with never more than a screenful (plus margins) of rows.
  const requests = [];
  page.on('request', (r) => { if (r.url().includes('/api/tracks?')) requests.push(new URL(r.url()).searchParams.get('offset')); });
  for (const at of [1234, 5000, 8765, TRACKS - 1]) {
    await page.$eval('.scroller', (s, at) => {
      const rowH = s.querySelector('#tracks li').getBoundingClientRect().height;
      s.scrollTop = at * rowH;
    }, at);
    const want = `Track ${String(at).padStart(5, '0')}`;
    await page.waitForFunction((want) => [...document.querySelectorAll('#tracks li .title')].some((e) => e.textContent === want), want, { timeout: 10000 });
    const shown = await rows();
    assert.ok(shown.length < 60, `${shown.length} rows in the page at ${at}`);
    const numbers = shown.map((t) => Number(t.slice(6)));
    assert.ok(numbers.every((n, i) => i === 0 || n === numbers[i - 1] + 1), `rows in order at ${at}: ${numbers[0]}…`);
  }
  assert.ok(requests.length >= 4 && requests.length <= 12, `pages fetched: ${requests}`);
  // The last row can be played like any other.
  await page.locator('#tracks li', { hasText: 'Track 09999' }).locator('button.title').click();
  await page.waitForFunction(() => window.studio.current?.title === 'Track 09999');
  assert.deepEqual(errors, []);
  await page.close();
});
