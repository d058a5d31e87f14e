/**
 * The recipe's InputNormalization with norm_type "global" (CONMAMBA_SPEC.md §3.6, gotcha G14):
 * not a true global mean/variance but a running average, over training micro-batches, of batch
 * means of per-utterance means and unbiased stds; updated while epoch < update_until_epoch, frozen
 * afterwards (the count keeps growing); every frame, padding included, is then normalised.
 */

import { roundHalfEven } from "../util/math.ts";

export { roundHalfEven };

export interface NormalizerState {
  count: number;
  glob_mean: number[]; // (F)
  glob_std: number[]; // (F)
}

export class InputNormalization {
  count = 0;
  mean: Float64Array;
  std: Float64Array;

  constructor(readonly nMels: number, readonly updateUntilEpoch: number) {
    this.mean = new Float64Array(nMels);
    this.std = new Float64Array(nMels);
  }

  /**
   * Normalises a padded batch in place. x: (B, T, F) row-major; frames[b] = the utterance's true
   * frame count (round(rel_len * T), see roundHalfEven); epoch numbered from 1. The three parts
   * (per-utterance statistics, the update, the normalisation of rows) are also callable one by one
   * (BatchPrep runs the first and last over utterances in parallel: the same bits).
   */
  apply(
    x: Float32Array,
    B: number,
    T: number,
    frames: readonly number[],
    epoch: number,
    training: boolean,
  ): void {
    const F = this.nMels;
    if (training) {
      const m = new Float64Array(B * F), q = new Float64Array(B * F);
      utteranceStats(x, T, F, frames, 0, B, m, q);
      this.update(m, q, B, epoch);
    }
    this.normalizeRows(x, 0, x.length / F);
  }

  /**
   * The running statistics after a training batch, from its per-utterance means m and stds q
   * ((B, F) each, `utteranceStats`): the batch's mean of each, added over utterances in order.
   */
  update(m: Float64Array, q: Float64Array, B: number, epoch: number): void {
    const F = this.nMels;
    const mu = new Float64Array(F), sd = new Float64Array(F);
    for (let b = 0; b < B; b++) {
      for (let f = 0; f < F; f++) {
        mu[f] += m[b * F + f] / B;
        sd[f] += q[b * F + f] / B;
      }
    }
    if (this.count === 0) {
      this.mean.set(mu);
      this.std.set(sd);
    } else if (epoch < this.updateUntilEpoch) {
      const w = 1 / (this.count + 1);
      for (let f = 0; f < F; f++) {
        this.mean[f] = (1 - w) * this.mean[f] + w * mu[f];
        this.std[f] = (1 - w) * this.std[f] + w * sd[f];
      }
    }
    this.count++;
  }

  /** Rows [row0, row1) of x (rows of F features) normalised in place with the current statistics. */
  normalizeRows(x: Float32Array, row0: number, row1: number): void {
    const F = this.nMels, mean = this.mean, std = this.std;
    for (let row = row0 * F; row < row1 * F; row += F) {
      for (let f = 0; f < F; f++) x[row + f] = (x[row + f] - mean[f]) / std[f];
    }
  }

  state(): NormalizerState {
    return { count: this.count, glob_mean: [...this.mean], glob_std: [...this.std] };
  }

  load(s: NormalizerState): void {
    this.count = s.count;
    this.mean.set(s.glob_mean);
    this.std.set(s.glob_std);
  }
}

/**
 * For utterances [b0, b1) of x (B, T, F): m[b, f] = the mean over its frames[b] true frames and
 * q[b, f] = max(unbiased std, 1e-10) (one frame gives NaN, as torch), both (B, F) float64. The
 * sums run over frames in order (columnSums).
 */
export function utteranceStats(
  x: Float32Array,
  T: number,
  F: number,
  frames: readonly number[],
  b0: number,
  b1: number,
  m: Float64Array,
  q: Float64Array,
): void {
  const s = new Float64Array(F), mb = new Float64Array(F), v = new Float64Array(F);
  for (let b = b0; b < b1; b++) {
    const n = frames[b], base = b * T * F;
    columnSums(x, base, n, F, s, null);
    for (let f = 0; f < F; f++) m[b * F + f] = mb[f] = s[f] / n;
    columnSums(x, base, n, F, v, mb);
    for (let f = 0; f < F; f++) q[b * F + f] = Math.max(Math.sqrt(v[f] / (n - 1)), 1e-10);
  }
}

/**
 * out[f] = the sum over frames t < n of x[base + t F + f] (minus mean[f], squared, when mean is
 * given), in frame order, in float64. Four columns at a time in registers: the same additions in
 * the same order as a plain loop per column, without a store and a load per element.
 */
function columnSums(
  x: Float32Array,
  base: number,
  n: number,
  F: number,
  out: Float64Array,
  mean: Float64Array | null,
): void {
  let f = 0;
  for (; f + 4 <= F; f += 4) {
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    if (mean === null) {
      for (let i = base + f, end = base + n * F; i < end; i += F) {
        a0 += x[i];
        a1 += x[i + 1];
        a2 += x[i + 2];
        a3 += x[i + 3];
      }
    } else {
      const m0 = mean[f], m1 = mean[f + 1], m2 = mean[f + 2], m3 = mean[f + 3];
      for (let i = base + f, end = base + n * F; i < end; i += F) {
        a0 += (x[i] - m0) ** 2;
        a1 += (x[i + 1] - m1) ** 2;
        a2 += (x[i + 2] - m2) ** 2;
        a3 += (x[i + 3] - m3) ** 2;
      }
    }
    out[f] = a0, out[f + 1] = a1, out[f + 2] = a2, out[f + 3] = a3;
  }
  for (; f < F; f++) {
    let a = 0;
    const m = mean === null ? 0 : mean[f];
    for (let i = base + f, end = base + n * F; i < end; i += F) {
      a += mean === null ? x[i] : (x[i] - m) ** 2;
    }
    out[f] = a;
  }
}
