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
   * frame count (round(rel_len * T), see roundHalfEven); epoch numbered from 1.
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
      const mu = new Float64Array(F), sd = new Float64Array(F);
      // Per utterance and feature: the sum over frames, then the squared deviations, both in
      // frame order. The loops run frame-major (rows of F contiguous floats, not a stride of F
      // per step), which changes no addition's order.
      const s = new Float64Array(F), m = new Float64Array(F), v = new Float64Array(F);
      for (let b = 0; b < B; b++) {
        const n = frames[b];
        s.fill(0);
        v.fill(0);
        for (let t = 0; t < n; t++) {
          const row = (b * T + t) * F;
          for (let f = 0; f < F; f++) s[f] += x[row + f];
        }
        for (let f = 0; f < F; f++) m[f] = s[f] / n;
        for (let t = 0; t < n; t++) {
          const row = (b * T + t) * F;
          for (let f = 0; f < F; f++) v[f] += (x[row + f] - m[f]) ** 2;
        }
        for (let f = 0; f < F; f++) {
          mu[f] += m[f] / B;
          sd[f] += Math.max(Math.sqrt(v[f] / (n - 1)), 1e-10) / B; // unbiased; one frame gives NaN as torch
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
    const mean = this.mean, std = this.std;
    for (let row = 0; row < x.length; row += F) {
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
