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

  /**
   * `forMatmul`: only matmuls read the output (a norm before Linears): stored as packed bf16 in
   * bf16 mode (ag.matmulInputDtype; an odd width stays float32), the same products' bits.
   */
  forward(ctx: ForwardContext, x: Tensor, forMatmul = false): Tensor {
    const n = this.spec(ctx, x, forMatmul);
    if (n) return ag.layerNorm(ctx.tape, x, n.gamma, n.beta, n.eps, n.dtype);
    return layerNormAxes(ctx.tape, x, this.weight, this.bias, this.eps, this.shape.length);
  }

  /**
   * This norm as the fused residual + LayerNorm kernels take it (ag.addLayerNorm,
   * ag.linearDropoutAdd), its output dtype as `forward` would choose; null for a norm over
   * several axes.
   */
  spec(ctx: ForwardContext, x: Tensor, forMatmul = false): ag.NormSpec | null {
    if (this.shape.length !== 1) return null;
    const bf16 = forMatmul && this.shape[0] % 2 === 0 &&
      ag.matmulInputDtype(ctx.tape, x.backend) === "bf16";
    return { gamma: this.weight, beta: this.bias, eps: this.eps, dtype: bf16 ? "bf16" : "f32" };
  }
}

/** speechbrain.nnet.normalization.LayerNorm: nn.LayerNorm kept as `.norm`. */
export class SbLayerNorm extends Module {
  readonly norm: LayerNorm;

  constructor(be: Backend, shape: readonly number[], eps = 1e-5) {
    super(be);
    this.norm = this.child("norm", new LayerNorm(be, shape, eps));
  }

  forward(ctx: ForwardContext, x: Tensor, forMatmul = false): Tensor {
    return this.norm.forward(ctx, x, forMatmul);
  }
}
