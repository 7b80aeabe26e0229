// The Studio's AudioWorklet: runs sonantica-meter (the Inspector) and
// sonantica-mix (the Stem Engine) compiled to wasm on the audio thread.
//
// Two modes, chosen by processorOptions.mode (the same processor renders the
// Studio's live output and its offline channel check, in an OfflineAudioContext):
// - "track": input = the track's channels; they pass through unchanged and are
//   measured.
// - "stems": input = every stem on one clock (8 channels: four stereo stems, or
//   12 for six), mixed by the Stem Engine to the output layout, which is measured;
//   each stem also has its own meter for its fader's level display.
//
// The module is compiled on the main thread and passed in processorOptions; the
// processor copies each 128-frame quantum into the module's memory, calls
// `process`, and copies the result out. Readings (with the spectrum) are posted
// to the page about 20 times a second.
//
// Loudness normalisation ({type: 'gain'}) scales the output after it has been
// measured: the Inspector reads the file (or the mix) as it is, the listener
// hears it at the target loudness.

const Q = 128;
const READINGS = 12;
const BANDS = 96; // sonantica_wasm::SPECTRUM_BANDS
const RAMP_S = 0.05; // gain changes glide over 50 ms (no click)

// When each processor of this audio context last posted readings (the scope is
// shared by all of them): every post says how many posted in the last 200 ms,
// so the page (and its tests) can see that only one meter stream is live.
const lastPosts = new Map();
let nextId = 1;

class SonanticaProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.mode = o.mode;
    this.channels = o.channels; // output channels
    this.stems = o.stems || 0;
    this.instance = new WebAssembly.Instance(o.module, {});
    this.x = this.instance.exports;
    this.meter = this.x.son_meter_new(sampleRate, Math.min(this.channels, 8));
    this.engine = 0;
    this.stemMeters = [];
    if (this.mode === 'stems') {
      this.engine = this.x.son_engine_new(this.stems, this.channels, sampleRate);
      for (let k = 0; k < this.stems; k++) this.stemMeters.push(this.x.son_meter_new(sampleRate, 2));
      // The mix's settings at creation (a new layout or track, an offline
      // render) take effect at once, without the gain ramps.
      if (o.settings) {
        this.apply(o.settings);
        this.x.son_engine_reset(this.engine);
      }
    }
    this.id = nextId++;
    this.events = [];
    this.frames = 0;
    this.nextPost = 0;
    this.gain = o.gain ?? 1; // normalisation, linear
    this.target = this.gain;
    this.step = 0;
    this.spectrumHi = this.x.son_meter_spectrum_hi_hz(this.meter);
    this.port.onmessage = (e) => this.command(e.data);
  }

  /// Hands a whole sonantica_mix::MixSettings (the object the page also posts
  /// to /api/tracks/{id}/mix) to the Stem Engine, which applies it in one place.
  apply(settings) {
    // ASCII JSON (anything else \u-escaped): an AudioWorkletGlobalScope need
    // not have a TextEncoder.
    const json = JSON.stringify(settings)
      .replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const ptr = this.x.son_engine_settings_buffer(this.engine, json.length);
    let status = -1;
    if (ptr) {
      const bytes = new Uint8Array(this.x.memory.buffer, ptr, json.length);
      for (let i = 0; i < json.length; i++) bytes[i] = json.charCodeAt(i);
      status = this.x.son_engine_apply(this.engine);
    }
    this.port.postMessage({ type: 'applied', status });
  }

  command(m) {
    const x = this.x;
    switch (m.type) {
      case 'settings': if (this.engine) this.apply(m.settings); break;
      case 'at':
        // At a junction between two tracks (gapless): fresh meters and the new
        // track's gain from context frame `frame` on.
        this.events.push(m);
        break;
      case 'gain':
        // A straight glide from where the gain is to the new target.
        this.target = m.gain;
        this.step = (this.target - this.gain) / Math.max(1, RAMP_S * sampleRate);
        break;
      case 'capture':
        // The next `frames` frames of input and output, for the browser tests
        // (and anyone who wants to see what the worklet computes).
        this.capture = { left: m.frames, inputs: [], outputs: [], played: [] };
        break;
      case 'stop':
        // Replaced by a new node: stop measuring and posting for good (a
        // disconnected node otherwise keeps running and posting its readings).
        this.stopped = true;
        break;
      default: break;
    }
  }

  /// Applies the junction events that fall in the next `n` frames.
  due(n) {
    const x = this.x;
    this.events = this.events.filter((e) => {
      if (e.frame >= currentFrame + n) return true;
      if (e.reset) {
        x.son_meter_reset(this.meter);
        for (const s of this.stemMeters) x.son_meter_reset(s);
        this.frames = 0;
        this.nextPost = 0;
      }
      if (e.gain != null) { this.gain = e.gain; this.target = e.gain; this.step = 0; }
      return false;
    });
  }

  view(ptr, n) {
    return new Float32Array(this.x.memory.buffer, ptr, n);
  }

  readings(meter) {
    const r = new Float64Array(this.x.memory.buffer, this.x.son_meter_readings(meter), READINGS);
    return Array.from(r);
  }

  process(inputs, outputs) {
    if (this.stopped) {
      lastPosts.delete(this.id);
      return false;
    }
    const input = inputs[0] || [];
    const output = outputs[0];
    const n = output[0] ? output[0].length : Q;
    const x = this.x;
    if (this.events.length) this.due(n);
    if (this.mode === 'stems') {
      for (let k = 0; k < 2 * this.stems; k++) {
        const buf = this.view(x.son_engine_input(this.engine, k), n);
        const src = input[k] || input[k % 2] || null;
        if (src) buf.set(src); else buf.fill(0);
      }
      for (let k = 0; k < this.stems; k++) {
        for (let side = 0; side < 2; side++) {
          this.view(x.son_meter_input(this.stemMeters[k], side), n)
            .set(this.view(x.son_engine_input(this.engine, 2 * k + side), n));
        }
        x.son_meter_process(this.stemMeters[k], n);
      }
      x.son_engine_process(this.engine, n);
      for (let c = 0; c < output.length; c++) {
        const out = this.view(x.son_engine_output(this.engine, c), n);
        output[c].set(out);
        if (c < 8) this.view(x.son_meter_input(this.meter, c), n).set(out);
      }
    } else {
      for (let c = 0; c < output.length; c++) {
        const src = input[c] || input[0];
        if (src) output[c].set(src); else output[c].fill(0);
        if (c < 8) this.view(x.son_meter_input(this.meter, c), n).set(output[c]);
      }
    }
    x.son_meter_process(this.meter, n);
    // `outputs` in a capture: the mix (or track) as measured; `played`: what
    // goes to the speakers, after normalisation.
    const cap = this.capture;
    if (cap) {
      cap.frame ??= currentFrame; // the context frame of the first one
      cap.inputs.push(Array.from(input, (ch) => Float32Array.from(ch)));
      cap.outputs.push(Array.from(output, (ch) => Float32Array.from(ch)));
    }
    // Normalisation after the meters (a glide towards the target gain).
    if (this.gain !== this.target || this.gain !== 1) {
      const { step } = this;
      for (let i = 0; i < n; i++) {
        if (this.gain !== this.target) {
          this.gain += step;
          if ((step > 0 && this.gain > this.target) || (step < 0 && this.gain < this.target)) this.gain = this.target;
        }
        for (let c = 0; c < output.length; c++) output[c][i] *= this.gain;
      }
    }
    if (cap) {
      cap.played.push(Array.from(output, (ch) => Float32Array.from(ch)));
      cap.left -= n;
      if (cap.left <= 0) {
        this.capture = null;
        this.port.postMessage({ type: 'capture', frame: cap.frame, inputs: cap.inputs, outputs: cap.outputs, played: cap.played, gain: this.gain });
      }
    }
    this.frames += n;
    if (this.frames >= this.nextPost) {
      const every = Math.round(sampleRate / 20);
      this.nextPost = this.frames + every;
      const count = x.son_meter_goniometer(this.meter, 512);
      const points = new Float32Array(this.view(x.son_meter_points(this.meter), 2 * count));
      const bands = new Float32Array(this.view(x.son_meter_spectrum(this.meter, every / sampleRate), 2 * BANDS));
      lastPosts.set(this.id, currentTime);
      let live = 0;
      for (const [id, t] of lastPosts) {
        if (currentTime - t < 0.2) live += 1; else lastPosts.delete(id);
      }
      this.port.postMessage({
        type: 'readings',
        stream: this.id,
        live,
        frames: this.frames,
        readings: this.readings(this.meter),
        stems: this.stemMeters.map((m) => this.readings(m)),
        points,
        spectrum: { lo: 20, hi: this.spectrumHi, levels: bands.subarray(0, BANDS), peaks: bands.subarray(BANDS) },
      }, [points.buffer, bands.buffer]);
    }
    return true;
  }
}

registerProcessor('sonantica', SonanticaProcessor);
