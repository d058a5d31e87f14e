/**
 * The ConMamba encoder layer (CONMAMBA_SPEC.md 4.5; macaron, pre-norm, GELU everywhere, G8):
 *   a = x + 0.5 ffn_module1(x)
 *   b = a + mamba(norm1(a))                      (no dropout on this branch)
 *   c = b + convolution_module(b)
 *   y = norm2(c + 0.5 ffn_module2(c))
 * No padding mask anywhere (G2: the original builds one and sets it to None).
 */
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { BiMamba } from "./bimamba.ts";
import { ConvolutionModule } from "./conv_module.ts";
import { FfnModule } from "./ffn.ts";
import { SbLayerNorm } from "./layer_norm.ts";
import { type ForwardContext, Module } from "./module.ts";

export interface ConMambaLayerOptions {
  dModel: number;
  dFfn: number;
  kernelSize?: number; // 31
  dropout?: number; // 0.1
  dState?: number; // 16
  expand?: number; // 2
  dConv?: number; // 4
}

export class ConMambaLayer extends Module {
  readonly mamba: BiMamba;
  readonly convolution_module: ConvolutionModule;
  readonly ffn_module1: FfnModule;
  readonly ffn_module2: FfnModule;
  readonly norm1: SbLayerNorm;
  readonly norm2: SbLayerNorm;

  constructor(be: Backend, o: ConMambaLayerOptions) {
    super(be);
    const d = o.dModel, p = o.dropout ?? 0.1;
    this.mamba = this.child(
      "mamba",
      new BiMamba(be, { dModel: d, dState: o.dState, expand: o.expand, dConv: o.dConv }),
    );
    this.convolution_module = this.child(
      "convolution_module",
      new ConvolutionModule(be, d, o.kernelSize ?? 31, p),
    );
    this.ffn_module1 = this.child("ffn_module1", new FfnModule(be, d, o.dFfn, p));
    this.ffn_module2 = this.child("ffn_module2", new FfnModule(be, d, o.dFfn, p));
    this.norm1 = this.child("norm1", new SbLayerNorm(be, [d], 1e-5));
    this.norm2 = this.child("norm2", new SbLayerNorm(be, [d], 1e-5));
  }

  /** x (B, T, d) -> (B, T, d). `name` prefixes the probes of ctx.capture. */
  forward(ctx: ForwardContext, x: Tensor, name = "layer"): Tensor {
    const tape = ctx.tape, cap = ctx.capture;
    // Residuals around a dropped-out branch are one kernel in training (`residual`: the bits of
    // dropout, scale and add), the ops in sequence under probes.
    const a = this.ffn_module1.residual(ctx, x, 0.5, (f) => cap?.(`${name}.ffn_module1`, f));
    const m = this.mamba.forward(ctx, this.norm1.forward(ctx, a, true)); // read by in_proj alone
    cap?.(`${name}.mamba`, m);
    const b = ag.add(tape, a, m);
    const c = this.convolution_module.residual(
      ctx,
      b,
      (f) => cap?.(`${name}.convolution_module`, f),
    );
    const s = this.ffn_module2.residual(ctx, c, 0.5, (f) => cap?.(`${name}.ffn_module2`, f));
    const y = this.norm2.forward(ctx, s);
    cap?.(name, y);
    return y;
  }
}
