/**
 * The recipe's objectives (CONMAMBA_SPEC.md §7, G17, G30) on a forward pass's outputs:
 *   CTC:  loss_ctc = batchmean CTC of p_ctc against `tokens` (no bos/eos), lengths round(l T').
 *   S2S:  L = w loss_ctc + (1 - w) loss_seq, w = ctc_weight, where loss_seq is
 *         label_smoothing 0: masked NLL of p_seq at tokens_eos, positions u < length (ids + eos);
 *         label_smoothing e > 0: KL to (1 - e) on the target, e / (V - 1) elsewhere, rows whose
 *         target is pad (0) left out; both summed and divided by B.
 * Returns the values and the upstream gradients (already divided by grad_accumulation_factor) of
 * the log-prob tensors, to seed one backward pass, plus the teacher-forced token accuracy (ACC,
 * argmax of p_seq against tokens_eos over the same positions as the NLL mask).
 */
import type { DecoderOutputs, EncoderOutputs } from "../nn/asr_model.ts";
import { ctcLoss, smoothedNll } from "../tensor/loss_ops.ts";
import { maxLast } from "../tensor/reduce_ops.ts";
import type { Tensor } from "../tensor/tensor.ts";

export interface Targets {
  B: number;
  tokens: ArrayLike<number>; // (B, S) ids, zero-padded (CTC targets)
  tokenLens: readonly number[]; // ids per utterance
  tokensEos: ArrayLike<number>; // (B, S + 1): ids + [eos], zero-padded
}

export interface ObjectiveSettings {
  blank: number;
  /** ctc_weight, or null for a CTC-only recipe. */
  ctcWeight: number | null;
  labelSmoothing: number;
  gradAccumulation: number;
}

export interface ObjectiveResult {
  loss: number; // the recipe's loss (before / G)
  lossCtc: number;
  lossSeq: number | null;
  /** Teacher-forced accuracy counts (S2S). */
  acc: { correct: number; total: number } | null;
  /** (tensor, upstream gradient) pairs for Tape.backwardFrom. */
  seeds: [Tensor, Tensor][];
}

export function objectives(
  enc: EncoderOutputs,
  dec: DecoderOutputs | null,
  t: Targets,
  s: ObjectiveSettings,
): ObjectiveResult {
  // Each gradient leaves its loss kernel already multiplied by its weight in the objective and by
  // 1 / gradAccumulation (no pass over the (B, T, V) gradients to scale them).
  const g = 1 / s.gradAccumulation, w = s.ctcWeight;
  const ctcScale = w === null || dec === null ? g : w * g;
  const ctc = ctcLoss(enc.logProbs, t.tokens, enc.encLengths, t.tokenLens, {
    blank: s.blank,
    gradScale: ctcScale,
  });
  if (w === null || dec === null) {
    return {
      loss: ctc.loss,
      lossCtc: ctc.loss,
      lossSeq: null,
      acc: null,
      seeds: [[enc.logProbs, ctc.grad]],
    };
  }
  const lp = dec.seqLogProbs; // (B, S + 1, V)
  const [b, u] = lp.shape;
  const weights = new Float32Array(b * u);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < u; j++) {
      const k = i * u + j;
      // Smoothing: pad identified by value (G17); NLL: by length, ids + eos (G30).
      weights[k] = s.labelSmoothing > 0
        ? (t.tokensEos[k] !== 0 ? 1 : 0)
        : (j <= t.tokenLens[i] ? 1 : 0);
    }
  }
  const seq = smoothedNll(lp, t.tokensEos, weights, s.labelSmoothing, (1 - w) * g);
  // The argmax on the device: B U indices come back, not the B U V log-probabilities (39 MB a
  // step for conmamba_large, and a host loop over them).
  const best = maxLast(lp);
  const acc = accuracy(best.indices.toArray(), t.tokensEos, t.tokenLens, b, u);
  best.values.free();
  best.indices.free();
  return {
    loss: w * ctc.loss + (1 - w) * seq.loss,
    lossCtc: ctc.loss,
    lossSeq: seq.loss,
    acc,
    seeds: [
      [enc.logProbs, ctc.grad],
      [lp, seq.grad],
    ],
  };
}

/**
 * argmax_k p[b, u, k] == tokens_eos[b, u] over u <= len_b (SpeechBrain's Accuracy, §8.9), from
 * the argmax of each position (B U, the first maximum, as floats: `maxLast`).
 */
export function accuracy(
  argmax: Float32Array,
  tokensEos: ArrayLike<number>,
  tokenLens: readonly number[],
  b: number,
  u: number,
): { correct: number; total: number } {
  let correct = 0, total = 0;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j <= tokenLens[i] && j < u; j++) {
      total++;
      if (argmax[i * u + j] === tokensEos[i * u + j]) correct++;
    }
  }
  return { correct, total };
}
