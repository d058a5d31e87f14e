/**
 * PyTorch nn.MultiheadAttention as the decoders use it (CONMAMBA_SPEC.md 4.11), and SpeechBrain's
 * wrapper that keeps it as `.att`. Parameters in state_dict order: in_proj_weight (3d, d) with
 * rows [W_q; W_k; W_v], in_proj_bias (3d), out_proj.{weight (d, d), bias (d)}.
 *   Q = q W_q^T + b_q,  K = kv W_k^T + b_k,  V = kv W_v^T + b_v
 *   out = concat_h softmax(Q_h K_h^T / sqrt(dh) + mask) V_h  W_out^T + b_out
 * Dropout 0.1 on the attention probabilities in training (attention_dropout), none on the output.
 */
import type { Tape } from "../tensor/autograd.ts";
import * as ag from "../tensor/autograd_ops.ts";
import { attention } from "../tensor/attention.ts";
import type { AttnMask } from "../tensor/attention_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Linear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";

/** Rows [r0, r0 + n) of a (R, C) or (R) tensor, on the tape (the gradient lands in those rows). */
export function rowSlice(tape: Tape, w: Tensor, r0: number, n: number): Tensor {
  const rows = w.shape[0], cols = w.shape.length === 2 ? w.shape[1] : 1;
  const sliced = ag.sliceTime(tape, ag.reshape(tape, w, [1, rows, cols]), r0, n); // (1, n, C)
  return ag.reshape(tape, sliced, w.shape.length === 2 ? [n, cols] : [n]);
}

/** Column block k of width w of x (B, T, 3w) -> (B, T, w), on the tape. */
function thirds(tape: Tape, x: Tensor, k: number): Tensor {
  const [b, t, w3] = x.shape, w = w3 / 3;
  const y = ag.sliceTime(tape, ag.reshape(tape, x, [b * t, 3, w]), k, 1); // (B T, 1, w)
  return ag.reshape(tape, y, [b, t, w]);
}

export class MultiheadAttention extends Module {
  readonly in_proj_weight: Tensor; // (3d, d)
  readonly in_proj_bias: Tensor; // (3d)
  readonly out_proj: Linear;

  constructor(be: Backend, readonly d: number, readonly heads: number, readonly dropoutP = 0.1) {
    super(be);
    this.in_proj_weight = this.param("in_proj_weight", [3 * d, d]);
    this.in_proj_bias = this.param("in_proj_bias", [3 * d]);
    this.out_proj = this.child("out_proj", new Linear(be, d, d));
  }

  /**
   * q (B, Tq, d), kv (B, S, d) -> (B, Tq, d). `self` (q and kv the same tensor) projects with one
   * matmul. `mask`: causal, key lengths or an additive key mask (src/tensor/attention_ops.ts).
   */
  forward(ctx: ForwardContext, q: Tensor, kv: Tensor, mask: AttnMask, self = false): Tensor {
    const tape = ctx.tape, d = this.d, w = this.in_proj_weight, b = this.in_proj_bias;
    let Q: Tensor, K: Tensor, V: Tensor;
    if (self) {
      const qkv = ag.matmul(tape, q, w, { transB: true, bias: b }); // (B, T, 3d)
      [Q, K, V] = [0, 1, 2].map((k) => thirds(tape, qkv, k));
    } else {
      Q = ag.matmul(tape, q, rowSlice(tape, w, 0, d), {
        transB: true,
        bias: rowSlice(tape, b, 0, d),
      });
      const kvProj = ag.matmul(tape, kv, rowSlice(tape, w, d, 2 * d), {
        transB: true,
        bias: rowSlice(tape, b, d, 2 * d),
      }); // (B, S, 2d)
      const [bs, s] = kvProj.shape;
      const halves = ag.reshape(tape, kvProj, [bs * s, 2, d]);
      K = ag.reshape(tape, ag.sliceTime(tape, halves, 0, 1), [bs, s, d]);
      V = ag.reshape(tape, ag.sliceTime(tape, halves, 1, 1), [bs, s, d]);
    }
    const stream = ctx.stream++;
    const drop = ctx.training && this.dropoutP > 0
      ? { p: this.dropoutP, seed: ctx.seed, stream }
      : null;
    const out = attention(tape, Q, K, V, { ...mask, heads: this.heads, dropout: drop });
    return this.out_proj.forward(ctx, out);
  }
}

/** speechbrain.nnet.attention.MultiheadAttention: nn.MultiheadAttention kept as `.att`. */
export class SbMultiheadAttention extends Module {
  readonly att: MultiheadAttention;
  constructor(be: Backend, d: number, heads: number, dropoutP = 0.1) {
    super(be);
    this.att = this.child("att", new MultiheadAttention(be, d, heads, dropoutP));
  }

  forward(ctx: ForwardContext, q: Tensor, kv: Tensor, mask: AttnMask, self = false): Tensor {
    return this.att.forward(ctx, q, kv, mask, self);
  }
}
