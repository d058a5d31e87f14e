/**
 * The convolution module (CONMAMBA_SPEC.md 4.6):
 *   u = LN(x); v = PW(u) (1x1 conv d -> 2d); g = GLU(v); h = DW(g) (kernel 31, zero padding 15);
 *   out = Dropout(Linear(act(LN(h)))).
 * ConMamba: act GELU and no padding mask (G2/G8). Conformer: act Swish, and `padLengths` (0 at
 * padded frames) zeroes the output there.
 * Names: layer_norm.*, bottleneck.0.{weight (2d,d,1), bias}, conv.{weight (d,1,31), bias},
 * after_conv.0.* (LN), after_conv.2.* (Linear).
 */
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { dropout, reshape } from "./_ops.ts";
import { activate, type Activation } from "./ffn.ts";
import { LayerNorm } from "./layer_norm.ts";
import { Linear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";
import { linearResidual, type NextNorm, type ResidualOut } from "./residual.ts";

/** A Conv1d's parameters: weight (out, in/groups, k), bias (out). */
export class Conv1dParams extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(be: Backend, shape: readonly [number, number, number]) {
    super(be);
    this.weight = this.param("weight", shape);
    this.bias = this.param("bias", [shape[0]]);
  }
}

class Bottleneck extends Module {
  readonly pw: Conv1dParams;
  constructor(be: Backend, d: number) {
    super(be);
    this.pw = this.child("0", new Conv1dParams(be, [2 * d, d, 1]));
  }
}

class AfterConv extends Module {
  readonly norm: LayerNorm;
  readonly linear: Linear;
  constructor(be: Backend, d: number) {
    super(be);
    this.norm = this.child("0", new LayerNorm(be, [d], 1e-5));
    this.linear = this.child("2", new Linear(be, d, d));
  }
}

export class ConvolutionModule extends Module {
  readonly layer_norm: LayerNorm;
  readonly bottleneck: Bottleneck;
  readonly conv: Conv1dParams;
  readonly after_conv: AfterConv;

  constructor(
    be: Backend,
    readonly d: number,
    readonly kernelSize = 31,
    readonly dropoutP = 0.1,
    readonly activation: Activation = "gelu",
  ) {
    super(be);
    this.layer_norm = this.child("layer_norm", new LayerNorm(be, [d], 1e-5));
    this.bottleneck = this.child("bottleneck", new Bottleneck(be, d));
    this.conv = this.child("conv", new Conv1dParams(be, [d, 1, kernelSize]));
    this.after_conv = this.child("after_conv", new AfterConv(be, d));
  }

  /**
   * x (B, T, d) -> (B, T, d); with padLengths (B), output frames t >= padLengths[b] become 0.
   * `normed`: the module's first LayerNorm of x, computed before (a fused kernel's).
   */
  forward(
    ctx: ForwardContext,
    x: Tensor,
    padLengths: Tensor | null = null,
    normed: Tensor | null = null,
  ): Tensor {
    const y = dropout(
      ctx,
      this.after_conv.linear.forward(ctx, this.beforeLinear(ctx, x, normed)),
      this.dropoutP,
    );
    return padLengths ? ag.maskedFillTime(ctx.tape, y, padLengths, 0) : y;
  }

  /**
   * x + forward(x) (the layer's residual; no padding mask), with the module's first LayerNorm of
   * x given when a fused kernel before it computed it (`normed`) and `next`'s norm of the result
   * computed with it (residual.ts linearResidual: one node in training; `probe` sees forward(x)
   * when the ops run in sequence).
   */
  residual(
    ctx: ForwardContext,
    x: Tensor,
    o: { normed?: Tensor | null; next?: NextNorm },
    probe?: (f: Tensor) => void,
  ): ResidualOut {
    const a = this.beforeLinear(ctx, x, o.normed);
    return linearResidual(ctx, x, a, this.after_conv.linear, {
      alpha: 1,
      p: this.dropoutP,
      next: o.next,
      probe,
    });
  }

  /**
   * The module up to its last Linear: LN (or `normed`, that LN of x computed before), pointwise
   * conv + GLU, depthwise conv, LN, act.
   */
  private beforeLinear(ctx: ForwardContext, x: Tensor, normed?: Tensor | null): Tensor {
    const tape = ctx.tape, d = this.d, pw = this.bottleneck.pw;
    const u = normed ?? this.layer_norm.forward(ctx, x, true); // u: the pointwise conv alone
    const w = reshape(tape, pw.weight, [2 * d, d]);
    // the pointwise conv and the GLU (first half gated by sigmoid of the second, torch GLU dim 1):
    // one node with a bias (its gradient from the GLU backward's column sums)
    const g = pw.bias
      ? ag.linearGlu(tape, u, w, pw.bias)
      : ag.glu(tape, ag.matmul(tape, u, w, { transB: true }));
    const h = ag.conv1dDepthwise(
      tape,
      g,
      reshape(tape, this.conv.weight, [d, this.kernelSize]),
      this.conv.bias,
      { padLeft: (this.kernelSize - 1) / 2 },
    );
    // after_conv.linear alone reads the activation
    const dtype = ag.matmulInputDtype(tape, x.backend);
    return activate(tape, this.after_conv.norm.forward(ctx, h), this.activation, dtype);
  }
}
