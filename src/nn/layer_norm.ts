/**
 * nn.LayerNorm (affine, over the trailing axes of `shape`) and SpeechBrain's wrapper (`.norm`).
 * Epsilons: CONMAMBA_SPEC.md 4.16 (1e-5 inside layers and the CNN, 1e-6 for the encoder's final LN).
 */
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { layerNormAxes } from "./_ops.ts";
import { type ForwardContext, Module } from "./module.ts";

export class LayerNorm extends Module {
  readonly weight: Tensor; // shape
  readonly bias: Tensor; // shape

  constructor(be: Backend, readonly shape: readonly number[], readonly eps = 1e-5) {
    super(be);
    this.weight = this.param("weight", shape);
    this.bias = this.param("bias", shape);
  }

  forward(ctx: ForwardContext, x: Tensor): Tensor {
    if (this.shape.length === 1) return ag.layerNorm(ctx.tape, x, this.weight, this.bias, this.eps);
    return layerNormAxes(ctx.tape, x, this.weight, this.bias, this.eps, this.shape.length);
  }
}

/** speechbrain.nnet.normalization.LayerNorm: nn.LayerNorm kept as `.norm`. */
export class SbLayerNorm extends Module {
  readonly norm: LayerNorm;

  constructor(be: Backend, shape: readonly number[], eps = 1e-5) {
    super(be);
    this.norm = this.child("norm", new LayerNorm(be, shape, eps));
  }

  forward(ctx: ForwardContext, x: Tensor): Tensor {
    return this.norm.forward(ctx, x);
  }
}
