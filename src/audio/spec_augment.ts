/**
 * Feature-domain augmentation of a training batch as the recipe applies it after normalisation
 * (CONMAMBA_SPEC.md §8.8, gotcha G15): time drop, frequency drop, then (S2S only) time warp, in
 * that order, on the padded (B, T, F) batch. Our own seeded RNG replaces torch's: the
 * distributions are the recipe's, the draws are not (they cannot be, across frameworks).
 */
import { Rng } from "../util/rng.ts";

export { Rng };

/** A batch of features: data is (B, T, F) row-major, padded to T. */
export interface FeatureBatch {
  data: Float32Array;
  B: number;
  T: number;
  F: number;
}

export interface DropSettings {
  lengthLow: number;
  lengthHigh: number; // exclusive, as the recipe's SpectrogramDrop
  countLow: number;
  countHigh: number; // inclusive
}

/** The draws of one SpectrogramDrop: per utterance, which rows (time) or columns (freq) to mask. */
export interface DropPlan {
  axis: "time" | "freq";
  masked: Uint8Array[]; // per utterance, (D): 1 = masked
}

/**
 * SpectrogramDrop's draws along `axis`: one mask count n for the whole batch, then per utterance
 * n masks of length in [lengthLow, lengthHigh) starting anywhere in [0, D), clipped at D. null
 * when n is 0 (nothing happens, not even the mean).
 */
export function planDrop(
  B: number,
  D: number,
  axis: "time" | "freq",
  s: DropSettings,
  rng: Rng,
): DropPlan | null {
  const n = rng.int(s.countLow, s.countHigh);
  if (n === 0) return null;
  const masked: Uint8Array[] = [];
  for (let b = 0; b < B; b++) {
    const mask = new Uint8Array(D);
    for (let k = 0; k < n; k++) {
      const len = rng.int(s.lengthLow, s.lengthHigh - 1);
      const start = rng.int(0, D - 1);
      mask.fill(1, start, Math.min(D, start + len));
    }
    masked.push(mask);
  }
  return { axis, masked };
}

/**
 * Applies a SpectrogramDrop plan: masked entries become the mean of the whole batch tensor
 * (padding included), computed before masking in float64, in index order.
 */
export function applyDrop(batch: FeatureBatch, plan: DropPlan): void {
  const { data, B, T, F } = batch;
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum += data[i];
  const mean = Math.fround(sum / data.length);
  for (let b = 0; b < B; b++) {
    const masked = plan.masked[b], base = b * T * F;
    for (let d = 0; d < masked.length; d++) {
      if (!masked[d]) continue;
      if (plan.axis === "time") data.fill(mean, base + d * F, base + (d + 1) * F);
      else for (let t = 0; t < T; t++) data[base + t * F + d] = mean;
    }
  }
}

/** SpectrogramDrop along `axis` (CONMAMBA_SPEC.md §8.8): planDrop, then applyDrop. */
export function spectrogramDrop(
  batch: FeatureBatch,
  axis: "time" | "freq",
  s: DropSettings,
  rng: Rng,
): void {
  const plan = planDrop(batch.B, axis === "time" ? batch.T : batch.F, axis, s, rng);
  if (plan) applyDrop(batch, plan);
}

/** Keys' cubic convolution weights for offsets -1, 0, 1, 2 at fraction t (PyTorch: a = -0.75). */
function cubicWeights(t: number, a = -0.75): [number, number, number, number] {
  const near = (x: number) => ((a + 2) * x - (a + 3)) * x * x + 1; // |x| <= 1
  const far = (x: number) => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; // 1 < |x| < 2
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/**
 * Resizes rows [from, from + inLen) of one utterance's (T, F) matrix to outLen rows along time
 * (bicubic, align_corners = True, neighbours clamped), writing into `out` at row `at`.
 */
function resizeTime(
  src: Float32Array,
  F: number,
  from: number,
  inLen: number,
  out: Float32Array,
  at: number,
  outLen: number,
): void {
  const clamp = (i: number) => (from + Math.min(Math.max(i, 0), inLen - 1)) * F;
  for (let d = 0; d < outLen; d++) {
    const pos = outLen > 1 ? (d * (inLen - 1)) / (outLen - 1) : 0;
    const i0 = Math.floor(pos);
    const [w0, w1, w2, w3] = cubicWeights(pos - i0);
    const r0 = clamp(i0 - 1), r1 = clamp(i0), r2 = clamp(i0 + 1), r3 = clamp(i0 + 2);
    const o = (at + d) * F;
    for (let f = 0; f < F; f++) {
      out[o + f] = w0 * src[r0 + f] + w1 * src[r1 + f] + w2 * src[r2 + f] + w3 * src[r3 + f];
    }
  }
}

/** Time warp's draws: the centre c and its new position cNew, for the whole batch. */
export interface WarpPlan {
  c: number;
  cNew: number;
}

/**
 * Time warp with window w (5): one centre c in [w, T - w - 1] and new boundary c' in
 * [c - w + 1, c + w] for the whole batch; frames [0, c) are resized to c' frames and [c, T) to
 * T - c' frames. null (a no-op, no draws) when T - w <= w.
 */
export function planWarp(T: number, window: number, rng: Rng): WarpPlan | null {
  if (T - window <= window) return null;
  const c = rng.int(window, T - window - 1);
  const cNew = rng.int(c - window, c + window - 1) + 1;
  return { c, cNew };
}

/** Applies a warp plan to utterances [b0, b1) (each utterance on its own). */
export function warpUtterances(batch: FeatureBatch, plan: WarpPlan, b0: number, b1: number): void {
  const { data, T, F } = batch, { c, cNew } = plan;
  const utt = new Float32Array(T * F);
  for (let b = b0; b < b1; b++) {
    const view = data.subarray(b * T * F, (b + 1) * T * F);
    utt.set(view);
    resizeTime(utt, F, 0, c, view, 0, cNew);
    resizeTime(utt, F, c, T - c, view, cNew, T - cNew);
  }
}

/** Time warp (CONMAMBA_SPEC.md §8.8): planWarp, then warpUtterances over the batch. */
export function timeWarp(batch: FeatureBatch, window: number, rng: Rng): void {
  const plan = planWarp(batch.T, window, rng);
  if (plan) warpUtterances(batch, plan, 0, batch.B);
}

export interface SpecAugmentSettings {
  timeDrop: DropSettings;
  freqDrop: DropSettings;
  /** null: no warp (the CTC recipes). */
  timeWarpWindow: number | null;
}

/** All of a batch's SpecAugment draws, in the recipe's order (they do not depend on the data). */
export interface AugmentPlan {
  time: DropPlan | null;
  freq: DropPlan | null;
  warp: WarpPlan | null;
}

export function planSpecAugment(
  B: number,
  T: number,
  F: number,
  s: SpecAugmentSettings,
  rng: Rng,
): AugmentPlan {
  const time = planDrop(B, T, "time", s.timeDrop, rng);
  const freq = planDrop(B, F, "freq", s.freqDrop, rng);
  const warp = s.timeWarpWindow === null ? null : planWarp(T, s.timeWarpWindow, rng);
  return { time, freq, warp };
}

/** The recipe's order: time drop, frequency drop, time warp. */
export function specAugment(batch: FeatureBatch, s: SpecAugmentSettings, rng: Rng): void {
  const plan = planSpecAugment(batch.B, batch.T, batch.F, s, rng);
  if (plan.time) applyDrop(batch, plan.time);
  if (plan.freq) applyDrop(batch, plan.freq);
  if (plan.warp) warpUtterances(batch, plan.warp, 0, batch.B);
}
