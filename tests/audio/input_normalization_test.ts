import assert from "node:assert/strict";
import { InputNormalization, roundHalfEven } from "../../src/audio/input_normalization.ts";

Deno.test("lengths round half to even, as torch.round", () => {
  assert.equal(roundHalfEven(22.5), 22);
  assert.equal(roundHalfEven(23.5), 24);
  assert.equal(roundHalfEven(0.75 * 30), 22);
  assert.equal(roundHalfEven(22.4), 22);
  assert.equal(roundHalfEven(22.6), 23);
});

/** A (B, T, F) batch from per-(b, t, f) values. */
function batch(B: number, T: number, F: number, v: (b: number, t: number, f: number) => number) {
  const x = new Float32Array(B * T * F);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) for (let f = 0; f < F; f++) x[(b * T + t) * F + f] = v(b, t, f);
  }
  return x;
}

Deno.test("first batch: mean of per-utterance means and unbiased stds over true lengths", () => {
  const n = new InputNormalization(1, 4);
  // utt 0: frames 1,2,3 (mean 2, std 1); utt 1: frames 10, 14 then padding 999 (mean 12, std 2.828)
  const x = Float32Array.from([1, 2, 3, 10, 14, 999]);
  n.apply(x, 2, 3, [3, 2], 1, true);
  assert.ok(Math.abs(n.mean[0] - 7) < 1e-12);
  assert.ok(Math.abs(n.std[0] - (1 + Math.sqrt(8)) / 2) < 1e-12);
  assert.equal(n.count, 1);
  // every frame normalised, padding included
  assert.ok(Math.abs(x[5] - (999 - 7) / n.std[0]) < 1e-3);
});

Deno.test("running average weights micro-batches 1/(count+1), frozen from update_until_epoch on", () => {
  const n = new InputNormalization(2, 3);
  const mk = (c: number) => batch(1, 4, 2, (_b, t, f) => c + t + 10 * f); // mean c+1.5 (+10 f), std 1.29
  n.apply(mk(0), 1, 4, [4], 1, true);
  n.apply(mk(4), 1, 4, [4], 1, true);
  assert.ok(Math.abs(n.mean[0] - 3.5) < 1e-12); // (1.5 + 5.5) / 2
  n.apply(mk(7), 1, 4, [4], 2, true);
  assert.ok(Math.abs(n.mean[0] - (2 / 3 * 3.5 + 1 / 3 * 8.5)) < 1e-12);
  const frozen = n.state();
  n.apply(mk(100), 1, 4, [4], 3, true); // epoch 3 = update_until_epoch: no update
  assert.deepEqual(n.state().glob_mean, frozen.glob_mean);
  assert.equal(n.count, 4, "the count keeps growing after updates stop");
  const e = mk(5);
  n.apply(e, 1, 4, [4], 3, false); // evaluation: only normalises
  assert.equal(n.count, 4);
  assert.ok(Math.abs(e[0] - (5 - n.mean[0]) / n.std[0]) < 1e-5);
});

/** The statistics as one loop per (utterance, feature) over frames: the order the fast path keeps. */
function plainStats(x: Float32Array, B: number, T: number, F: number, frames: number[]) {
  const mu = new Float64Array(F), sd = new Float64Array(F);
  for (let b = 0; b < B; b++) {
    const n = frames[b];
    for (let f = 0; f < F; f++) {
      let s = 0;
      for (let t = 0; t < n; t++) s += x[(b * T + t) * F + f];
      const m = s / n;
      let v = 0;
      for (let t = 0; t < n; t++) v += (x[(b * T + t) * F + f] - m) ** 2;
      mu[f] += m / B;
      sd[f] += Math.max(Math.sqrt(v / (n - 1)), 1e-10) / B;
    }
  }
  return { mu, sd };
}

Deno.test("statistics and output bitwise equal to the plain per-column loops (F = 80 and 7)", () => {
  for (const [B, T, F] of [[6, 203, 80], [4, 31, 7]]) {
    let seed = 3;
    const r = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 30 - 12;
    const x = new Float32Array(B * T * F).map(() => r());
    const frames = Array.from({ length: B }, (_, b) => T - 5 * b);
    const want = plainStats(x, B, T, F, frames);
    const norm = new InputNormalization(F, 4);
    const y = x.slice();
    norm.apply(y, B, T, frames, 1, true);
    for (let f = 0; f < F; f++) {
      assert.ok(Object.is(norm.mean[f], want.mu[f]), `F ${F}: mean ${f}`);
      assert.ok(Object.is(norm.std[f], want.sd[f]), `F ${F}: std ${f}`);
    }
    for (let i = 0; i < x.length; i++) {
      const f = i % F;
      assert.ok(Object.is(y[i], Math.fround((x[i] - want.mu[f]) / want.sd[f])), `F ${F}: x ${i}`);
    }
  }
});
