/**
 * The CTC ConMamba model (CONMAMBA_SPEC.md 4.1, CTC recipes) as a named shorthand of AsrModel:
 * CNN -> custom_src_module -> ConMamba encoder -> ctc_lin -> log_softmax, no decoder. Module tree
 * and names: CNN.*, Transformer.* (positional_encoding, positional_encoding_decoder, encoder,
 * custom_src_module), ctc_lin.*.
 */
import type { Backend } from "../tensor/backend.ts";
import { absoluteLengths, AsrModel, type EncoderOutputs } from "./asr_model.ts";

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

export type CtcOutputs = EncoderOutputs;

export class ConMambaCtc extends AsrModel {
  constructor(be: Backend, o: ConMambaCtcOptions) {
    super(be, { ...o, encoder: "conmamba", decoder: null });
  }
}

export { absoluteLengths };
