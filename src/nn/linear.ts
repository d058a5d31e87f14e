/** nn.Linear (weight (out, in), optional bias (out)) and SpeechBrain's wrapper Linear (`.w`). */
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type ForwardContext, Module } from "./module.ts";

export class Linear extends Module {
  readonly weight: Tensor; // (out, in)
  readonly bias: Tensor | null; // (out)

  constructor(be: Backend, readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super(be);
    this.weight = this.param("weight", [outFeatures, inFeatures]);
    this.bias = bias ? this.param("bias", [outFeatures]) : null;
  }

  /** x (..., in) -> (..., out) = x W^T + b. */
  forward(ctx: ForwardContext, x: Tensor): Tensor {
    return ag.matmul(ctx.tape, x, this.weight, { transB: true, bias: this.bias });
  }
}

/** speechbrain.nnet.linear.Linear: nn.Linear kept as `.w`. */
export class SbLinear extends Module {
  readonly w: Linear;

  constructor(be: Backend, inFeatures: number, outFeatures: number, bias = true) {
    super(be);
    this.w = this.child("w", new Linear(be, inFeatures, outFeatures, bias));
  }

  forward(ctx: ForwardContext, x: Tensor): Tensor {
    return this.w.forward(ctx, x);
  }
}
