/**
 * The ConMamba layer's half-step FFN modules (CONMAMBA_SPEC.md 4.5): `ffn_moduleN` =
 * Sequential[LayerNorm "0" (eps 1e-5), PositionalwiseFeedForward "1", Dropout "2"], where the
 * feed-forward is `ffn` = Sequential[Linear d->F "0", GELU "1", Dropout "2", Linear F->d "3"].
 * The layer multiplies the module's output by 0.5 and adds the residual. The Conformer (4.10, G8)
 * uses Swish (x sigmoid(x)) where ConMamba and the decoders use GELU: `activation`, default GELU.
 */
import type { Tape } from "../tensor/autograd.ts";
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { DType, Tensor } from "../tensor/tensor.ts";
import { dropout } from "./_ops.ts";
import { LayerNorm } from "./layer_norm.ts";
import { Linear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";
import { linearResidual, type NextNorm, type ResidualOut } from "./residual.ts";

/** The encoder activations (G8): exact GELU, or Swish = SiLU. */
export type Activation = "gelu" | "swish";

/** `dtype` "bf16": the output packed, for a matmul alone (ag.matmulInputDtype). */
export function activate(tape: Tape, x: Tensor, a: Activation, dtype: DType = "f32"): Tensor {
  return a === "swish" ? ag.silu(tape, x, dtype) : ag.gelu(tape, x, dtype);
}

class FfnLayers extends Module {
  readonly l0: Linear;
  readonly l3: Linear;
  constructor(be: Backend, d: number, f: number) {
    super(be);
    this.l0 = this.child("0", new Linear(be, d, f));
    this.l3 = this.child("3", new Linear(be, f, d));
  }
}

/** speechbrain PositionalwiseFeedForward: W2 Drop(act(W1 x + b1)) + b2 (act: GELU by default). */
export class PositionwiseFeedForward extends Module {
  readonly ffn: FfnLayers;
  constructor(
    be: Backend,
    d: number,
    f: number,
    readonly dropoutP = 0.1,
    readonly activation: Activation = "gelu",
  ) {
    super(be);
    this.ffn = this.child("ffn", new FfnLayers(be, d, f));
  }

  /** x (B, T, d) -> (B, T, d). */
  forward(ctx: ForwardContext, x: Tensor): Tensor {
    return this.ffn.l3.forward(ctx, this.hidden(ctx, x));
  }

  /**
   * x + alpha Drop(forward(input)) with dropout p (a residual around this feed-forward), and
   * `next`'s norm of it (residual.ts linearResidual: one node in training; `probe` sees
   * Drop(forward(input)) when the ops run in sequence).
   */
  residual(
    ctx: ForwardContext,
    x: Tensor,
    input: Tensor,
    alpha: number,
    p: number,
    next?: NextNorm,
    probe?: (f: Tensor) => void,
  ): ResidualOut {
    return linearResidual(ctx, x, this.hidden(ctx, input), this.ffn.l3, { alpha, p, next, probe });
  }

  /** x (B, T, d) -> (B, T, F): everything before the last Linear (l3). */
  hidden(ctx: ForwardContext, x: Tensor): Tensor {
    const l0 = this.ffn.l0;
    if (this.activation === "gelu" && ctx.training && this.dropoutP > 0 && l0.bias) {
      // Linear, GELU and dropout as one node (the bits of the three; one pass less each way, and
      // the bias gradient from the GELU backward's column sums); it takes the dropout's stream as
      // dropout() would.
      const drop = { p: this.dropoutP, seed: ctx.seed, stream: ctx.stream++ };
      // only the last Linear (l3) reads the result: packed bf16 in bf16 mode
      const dtype = ag.matmulInputDtype(ctx.tape, x.backend);
      return ag.linearGeluDropout(ctx.tape, x, l0.weight, l0.bias, drop, dtype);
    }
    const h = activate(ctx.tape, l0.forward(ctx, x), this.activation);
    return dropout(ctx, h, this.dropoutP);
  }
}

/** LN -> feed-forward -> Dropout: the module whose output the layer scales by 0.5. */
export class FfnModule extends Module {
  readonly norm: LayerNorm;
  readonly ff: PositionwiseFeedForward;
  constructor(
    be: Backend,
    d: number,
    f: number,
    readonly dropoutP = 0.1,
    activation: Activation = "gelu",
  ) {
    super(be);
    this.norm = this.child("0", new LayerNorm(be, [d], 1e-5));
    this.ff = this.child("1", new PositionwiseFeedForward(be, d, f, dropoutP, activation));
  }

  forward(ctx: ForwardContext, x: Tensor): Tensor {
    return dropout(ctx, this.ff.forward(ctx, this.norm.forward(ctx, x, true)), this.dropoutP);
  }

  /**
   * x + alpha forward(x), the macaron half step (alpha 0.5), with this module's LayerNorm of x
   * given when a fused kernel before it computed it (`normed`) and `next`'s norm of the result
   * computed with it (PositionwiseFeedForward.residual).
   */
  residual(
    ctx: ForwardContext,
    x: Tensor,
    alpha: number,
    o: { normed?: Tensor | null; next?: NextNorm },
    probe?: (f: Tensor) => void,
  ): ResidualOut {
    const input = o.normed ?? this.norm.forward(ctx, x, true);
    return this.ff.residual(ctx, x, input, alpha, this.dropoutP, o.next, probe);
  }
}
