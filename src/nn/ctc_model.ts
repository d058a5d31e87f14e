/**
 * The CTC ConMamba model (CONMAMBA_SPEC.md 4.1, CTC recipes): CNN -> flatten (B, T', F' C) with
 * index f C + c -> custom_src_module (Linear 640 -> d, Dropout 0.1) -> ConMamba encoder (+ final
 * LN) -> ctc_lin -> log_softmax. Module tree and names: CNN.*, Transformer.* (TransformerASR:
 * positional_encoding, positional_encoding_decoder, encoder, custom_src_module), ctc_lin.*.
 */
import { roundHalfEven } from "../util/math.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { dropout, logSoftmax, reshape } from "./_ops.ts";
import { CnnFrontEnd } from "./cnn_frontend.ts";
import { ConMambaEncoder } from "./conmamba_encoder.ts";
import { SbLinear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";
import { PositionalEncoding, RelPosEncXL } from "./positional.ts";

export interface ConMambaCtcOptions {
  dModel: number; // 256 in CTC/conmamba_large
  dFfn: number; // 1024
  numEncoderLayers: number; // 18
  vocab: number; // 31
  nMels?: number; // 80
  kernelSize?: number; // 31
  dropout?: number; // 0.1
  cnnChannels?: readonly [number, number]; // [64, 32] (cnn_out_channels)
}

class SrcModule extends Module {
  readonly linear: SbLinear;
  constructor(be: Backend, inFeatures: number, d: number) {
    super(be);
    this.linear = this.child("0", new SbLinear(be, inFeatures, d));
  }
}

class CustomSrcModule extends Module {
  readonly layers: SrcModule;
  constructor(be: Backend, inFeatures: number, d: number) {
    super(be);
    this.layers = this.child("layers", new SrcModule(be, inFeatures, d));
  }
}

/** TransformerASR with a ConMamba encoder and no decoder. */
export class ConMambaTransformer extends Module {
  readonly encoder: ConMambaEncoder;
  readonly custom_src_module: CustomSrcModule;

  constructor(be: Backend, o: ConMambaCtcOptions, inFeatures: number) {
    super(be);
    this.child("positional_encoding", new RelPosEncXL(be, o.dModel));
    this.child("positional_encoding_decoder", new PositionalEncoding(be, o.dModel));
    this.encoder = this.child(
      "encoder",
      new ConMambaEncoder(be, o.numEncoderLayers, {
        dModel: o.dModel,
        dFfn: o.dFfn,
        kernelSize: o.kernelSize,
        dropout: o.dropout,
      }),
    );
    this.custom_src_module = this.child(
      "custom_src_module",
      new CustomSrcModule(be, inFeatures, o.dModel),
    );
  }
}

export interface CtcOutputs {
  cnnOut: Tensor; // (B, T', F', C)
  srcProj: Tensor; // (B, T', d), after the input dropout
  encOut: Tensor; // (B, T', d)
  logits: Tensor; // (B, T', V)
  logProbs: Tensor; // (B, T', V)
}

export class ConMambaCtc extends Module {
  readonly CNN: CnnFrontEnd;
  readonly Transformer: ConMambaTransformer;
  readonly ctc_lin: SbLinear;
  readonly dropoutP: number;

  constructor(be: Backend, readonly options: ConMambaCtcOptions) {
    super(be);
    this.CNN = this.child(
      "CNN",
      new CnnFrontEnd(be, { nMels: options.nMels, channels: options.cnnChannels }),
    );
    const inFeatures = this.CNN.outFreq * this.CNN.outChannels;
    this.Transformer = this.child("Transformer", new ConMambaTransformer(be, options, inFeatures));
    this.ctc_lin = this.child("ctc_lin", new SbLinear(be, options.dModel, options.vocab));
    this.dropoutP = options.dropout ?? 0.1;
  }

  /**
   * feats (B, T, n_mels), already normalised. The encoder ignores lengths (G2); they matter only
   * to the loss (round-half-even of rel * T', CONMAMBA_SPEC.md 4.1).
   */
  forward(ctx: ForwardContext, feats: Tensor): CtcOutputs {
    const tape = ctx.tape;
    const cnnOut = this.CNN.forward(ctx, feats);
    const [b, t, fr, c] = cnnOut.shape;
    const flat = reshape(tape, cnnOut, [b, t, fr * c]); // index f C + c
    const proj = this.Transformer.custom_src_module.layers.linear.forward(ctx, flat);
    ctx.capture?.("src_proj", proj);
    const srcProj = dropout(ctx, proj, this.dropoutP);
    const encOut = this.Transformer.encoder.forward(ctx, srcProj);
    const logits = this.ctc_lin.forward(ctx, encOut);
    const logProbs = logSoftmax(tape, logits);
    return { cnnOut, srcProj, encOut, logits, logProbs };
  }
}

/** Encoder-level absolute lengths: torch.round (half to even) of rel * T'. */
export function absoluteLengths(rel: ArrayLike<number>, frames: number): number[] {
  return Array.from(rel, (r) => roundHalfEven(Math.fround(r * frames)));
}

export { roundHalfEven };
