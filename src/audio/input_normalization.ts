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
      for (let b = 0; b < B; b++) {
        const n = frames[b];
        for (let f = 0; f < F; f++) {
          let s = 0;
          for (let t = 0; t < n; t++) s += x[(b * T + t) * F + f];
          const m = s / n;
          let v = 0;
          for (let t = 0; t < n; t++) v += (x[(b * T + t) * F + f] - m) ** 2;
          mu[f] += m / B;
          sd[f] += Math.max(Math.sqrt(v / (n - 1)), 1e-10) / B; // unbiased; one frame gives NaN as torch
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
    for (let i = 0; i < x.length; i++) {
      const f = i % F;
      x[i] = (x[i] - this.mean[f]) / this.std[f];
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
