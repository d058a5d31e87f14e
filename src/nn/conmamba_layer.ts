/**
 * The ConMamba encoder layer (CONMAMBA_SPEC.md 4.5; macaron, pre-norm, GELU everywhere, G8):
 *   a = x + 0.5 ffn_module1(x)
 *   b = a + mamba(norm1(a))                      (no dropout on this branch)
 *   c = b + convolution_module(b)
 *   y = norm2(c + 0.5 ffn_module2(c))
 * No padding mask anywhere (G2: the original builds one and sets it to None).
 */
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { BiMamba } from "./bimamba.ts";
import { ConvolutionModule } from "./conv_module.ts";
import { FfnModule } from "./ffn.ts";
import { SbLayerNorm } from "./layer_norm.ts";
import { type ForwardContext, Module } from "./module.ts";
import { addThenNorm } from "./residual.ts";

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
    const cap = ctx.capture;
    // Residuals around a dropped-out branch are one kernel in training (`residual`: the bits
    // of dropout, scale and add), the ops in sequence under probes; and every residual sum is
    // normalised by the LayerNorm after it in the same kernel (the next module's first norm, or
    // norm2), which then reads no sum back from memory.
    const a = this.ffn_module1.residual(ctx, x, 0.5, {
      next: { norm: this.norm1.norm, forMatmul: true }, // read by in_proj alone
    }, (f) => cap?.(`${name}.ffn_module1`, f));
    const m = this.mamba.forward(ctx, a.normed!);
    cap?.(`${name}.mamba`, m);
    const convNorm = this.convolution_module.layer_norm;
    const b = addThenNorm(ctx, a.out, m, { norm: convNorm, forMatmul: true });
    const c = this.convolution_module.residual(ctx, b.out, {
      normed: b.normed,
      next: { norm: this.ffn_module2.norm, forMatmul: true },
    }, (f) => cap?.(`${name}.convolution_module`, f));
    const s = this.ffn_module2.residual(ctx, c.out, 0.5, {
      normed: c.normed,
      next: { norm: this.norm2.norm, forMatmul: false },
    }, (f) => cap?.(`${name}.ffn_module2`, f));
    const y = s.normed!;
    cap?.(name, y);
    return y;
  }
}
