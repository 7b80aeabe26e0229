// The Players page: the address Subsonic players enter, setting the Subsonic
// password, and an API key made, shown once, used and revoked, each checked
// against the station's /rest API as a player would call it. At desktop and
// phone widths; writes docs/screenshots/players-{1280,390}.png.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as h from './harness.mjs';
import { SHOTS } from './harness.mjs';

const server = await h.startServer();
const browser = await h.launchBrowser();
after(async () => {
  await browser.close();
  server.child.kill();
});
await mkdir(SHOTS, { recursive: true });

/// A Subsonic call's `subsonic-response`.
const rest = async (method, query) => {
  const res = await fetch(`${server.base}/rest/${method}?f=json&v=1.16.1&c=e2e&${new URLSearchParams(query)}`);
  return (await res.json())['subsonic-response'];
};

test('the Players page sets the Subsonic password and makes and revokes API keys', async () => {
  const { page, errors } = await h.login(browser, server.base, { width: 1280, height: 900 }, '#/players');
  await page.waitForSelector('#subsonic-login');
  assert.equal(await page.textContent('#subsonic-address'), `${server.base}/`);
  assert.equal(await page.inputValue('#subsonic-user'), 'admin');
  assert.equal(await page.getAttribute('#subsonic-password', 'placeholder'), 'not set');
  assert.equal((await rest('ping', { u: 'admin', p: 'sesame' })).error.code, 40, 'no password yet');

  await page.fill('#subsonic-password', 'sesame');
  await page.click('#subsonic-login button');
  await page.waitForSelector('#subsonic-password[placeholder^="set"]');
  assert.equal((await rest('ping', { u: 'admin', p: 'sesame' })).status, 'ok', 'a player signs in with it');

  await page.fill('#key-name', 'Phone (Symfonium)');
  await page.click('#subsonic-key button');
  await page.waitForSelector('#new-key code.secret');
  const key = await page.textContent('#new-key code.secret');
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.equal(await page.textContent('#keys li .title'), 'Phone (Symfonium)');
  assert.equal((await rest('ping', { apiKey: key })).status, 'ok', 'the key signs a player in');
  await page.screenshot({ path: join(SHOTS, 'players-1280.png'), fullPage: true });

  // At a phone's width: nothing wider than the screen, then revoke.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForSelector('#keys li');
  assert.ok(!(await page.textContent('#view')).includes(key), 'the key is shown once only');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page is ${width} px wide at 390`);
  await page.screenshot({ path: join(SHOTS, 'players-390.png'), fullPage: true });
  await page.click('#keys li button');
  await page.waitForSelector('#keys', { state: 'detached' });
  assert.equal((await rest('ping', { apiKey: key })).error.code, 44, 'a revoked key opens nothing');
  assert.deepEqual(errors, []);
});

test('plays, stars and playlists from Subsonic players show in the Studio', async () => {
  const track = await h.upload(server.base, 'Evening Tone.wav', h.sineWav(2, -12));
  const auth = { u: 'admin', p: 'sesame' };
  for (let i = 0; i < 2; i++) assert.equal((await rest('scrobble', { ...auth, id: `tr-${track.id}` })).status, 'ok');
  assert.equal((await rest('star', { ...auth, id: `tr-${track.id}` })).status, 'ok');
  const made = await rest('createPlaylist', { ...auth, name: 'Road trip', songId: `tr-${track.id}` });
  assert.equal(made.playlist.name, 'Road trip');

  const { page, errors } = await h.login(browser, server.base, { width: 1280, height: 900 }, '#/tracks');
  await page.waitForSelector(`#tracks li[data-id="${track.id}"]`);
  const meta = await page.textContent(`#tracks li[data-id="${track.id}"] .meta`);
  assert.match(meta, /★/, meta);
  assert.match(meta, /2 plays/, meta);
  await page.click('#views a[data-view="playlists"]');
  await page.waitForSelector('#playlists li');
  assert.equal(await page.textContent('#playlists li .title'), 'Road trip');
  await page.click('#playlists li .title');
  await page.waitForSelector(`#tracks li[data-id="${track.id}"]`);
  assert.equal(await page.textContent('#view-title'), 'Road trip (1)');
  assert.ok(!(await page.textContent('#view')).includes('null'), 'no empty field shows as "null"');
  await page.setViewportSize({ width: 390, height: 844 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page is ${width} px wide at 390`);
  await page.screenshot({ path: join(SHOTS, 'playlist-390.png') });
  assert.deepEqual(errors, []);
});
