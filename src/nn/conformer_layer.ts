/**
 * The Conformer encoder layer of the baselines (CONMAMBA_SPEC.md 4.10; SpeechBrain v1.0.0
 * ConformerEncoderLayer): the macaron skeleton of 4.5 with Swish everywhere (G8) and RelPosMHAXL:
 *   a = x + 0.5 ffn_module1(x)
 *   b = a + mha_layer(norm1(a), P)                 (no dropout after the attention, G20)
 *   c = b + convolution_module(b), frames >= length zeroed      (output zeroed at padded frames, 4.14)
 *   y = norm2(c + 0.5 ffn_module2(c))
 * state_dict order: mha_layer, convolution_module, ffn_module1, ffn_module2, norm1, norm2.
 */
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { ConvolutionModule } from "./conv_module.ts";
import { FfnModule } from "./ffn.ts";
import { SbLayerNorm } from "./layer_norm.ts";
import { type ForwardContext, Module } from "./module.ts";
import { addThenNorm } from "./residual.ts";
import { RelPosMHAXL } from "./rel_pos_mha.ts";

export interface ConformerLayerOptions {
  dModel: number;
  dFfn: number;
  heads: number; // 4 S and CTC, 8 L
  kernelSize?: number; // 31
  dropout?: number; // 0.1
}

/** What the encoder computes once per forward and hands to every layer. */
export interface ConformerMasks {
  /** (1, 2S - 1, d): RelPosEncXL.table. */
  posEmb: Tensor;
  /** (B) absolute lengths for the attention's key padding, or null (none). */
  keyLengths: Tensor | null;
  /** (B) lengths when some utterance is padded (the conv module zeroes those frames), else null. */
  padLengths: Tensor | null;
}

export class ConformerLayer extends Module {
  readonly mha_layer: RelPosMHAXL;
  readonly convolution_module: ConvolutionModule;
  readonly ffn_module1: FfnModule;
  readonly ffn_module2: FfnModule;
  readonly norm1: SbLayerNorm;
  readonly norm2: SbLayerNorm;

  constructor(be: Backend, o: ConformerLayerOptions) {
    super(be);
    const d = o.dModel, p = o.dropout ?? 0.1;
    this.mha_layer = this.child("mha_layer", new RelPosMHAXL(be, d, o.heads, p));
    this.convolution_module = this.child(
      "convolution_module",
      new ConvolutionModule(be, d, o.kernelSize ?? 31, p, "swish"),
    );
    this.ffn_module1 = this.child("ffn_module1", new FfnModule(be, d, o.dFfn, p, "swish"));
    this.ffn_module2 = this.child("ffn_module2", new FfnModule(be, d, o.dFfn, p, "swish"));
    this.norm1 = this.child("norm1", new SbLayerNorm(be, [d], 1e-5));
    this.norm2 = this.child("norm2", new SbLayerNorm(be, [d], 1e-5));
  }

  /** x (B, S, d) -> (B, S, d). `name` prefixes the probes of ctx.capture. */
  forward(ctx: ForwardContext, x: Tensor, m: ConformerMasks, name = "layer"): Tensor {
    const cap = ctx.capture;
    // As the ConMamba layer: each residual sum is normalised by the LayerNorm after it in the
    // kernel that writes it (residual, addThenNorm; the bits of the ops in sequence).
    const a = this.ffn_module1.residual(ctx, x, 0.5, {
      next: { norm: this.norm1.norm, forMatmul: true }, // read by in_proj alone
    }, (f) => cap?.(`${name}.ffn_module1`, f));
    const att = this.mha_layer.forward(ctx, a.normed!, m.posEmb, m.keyLengths);
    cap?.(`${name}.mha_layer`, att);
    const convNorm = { norm: this.convolution_module.layer_norm, forMatmul: true };
    const b = addThenNorm(ctx, a.out, att, convNorm);
    const cv = this.convolution_module.forward(ctx, b.out, m.padLengths, b.normed);
    cap?.(`${name}.convolution_module`, cv);
    const c = addThenNorm(ctx, b.out, cv, { norm: this.ffn_module2.norm, forMatmul: true });
    const s = this.ffn_module2.residual(ctx, c.out, 0.5, {
      normed: c.normed,
      next: { norm: this.norm2.norm, forMatmul: false },
    }, (f) => cap?.(`${name}.ffn_module2`, f));
    const y = s.normed!;
    cap?.(name, y);
    return y;
  }
}
