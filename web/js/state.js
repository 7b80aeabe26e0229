// What the page's modules share: the audio graph, the playing track and its
// mixer. Exposed as `window.studio` for the browser tests.

export const state = {
  ctx: null, module: null, wasm: null, node: null, source: null, gain: null,
  current: null, mode: 'track', layout: 'stereo', mixer: null,
  models: [], lastReadings: null, lastSpectrum: null, applied: null,
  live: 0, // meter streams that posted in the last 200 ms (from the worklet)
};
window.studio = state;
