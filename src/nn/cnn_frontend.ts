/**
 * The CNN front end (CONMAMBA_SPEC.md 4.2, SpeechBrain ConvolutionFrontEnd): two blocks of
 * Conv2d 3x3 stride 2 with reflect padding 1 -> LayerNorm over (freq, channel) jointly (eps 1e-5)
 * -> LeakyReLU(0.01) -> Dropout(0.1). (B, T, 80) -> (B, T', 20, 32), T' = ceil(ceil(T/2)/2).
 * Names: convblock_{i}.convs.conv_0.conv.{weight,bias}, convblock_{i}.convs.norm_0.norm.*.
 */
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { leakyReluDropout, reshape } from "./_ops.ts";
import { SbLayerNorm } from "./layer_norm.ts";
import { type ForwardContext, Module } from "./module.ts";

/** nn.Conv2d kept as `.conv` (speechbrain.nnet.CNN.Conv2d); weight (Cout, Cin, k_freq, k_time). */
export class SbConv2d extends Module {
  readonly conv: Conv2dParams;

  constructor(be: Backend, cin: number, cout: number) {
    super(be);
    this.conv = this.child("conv", new Conv2dParams(be, cin, cout));
  }

  /** x (B, T, F, Cin) -> (B, T', F', Cout). */
  forward(ctx: ForwardContext, x: Tensor): Tensor {
    return ag.conv2d(ctx.tape, x, this.conv.weight, this.conv.bias);
  }
}

export class Conv2dParams extends Module {
  readonly weight: Tensor; // (Cout, Cin, 3, 3)
  readonly bias: Tensor; // (Cout)
  constructor(be: Backend, cin: number, cout: number) {
    super(be);
    this.weight = this.param("weight", [cout, cin, 3, 3]);
    this.bias = this.param("bias", [cout]);
  }
}

/** ConvBlock with one layer: its modules live in `convs` (a Sequential). */
class ConvBlockLayers extends Module {
  readonly conv_0: SbConv2d;
  readonly norm_0: SbLayerNorm;
  constructor(be: Backend, cin: number, cout: number, freqOut: number) {
    super(be);
    this.conv_0 = this.child("conv_0", new SbConv2d(be, cin, cout));
    this.norm_0 = this.child("norm_0", new SbLayerNorm(be, [freqOut, cout], 1e-5));
  }
}

export class ConvBlock extends Module {
  readonly convs: ConvBlockLayers;
  constructor(be: Backend, cin: number, cout: number, freqOut: number, readonly dropoutP = 0.1) {
    super(be);
    this.convs = this.child("convs", new ConvBlockLayers(be, cin, cout, freqOut));
  }

  /** x (B, T, F, Cin) -> (B, T', F', Cout). */
  forward(ctx: ForwardContext, x: Tensor): Tensor {
    const h = this.convs.conv_0.forward(ctx, x);
    const n = this.convs.norm_0.forward(ctx, h);
    return leakyReluDropout(ctx, n, 0.01, this.dropoutP); // dropout(leaky_relu(n)), one kernel
  }
}

export interface CnnFrontEndOptions {
  nMels?: number; // 80
  channels?: readonly [number, number]; // [64, 32]
}

export class CnnFrontEnd extends Module {
  readonly convblock_0: ConvBlock;
  readonly convblock_1: ConvBlock;
  readonly outFreq: number;
  readonly outChannels: number;

  constructor(be: Backend, o: CnnFrontEndOptions = {}) {
    super(be);
    const mels = o.nMels ?? 80, [c0, c1] = o.channels ?? [64, 32];
    const f0 = Math.floor((mels - 1) / 2) + 1, f1 = Math.floor((f0 - 1) / 2) + 1;
    this.convblock_0 = this.child("convblock_0", new ConvBlock(be, 1, c0, f0));
    this.convblock_1 = this.child("convblock_1", new ConvBlock(be, c0, c1, f1));
    this.outFreq = f1;
    this.outChannels = c1;
  }

  /** feats (B, T, 80) -> (B, T', 20, 32). */
  forward(ctx: ForwardContext, feats: Tensor): Tensor {
    const [b, t, f] = feats.shape;
    const x = reshape(ctx.tape, feats, [b, t, f, 1]); // one input channel
    return this.convblock_1.forward(ctx, this.convblock_0.forward(ctx, x));
  }
}
