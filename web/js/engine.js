// The playback engine: tracks stream from the station (`/api/tracks/{id}/stream`)
// already at the audio context's rate, and their samples are scheduled as
// buffers back to back into the worklet. So a track starts on the sample after
// the previous one ends (gapless), stems stay on one clock, and a seek or a
// pause is exact. Only what plays in the next few seconds is held in memory.

const AHEAD_S = 8; // how far ahead samples are scheduled
const CHUNK_S = 0.25; // one scheduled buffer
const LEAD_S = 0.08; // from a click to the first sample
// Stems still being separated (a live item) can run out ahead of the
// listener: below LOW_S scheduled the clock stops ("separating…"), and it
// starts again once RESUME_S are scheduled or the stream has ended.
const LOW_S = 0.25;
const RESUME_S = 2;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// One item streaming: its samples from `from` seconds, scheduled from
/// `when` (context time, or as soon as the first samples arrive).
class Feed {
  constructor(engine, item, from, when) {
    this.engine = engine;
    this.item = item;
    this.from = from;
    this.when = when;
    this.t0 = null; // context time at which `from` plays
    this.end = null; // context time of the last sample, once all have arrived
    this.next = null;
    this.sources = new Set();
    this.abort = new AbortController();
    this.guard = item.live ? setInterval(() => engine.checkBuffer(this), 50) : null;
    this.done = this.run().catch((e) => {
      if (!this.abort.signal.aborted) engine.onError?.(item, e);
    }).finally(() => clearInterval(this.guard));
  }

  url() {
    const { ctx } = this.engine;
    const q = new URLSearchParams({ rate: String(ctx.sampleRate), start_s: this.from.toFixed(6) });
    if (this.item.model) q.set('model', this.item.model);
    return `/api/tracks/${this.item.id}/stream?${q}`;
  }

  async run() {
    const { ctx } = this.engine;
    const res = await this.engine.fetch(this.url(), { signal: this.abort.signal });
    const reader = res.body.getReader();
    let pending = new Uint8Array(0);
    let channels = 0;
    const append = (bytes) => {
      const merged = new Uint8Array(pending.length + bytes.length);
      merged.set(pending);
      merged.set(bytes, pending.length);
      pending = merged;
    };
    for (;;) {
      const { done, value } = await reader.read();
      if (this.abort.signal.aborted) return;
      if (value) append(value);
      if (!channels && pending.length >= 44) {
        const v = new DataView(pending.buffer, pending.byteOffset, 44);
        channels = v.getUint16(22, true);
        if (v.getUint32(24, true) !== ctx.sampleRate) throw new Error('the stream is not at the player\'s rate');
        pending = pending.slice(44);
      }
      const frameBytes = 4 * channels;
      const chunk = Math.round(CHUNK_S * ctx.sampleRate) * frameBytes;
      while (channels && (pending.length >= chunk || (done && pending.length >= frameBytes))) {
        const take = Math.min(pending.length - (pending.length % frameBytes), chunk);
        this.schedule(pending.subarray(0, take), channels);
        pending = pending.slice(take);
        // Hold back while enough is scheduled (a suspended context holds time still).
        while (this.next - ctx.currentTime > AHEAD_S && !this.abort.signal.aborted) await sleep(200);
        if (this.abort.signal.aborted) return;
      }
      if (done) break;
    }
    this.end = this.next ?? Math.max(this.when ?? 0, ctx.currentTime);
    this.engine.fed(this);
  }

  schedule(bytes, channels) {
    const { ctx } = this.engine;
    const frames = bytes.length / (4 * channels);
    // Copy to an aligned buffer, then split the interleaved samples.
    const all = new Float32Array(bytes.slice().buffer);
    const buffer = ctx.createBuffer(channels, frames, ctx.sampleRate);
    for (let c = 0; c < channels; c++) {
      const out = buffer.getChannelData(c);
      for (let i = 0, j = c; i < frames; i++, j += channels) out[i] = all[j];
    }
    if (this.next === null) {
      // The first samples: on time if they came in time, else as soon as possible.
      this.next = Math.max(this.when ?? 0, ctx.currentTime + LEAD_S);
      this.t0 = this.next;
    }
    const src = new AudioBufferSourceNode(ctx, { buffer });
    src.connect(this.engine.input());
    src.start(this.next);
    src.onended = () => this.sources.delete(src);
    this.sources.add(src);
    this.next += frames / ctx.sampleRate;
  }

  cancel() {
    clearInterval(this.guard);
    this.abort.abort();
    for (const s of this.sources) { try { s.stop(); } catch { /* not started */ } s.disconnect(); }
    this.sources.clear();
  }
}

/// Items are `{ id, model, channels, duration, live }`: a track, or a track's
/// stems of one model (model set), `live` while they are still being made. `compatible(a, b)` says whether b can follow a
/// on the same worklet (same channels and mode).
export class Engine {
  constructor(ctx, { input, fetch, compatible, onStart, onEnded, onError, onJunction, onBuffering }) {
    Object.assign(this, { ctx, input, fetch, compatible, onStart, onEnded, onError, onJunction, onBuffering });
    this.buffering = false; // the clock is held for a live stream to catch up
    this.feeds = []; // the playing feed first, then the one that follows it
    this.item = null;
    this.at = 0; // position while nothing is scheduled
    this.paused = true;
    this.upNext = null; // () => the item to follow the current one, or null
    this.timers = new Set();
  }

  /// Where the playing item is, in seconds.
  get position() {
    const f = this.feeds[0];
    if (!f || f.t0 === null) return this.at;
    return Math.max(f.from, f.from + (this.ctx.currentTime - f.t0));
  }

  stopAll() {
    this.buffered();
    for (const f of this.feeds) f.cancel();
    this.feeds = [];
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /// Makes `item` the current one at `at` seconds, paused.
  load(item, at = 0) {
    this.stopAll();
    this.item = item;
    this.at = at;
    this.paused = true;
  }

  async play() {
    if (!this.item) return;
    if (!this.feeds.length) this.feeds = [new Feed(this, this.item, this.at, null)];
    this.paused = false;
    this.buffered();
    await this.ctx.resume();
  }

  async pause() {
    this.paused = true;
    this.buffered();
    this.at = this.position;
    await this.ctx.suspend();
  }

  /// A live feed's stream fell behind (or caught up): the clock stops, so
  /// nothing plays out of turn and the position holds, until enough is
  /// scheduled again. Only the playing feed counts.
  checkBuffer(feed) {
    if (feed !== this.feeds[0] || this.paused) return;
    const ahead = feed.next === null ? 0 : feed.next - this.ctx.currentTime;
    if (!this.buffering && feed.end === null && ahead < LOW_S) {
      this.buffering = true;
      this.ctx.suspend();
      this.onBuffering?.(true);
    } else if (this.buffering && (ahead >= RESUME_S || feed.end !== null)) {
      this.buffered();
    }
  }

  /// No longer holding the clock for a stream: it runs again unless paused.
  buffered() {
    if (!this.buffering) return;
    this.buffering = false;
    if (!this.paused) this.ctx.resume();
    this.onBuffering?.(false);
  }

  seek(t) {
    const at = Math.max(0, Math.min(t, (this.item?.duration ?? t) - 0.05));
    this.stopAll();
    this.at = at;
    if (!this.paused) this.feeds = [new Feed(this, this.item, at, null)];
  }

  /// What follows the playing item changed (the queue, repeat): the one
  /// streaming to follow it, if any, is dropped and chosen again.
  replan() {
    const [playing, ...following] = this.feeds;
    if (!playing || !following.length) return;
    for (const f of following) f.cancel();
    this.feeds = [playing];
    if (playing.end !== null) this.fed(playing);
  }

  // ---- from the feeds ----

  /// A feed has all its samples scheduled: the next item can start streaming,
  /// to begin on the sample after this one's last.
  fed(feed) {
    if (feed !== this.feeds[0]) return;
    const next = this.upNext?.();
    const wait = (t) => Math.max(0, (t - this.ctx.currentTime) * 1000);
    if (next && this.compatible(feed.item, next)) {
      const follow = new Feed(this, next, 0, feed.end);
      this.feeds.push(follow);
      this.onJunction?.(feed.end, next);
      this.later(wait(feed.end), () => {
        if (this.feeds[1] !== follow) return;
        this.feeds.shift();
        this.item = next;
        this.onStart?.(next);
        // Fully streamed already (a short track): chain what follows it now.
        if (follow.end !== null) this.fed(follow);
      });
    } else {
      this.watch(feed, next);
    }
  }

  /// Calls onEnded when `feed` has played out (and nothing follows on it).
  watch(feed, next = null) {
    const check = () => {
      if (!this.feeds.includes(feed)) return;
      if (feed.end === null) return;
      if (this.ctx.currentTime >= feed.end) {
        this.feeds = this.feeds.filter((f) => f !== feed);
        if (!this.feeds.length) { this.at = 0; this.paused = true; this.onEnded?.(next); }
      } else {
        this.later(Math.max(20, (feed.end - this.ctx.currentTime) * 1000), check);
      }
    };
    check();
  }

  later(ms, f) {
    const t = setTimeout(() => { this.timers.delete(t); f(); }, ms);
    this.timers.add(t);
  }
}
