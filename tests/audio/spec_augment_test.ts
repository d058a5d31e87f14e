/** SpecAugment as the recipe has it: bounds of the masks, the fill value, the warp, repeatability. */
import assert from "node:assert/strict";
import {
  type FeatureBatch,
  Rng,
  specAugment,
  spectrogramDrop,
  timeWarp,
} from "../../src/audio/spec_augment.ts";

function batch(B: number, T: number, F: number, seed = 1): FeatureBatch {
  const rng = new Rng(seed);
  return { data: Float32Array.from({ length: B * T * F }, () => rng.next() * 2 - 1), B, T, F };
}

/** Per utterance: which time frames (or freq bins) were replaced by `value` in every cell. */
function maskedRows(b: FeatureBatch, axis: "time" | "freq", value: number): boolean[][] {
  const out: boolean[][] = [];
  for (let u = 0; u < b.B; u++) {
    const D = axis === "time" ? b.T : b.F, other = axis === "time" ? b.F : b.T;
    const rows: boolean[] = [];
    for (let d = 0; d < D; d++) {
      let all = true;
      for (let o = 0; o < other; o++) {
        const [t, f] = axis === "time" ? [d, o] : [o, d];
        if (b.data[u * b.T * b.F + t * b.F + f] !== value) all = false;
      }
      rows.push(all);
    }
    out.push(rows);
  }
  return out;
}

function runs(mask: boolean[]): number[] {
  const lens: number[] = [];
  let cur = 0;
  for (const m of mask) {
    if (m) cur++;
    else if (cur) (lens.push(cur), (cur = 0));
  }
  if (cur) lens.push(cur);
  return lens;
}

Deno.test("time drop (S2S: 4 masks of 15-24 frames): masked frames hold the batch mean", () => {
  let grand = 0, utts = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const b = batch(3, 300, 80, seed);
    let sum = 0;
    for (const v of b.data) sum += v;
    const mean = Math.fround(sum / b.data.length);
    spectrogramDrop(
      b,
      "time",
      { lengthLow: 15, lengthHigh: 25, countLow: 4, countHigh: 4 },
      new Rng(seed),
    );
    for (const rows of maskedRows(b, "time", mean)) {
      const total = rows.filter(Boolean).length;
      // 4 masks of 15..24 frames, possibly overlapping or clipped at the end.
      assert.ok(total >= 1 && total <= 4 * 24, `${total} frames masked`);
      assert.ok(runs(rows).length <= 4);
      grand += total;
      utts++;
    }
  }
  // 4 masks of 19.5 frames on average in 300 frames: ~70 after overlaps and clipping.
  const avg = grand / utts;
  assert.ok(avg > 55 && avg < 80, `average ${avg} masked frames`);
});

Deno.test("freq drop (CTC: 1-3 masks of 10-19 bins): counts and widths within the recipe's bounds", () => {
  for (let seed = 1; seed <= 30; seed++) {
    const b = batch(2, 50, 80, seed);
    let sum = 0;
    for (const v of b.data) sum += v;
    const mean = Math.fround(sum / b.data.length);
    spectrogramDrop(
      b,
      "freq",
      { lengthLow: 10, lengthHigh: 20, countLow: 1, countHigh: 3 },
      new Rng(seed),
    );
    for (const rows of maskedRows(b, "freq", mean)) {
      const r = runs(rows);
      assert.ok(r.length >= 1 && r.length <= 3, `runs ${r}`);
      for (const len of r) {
        // A run is one mask (10..19, shorter only when clipped at the top) or several merged.
        assert.ok(len <= 3 * 19, `run ${len}`);
      }
      assert.ok(rows.filter(Boolean).length >= 1);
    }
  }
});

Deno.test("time warp: fixed ends, resized halves; a warp that keeps the centre is the identity", () => {
  // A ramp along time: bicubic resizing with align_corners keeps the first and last frame.
  const T = 100, F = 4;
  const b: FeatureBatch = { data: new Float32Array(T * F), B: 1, T, F };
  for (let t = 0; t < T; t++) for (let f = 0; f < F; f++) b.data[t * F + f] = t;
  const before = b.data.slice();
  timeWarp(b, 5, new Rng(7));
  assert.equal(b.data[0], 0);
  assert.equal(b.data[(T - 1) * F], T - 1);
  for (let t = 1; t < T; t++) {
    assert.ok(b.data[t * F] >= b.data[(t - 1) * F] - 1e-4, `monotone at ${t}`);
  }
  assert.notDeepEqual(b.data, before);
  // Find a seed whose new boundary equals the centre: then both halves keep their length.
  for (let seed = 1; seed < 500; seed++) {
    const r = new Rng(seed);
    const c = r.int(5, T - 6), cNew = r.int(c - 5, c + 4) + 1;
    if (cNew !== c) continue;
    const same: FeatureBatch = { data: before.slice(), B: 1, T, F };
    timeWarp(same, 5, new Rng(seed));
    for (let i = 0; i < before.length; i++) assert.ok(Math.abs(same.data[i] - before[i]) < 1e-4);
    return;
  }
  throw new Error("no seed kept the centre");
});

Deno.test("time warp is a no-op on batches too short to warp (T - 5 <= 5)", () => {
  const b = batch(2, 10, 8);
  const before = b.data.slice();
  timeWarp(b, 5, new Rng(3));
  assert.deepEqual(b.data, before);
});

Deno.test("the whole augmentation is repeatable from a seed and differs across seeds", () => {
  const s = {
    timeDrop: { lengthLow: 15, lengthHigh: 25, countLow: 4, countHigh: 4 },
    freqDrop: { lengthLow: 10, lengthHigh: 20, countLow: 4, countHigh: 4 },
    timeWarpWindow: 5,
  };
  const a = batch(2, 200, 80), b = batch(2, 200, 80), c = batch(2, 200, 80);
  specAugment(a, s, new Rng(42));
  specAugment(b, s, new Rng(42));
  specAugment(c, s, new Rng(43));
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data, c.data);
});
