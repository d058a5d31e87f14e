/**
 * PyTorch nn.MultiheadAttention as the decoders use it (CONMAMBA_SPEC.md 4.11), and SpeechBrain's
 * wrapper that keeps it as `.att`. Parameters in state_dict order: in_proj_weight (3d, d) with
 * rows [W_q; W_k; W_v], in_proj_bias (3d), out_proj.{weight (d, d), bias (d)}.
 *   Q = q W_q^T + b_q,  K = kv W_k^T + b_k,  V = kv W_v^T + b_v
 *   out = concat_h softmax(Q_h K_h^T / sqrt(dh) + mask) V_h  W_out^T + b_out
 * Dropout 0.1 on the attention probabilities in training (attention_dropout), none on the output.
 */
import * as ag from "../tensor/autograd_ops.ts";
import { attention } from "../tensor/attention.ts";
import type { AttnMask } from "../tensor/attention_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Linear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";
import { linearResidual } from "./residual.ts";

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
   * q (B, Tq, d), kv (B, S, d) -> (B, Tq, d). `self`: q and kv are the same tensor (kv is not
   * read). `mask`: causal, key lengths or an additive key mask (src/tensor/attention_ops.ts).
   */
  forward(ctx: ForwardContext, q: Tensor, kv: Tensor, mask: AttnMask, self = false): Tensor {
    return this.out_proj.forward(ctx, this.context(ctx, q, kv, mask, self));
  }

  /**
   * x + Drop(forward(q, kv)) with dropout p (a decoder's residual; residual.ts linearResidual: in
   * training the out projection, the dropout and the add are one node).
   */
  residual(
    ctx: ForwardContext,
    x: Tensor,
    q: Tensor,
    kv: Tensor,
    mask: AttnMask,
    self: boolean,
    p: number,
  ): Tensor {
    const out = this.context(ctx, q, kv, mask, self);
    return linearResidual(ctx, x, out, this.out_proj, { alpha: 1, p }).out;
  }

  /** The attention before the out projection: (B, Tq, d), packed bf16 in bf16 mode. */
  private context(
    ctx: ForwardContext,
    q: Tensor,
    kv: Tensor,
    mask: AttnMask,
    self: boolean,
  ): Tensor {
    const tape = ctx.tape, d = this.d, w = this.in_proj_weight, b = this.in_proj_bias;
    // Q, K and V each by its own product with its rows of in_proj_weight / in_proj_bias (views,
    // no copies): every element is the dot product of one (d)-row of W, as in one (3d)-wide
    // product, and the backward adds their input gradients in place instead of slicing, padding
    // and adding a (B, T, 3d) gradient.
    const project = (x: Tensor, k: number) =>
      ag.matmul(tape, x, ag.paramRows(tape, w, k * d, d), {
        transB: true,
        bias: ag.paramRows(tape, b, k * d, d),
      });
    const Q = project(q, 0), K = project(self ? q : kv, 1), V = project(self ? q : kv, 2);
    const stream = ctx.stream++;
    const drop = ctx.training && this.dropoutP > 0
      ? { p: this.dropoutP, seed: ctx.seed, stream }
      : null;
    return attention(tape, Q, K, V, { ...mask, heads: this.heads, dropout: drop });
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

  /** x + Drop(forward(q, kv)) (MultiheadAttention.residual). */
  residual(
    ctx: ForwardContext,
    x: Tensor,
    q: Tensor,
    kv: Tensor,
    mask: AttnMask,
    self: boolean,
    p: number,
  ): Tensor {
    return this.att.residual(ctx, x, q, kv, mask, self, p);
  }
}
