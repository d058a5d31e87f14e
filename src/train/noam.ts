/**
 * SpeechBrain's NoamScheduler without model_size (CONMAMBA_SPEC.md §8.2, gotcha G7):
 * lr(n) = lr_peak * min(n / W, sqrt(W / n)) after n optimiser steps; the scheduler runs after
 * each step, so update 1 uses the optimiser's initial lr (the peak itself), update 2 uses lr(1),
 * and update k + 1 uses lr(k).
 */
export function noamLr(lrPeak: number, warmup: number, n: number): number {
  if (n < 1) return lrPeak;
  return lrPeak * Math.sqrt(warmup) * Math.min(n ** -0.5, n * warmup ** -1.5);
}

/** The learning rate used by optimiser update number `update` (1-based): G7's off-by-one. */
export function lrForUpdate(lrPeak: number, warmup: number, update: number): number {
  return update === 1 ? lrPeak : noamLr(lrPeak, warmup, update - 1);
}
