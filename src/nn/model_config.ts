/**
 * An experiment's model from its hparams (CONMAMBA_SPEC.md §2.2, §4): which encoder and decoder,
 * their sizes, and the tensor-name spelling of the TransformerASR class the original used (§5.4).
 */
import type { Experiment } from "../config/experiment.ts";
import { UserError } from "../pipeline/errors.ts";
import type { Backend } from "../tensor/backend.ts";
import { AsrModel, type AsrModelOptions } from "./asr_model.ts";

type ModelKeys =
  | "encoder_module"
  | "decoder_module"
  | "transformer_class"
  | "input_size"
  | "cnn_out_channels"
  | "d_model"
  | "nhead"
  | "num_encoder_layers"
  | "num_decoder_layers"
  | "d_ffn"
  | "transformer_dropout"
  | "conv_kernel_size"
  | "output_neurons"
  | "n_mels"
  | "d_state"
  | "expand"
  | "d_conv";

/** The config keys that decide the model (what a stage building one must declare it reads). */
export const MODEL_KEYS: readonly ModelKeys[] = [
  "encoder_module",
  "decoder_module",
  "transformer_class",
  "input_size",
  "cnn_out_channels",
  "d_model",
  "nhead",
  "num_encoder_layers",
  "num_decoder_layers",
  "d_ffn",
  "transformer_dropout",
  "conv_kernel_size",
  "output_neurons",
  "n_mels",
  "d_state",
  "expand",
  "d_conv",
];

export type ModelConfig = Pick<Experiment, ModelKeys>;

export function modelOptions(c: Readonly<Partial<ModelConfig>>): AsrModelOptions {
  const ch = c.cnn_out_channels!;
  if (ch.length !== 2) {
    throw new UserError(
      `cnn_out_channels must hold 2 values (the CNN front end's blocks), got [${ch}]`,
    );
  }
  const freq = Math.ceil(Math.ceil(c.n_mels! / 2) / 2);
  if (c.input_size !== freq * ch[1]) {
    throw new UserError(
      `input_size ${c.input_size} must equal the CNN's output features ${freq} x ${ch[1]} = ` +
        `${freq * ch[1]} (n_mels ${c.n_mels}, cnn_out_channels [${ch}])`,
    );
  }
  const s2s = c.decoder_module !== null;
  if (s2s && !(c.num_decoder_layers! > 0)) {
    throw new UserError(`decoder_module ${c.decoder_module} needs num_decoder_layers > 0`);
  }
  return {
    encoder: c.encoder_module!,
    decoder: c.decoder_module ?? null,
    dModel: c.d_model!,
    dFfn: c.d_ffn!,
    numEncoderLayers: c.num_encoder_layers!,
    numDecoderLayers: s2s ? c.num_decoder_layers! : 0,
    heads: c.nhead!,
    vocab: c.output_neurons!,
    nMels: c.n_mels!,
    kernelSize: c.conv_kernel_size!,
    dropout: c.transformer_dropout!,
    cnnChannels: [ch[0], ch[1]],
    dState: c.d_state ?? 16,
    expand: c.expand ?? 2,
    dConv: c.d_conv ?? 4,
    crossName: c.transformer_class === "speechbrain.TransformerASR"
      ? "mutihead_attn"
      : "multihead_attn",
  };
}

export function buildModel(be: Backend, c: Readonly<Partial<ModelConfig>>): AsrModel {
  return new AsrModel(be, modelOptions(c));
}
