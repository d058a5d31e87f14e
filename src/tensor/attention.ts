/**
 * Scaled dot-product attention over heads on the tape, as PyTorch nn.MultiheadAttention computes it
 * after the in-projection (CONMAMBA_SPEC.md 4.11): head h is the feature slice [h dh, (h + 1) dh),
 * scores = Q_h K_h^T scale + mask, softmax over keys in fp32, dropout on the probabilities,
 * probs V_h, heads concatenated. Projections stay with the caller (src/nn/). RelPosMHAXL (4.10)
 * passes `extraScores` (its shifted BD term, already scaled) and scale 1/sqrt(d).
 */
import type { Tape } from "./autograd.ts";
import * as ag from "./autograd_ops.ts";
import type { AttnMask } from "./attention_ops.ts";
import type { DropoutOptions } from "./dropout.ts";
import { type DType, ShapeError, type Tensor } from "./tensor.ts";

export interface AttentionOptions extends AttnMask {
  heads: number;
  /** Dropout on the attention probabilities (p 0.1 in training), or none. */
  dropout?: DropoutOptions | null;
  /** (B, H, Tq, S), added to the scaled scores Q K^T scale before the mask (tracked). */
  extraScores?: Tensor | null;
}

/** (B, T, H dh) -> (B, H, T, dh), in `dtype` (the heads go to matmuls alone). */
function splitHeads(tape: Tape, x: Tensor, heads: number, dtype: DType): Tensor {
  const [b, t, d] = x.shape;
  return ag.swapAxes(tape, ag.reshape(tape, x, [b, t, heads, d / heads]), 1, dtype);
}

/**
 * q (B, Tq, H dh), k and v (B, S, H dh) -> (B, Tq, H dh). Default scale 1 / sqrt(dh). In bf16 mode
 * (ag.matmulInputDtype) what only matmuls read is packed bf16: the heads, the dropped-out
 * probabilities and the result (for the caller's out projection alone), the same bits.
 */
export function attention(
  tape: Tape,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: AttentionOptions,
): Tensor {
  const [b, tq, d] = q.shape, s = k.shape[1], h = o.heads;
  if (q.shape.length !== 3 || d % h !== 0) {
    throw new ShapeError(`attention: q must be (B, Tq, H dh) for ${h} heads, got [${q.shape}]`);
  }
  for (const [name, t] of [["k", k], ["v", v]] as const) {
    if (t.shape.length !== 3 || t.shape[0] !== b || t.shape[1] !== s || t.shape[2] !== d) {
      throw new ShapeError(`attention: ${name} must be [${b},${s},${d}], got [${t.shape}]`);
    }
  }
  const scale = o.scale ?? 1 / Math.sqrt(d / h);
  const mm = ag.matmulInputDtype(tape, q.backend);
  const qh = splitHeads(tape, q, h, mm), kh = splitHeads(tape, k, h, mm);
  const vh = splitHeads(tape, v, h, mm);
  let scores = ag.matmul(tape, qh, kh, { transB: true }); // (B, H, Tq, S)
  let softmaxScale = scale;
  if (o.extraScores) {
    scores = ag.add(tape, ag.scale(tape, scores, scale), o.extraScores);
    softmaxScale = 1;
  }
  let probs = ag.attnSoftmax(tape, scores, { ...o, scale: softmaxScale });
  if (o.dropout && o.dropout.p > 0) probs = ag.dropout(tape, probs, o.dropout, mm);
  const ctx = ag.matmul(tape, probs, vh); // (B, H, Tq, dh)
  return ag.reshape(tape, ag.swapAxes(tape, ctx, 1, mm), [b, tq, d]);
}
