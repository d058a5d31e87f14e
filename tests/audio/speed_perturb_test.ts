/** Speed perturbation: the kernel against float64 loops, and what it does to a pure tone. */
import assert from "node:assert/strict";
import { resampledLength, resampleKernels, SpeedPerturb } from "../../src/audio/speed_perturb.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";

const be = await WasmBackend.create({ threads: 2, minWorkPerThread: 1 });
const be1 = await WasmBackend.create({ threads: 1 });
globalThis.addEventListener("unload", () => {
  be.close();
  be1.close();
});

/** y[m n + j] = sum_i k_j[i] x[m o + i], i from -width: the spec's formula as plain loops. */
function reference(x: Float32Array, origRate: number, newRate: number): Float64Array {
  const k = resampleKernels(origRate, newRate);
  const out = new Float64Array(resampledLength(x.length, k));
  for (let idx = 0; idx < out.length; idx++) {
    const m = Math.floor(idx / k.next), j = idx % k.next;
    let acc = 0;
    for (let t = 0; t < k.taps; t++) {
      const i = m * k.orig + t - k.width;
      if (i >= 0 && i < x.length) acc += Math.fround(k.kernels[j * k.taps + t]) * x[i];
    }
    out[idx] = acc;
  }
  return out;
}

function tone(hz: number, seconds: number): Float32Array {
  return Float32Array.from(
    { length: Math.round(16000 * seconds) },
    (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / 16000),
  );
}

Deno.test("resampling taps: 20 -> 19 and 20 -> 21 blocks, width 7, as torchaudio's defaults give", () => {
  const a = resampleKernels(16000, 15200), b = resampleKernels(16000, 16800);
  assert.deepEqual([a.orig, a.next, a.width, a.taps], [20, 19, 7, 34]);
  assert.deepEqual([b.orig, b.next, b.width, b.taps], [20, 21, 7, 34]);
  // Each phase's taps sum to ~1 (unit gain at DC, up to the window's ripple).
  for (let j = 0; j < a.next; j++) {
    let s = 0;
    for (let t = 0; t < a.taps; t++) s += a.kernels[j * a.taps + t];
    assert.ok(Math.abs(s - 1) < 0.02, `phase ${j}: ${s}`);
  }
});

Deno.test("speed perturbation kernel vs float64 loops (random audio): rel error <= 1e-6", () => {
  let seed = 99;
  const x = Float32Array.from({ length: 12345 }, () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32 - 0.5;
  });
  const sp = new SpeedPerturb(be);
  for (const speed of [95, 105]) {
    const got = sp.apply(x, speed);
    const want = reference(x, 16000, (16000 * speed) / 100);
    assert.equal(got.length, want.length);
    assert.equal(got.length, Math.ceil((x.length * speed) / 100));
    // Double sums rounded once to float32: the only error is that rounding (2^-24 relative).
    let num = 0, den = 0;
    for (let i = 0; i < got.length; i++) {
      num += (got[i] - want[i]) ** 2;
      den += want[i] ** 2;
    }
    assert.ok(Math.sqrt(num / den) <= 1e-6, `speed ${speed}: ${Math.sqrt(num / den)}`);
  }
  assert.equal(sp.apply(x, 100), x);
  sp.free();
});

Deno.test("speed 95 makes a 1 kHz tone 5 % shorter and 1053 Hz; 105 longer and 952 Hz", () => {
  const x = tone(1000, 1.0);
  const sp = new SpeedPerturb(be);
  for (const [speed, hz] of [[95, 1000 / 0.95], [105, 1000 / 1.05]]) {
    const y = sp.apply(x, speed);
    assert.equal(y.length, (16000 * speed) / 100);
    // Frequency from zero crossings over the steady middle part (played back at 16 kHz).
    const mid = y.subarray(2000, y.length - 2000);
    let crossings = 0;
    for (let i = 1; i < mid.length; i++) if ((mid[i - 1] < 0) !== (mid[i] < 0)) crossings++;
    const measured = (crossings / 2) / (mid.length / 16000);
    assert.ok(Math.abs(measured - hz) < 3, `speed ${speed}: ${measured} Hz, expected ${hz}`);
    // Amplitude kept (passband gain ~1).
    let peak = 0;
    for (const v of mid) peak = Math.max(peak, Math.abs(v));
    assert.ok(Math.abs(peak - 0.5) < 0.01, `speed ${speed}: peak ${peak}`);
  }
  sp.free();
});

Deno.test("speed perturbation: 1 thread and 2 threads give the same bits", () => {
  const x = tone(440, 0.7);
  const a = new SpeedPerturb(be), b = new SpeedPerturb(be1);
  assert.deepEqual(a.apply(x, 95), b.apply(x, 95));
  a.free();
  b.free();
});
