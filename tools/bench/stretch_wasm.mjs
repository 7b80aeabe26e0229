// Cost of tempo and pitch in the browser's wasm module, driven as the worklet
// drives it (four stems to stereo, 48 kHz, 128-frame quanta), in Node.
// Build first: cargo build -p sonantica-wasm --target wasm32-unknown-unknown --profile wasm
//   node tools/bench/stretch_wasm.mjs
import { readFile } from 'node:fs/promises';
const { instance } = await WebAssembly.instantiate(await readFile(new URL('../../target/wasm32-unknown-unknown/wasm/sonantica_wasm.wasm', import.meta.url)), {});
const x = instance.exports; const RATE = 48000, Q = 128;
const f32 = (p, n) => new Float32Array(x.memory.buffer, p, n);
for (const [tempo, transpose] of [[1, 0], [0.75, 0], [1.25, 0], [0.8, 3]]) {
  const runs = [];
  for (let r = 0; r < 5; r++) {
    const e = x.son_engine_new(4, 2, RATE);
    const json = new TextEncoder().encode(JSON.stringify({ tempo, transpose }));
    new Uint8Array(x.memory.buffer, x.son_engine_settings_buffer(e, json.length), json.length).set(json);
    x.son_engine_apply(e); x.son_engine_reset(e);
    let worst = 0; let first; let fed = 0; const t0 = performance.now();
    for (let made = 0; made < 30 * RATE; made += Q) {
      const q0 = performance.now();
      const need = x.son_engine_input_frames(e, Q);
      for (let k = 0; k < 8; k++) { const b = f32(x.son_engine_input(e, k), need); for (let i = 0; i < need; i++) b[i] = Math.sin((fed + i) * 0.01 * (k + 1)) * 0.1; }
      fed += need;
      x.son_engine_process_to(e, need, Q);
      if (made >= 16 * Q) worst = Math.max(worst, performance.now() - q0); else first = Math.max(first ?? 0, performance.now() - q0);
    }
    runs.push([(performance.now() - t0) / 30, worst, first]);
    x.son_engine_free(e);
  }
  runs.sort((a, b) => a[0] - b[0]);
  const w = runs.map((r) => r[1]).sort((a, b) => a - b);
  console.log(`tempo ${tempo}, ${transpose} st: ${runs[2][0].toFixed(1)} ms per second of output (4 stems -> stereo, wasm in Node ${process.version}); slowest steady quantum ${w[2].toFixed(2)} ms of 2.67; first 16 quanta at most ${runs[2][2].toFixed(2)} ms`);
}
