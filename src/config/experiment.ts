/**
 * The schema of one experiment: every key of an `hparams/<name>.yaml` file, typed and checked.
 *
 * Files are flat (one level, scalar or list-of-scalar values) so that `--key value` on the command
 * line addresses any key. Every key must appear in every file: a key that does not apply to an
 * experiment (Mamba sizes of a Conformer, beam-search weights of a CTC-only model) is `null`.
 * Key names follow the original recipe files (CONMAMBA_SPEC.md §2) wherever they exist; settings
 * that were nested objects there have flat snake_case names here.
 *
 * The one-line comment on each key is its documentation.
 */
import { z } from "zod";

/** LibriSpeech split names (§10.1); the generated mini corpus reuses them. */
export const LIBRISPEECH_SPLITS = [
  "train-clean-100",
  "train-clean-360",
  "train-other-500",
  "dev-clean",
  "dev-other",
  "test-clean",
  "test-other",
] as const;

// Each builder attaches one "expected ..." sentence to every check it makes, so that an error
// message says what a key needs. load.ts adds " or null" for keys that accept null.
const e = (what: string) => ({ error: `expected ${what}` });

const posInt = () => z.int(e("a positive integer")).min(1, e("a positive integer"));
const nonNegInt = () => z.int(e("a non-negative integer")).min(0, e("a non-negative integer"));
const posNum = () => z.number(e("a positive number")).gt(0, e("a positive number"));
const nonNegNum = () => z.number(e("a non-negative number")).min(0, e("a non-negative number"));
const unitClosed = () =>
  z.number(e("a number in [0, 1]")).min(0, e("a number in [0, 1]")).max(1, e("a number in [0, 1]"));
const unitHalfOpen = () =>
  z.number(e("a number in [0, 1)")).min(0, e("a number in [0, 1)")).lt(1, e("a number in [0, 1)"));
const nonPosNum = () => z.number(e("a number <= 0")).max(0, e("a number <= 0"));
const bool = () => z.boolean(e("true or false"));
const text = () => z.string(e("a non-empty string")).min(1, e("a non-empty string"));
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, e(`one of ${values.join(", ")}`));
const list = <T extends z.ZodType>(item: T, what: string) =>
  z.array(item, e(`a non-empty list of ${what}`)).min(1, e(`a non-empty list of ${what}`))
    .readonly();
const splits = () => list(oneOf(LIBRISPEECH_SPLITS), "LibriSpeech split names");

/** The keys and their types, before the cross-key checks. */
export const ExperimentFields = z.strictObject({
  // ---- identity and data (§2.1, §10) ----
  /** Experiment name as the original recipe spells it (e.g. conmamba_L_S2S); used in reports. */
  experiment: z.string(e("a name of letters, digits, '_', '.', '-'")).regex(
    /^[A-Za-z0-9_.-]+$/,
    e("a name of letters, digits, '_', '.', '-'"),
  ),
  /** Random seed of the run (the original seeds torch.manual_seed only). */
  seed: nonNegInt(),
  /** Folder holding the LibriSpeech splits (relative to the working directory); null: download. */
  data_folder: text().nullable(),
  /** Splits concatenated, in this order, into the training set. */
  train_splits: splits(),
  /** Splits used for validation during training. */
  dev_splits: splits(),
  /** Splits decoded and scored at the end (the original evaluates test-clean and test-other). */
  test_splits: splits(),
  /** Pretrained Transformer LM checkpoint for S2S test decoding; null: decode without an LM. */
  lm: text().nullable(),

  // ---- tokenizer (§10.3) ----
  /** SentencePiece model type: unigram subwords (S2S) or characters (CTC). */
  token_type: oneOf(["unigram", "char"]),
  /** Tokenizer vocabulary size for unigram models; null for char models (size follows the text). */
  vocab_size: posInt().nullable(),
  /** SentencePiece character_coverage. */
  character_coverage: z.number(e("a number in (0, 1]")).gt(0, e("a number in (0, 1]")).max(
    1,
    e("a number in (0, 1]"),
  ),

  // ---- training loop (§8.3, §8.9) ----
  /** Number of training epochs (epochs are numbered from 1). */
  number_of_epochs: posInt(),
  /** Utterances per batch; only used when dynamic_batching is false. */
  batch_size: posInt(),
  /** Micro-batches per optimiser step (gradient accumulation). */
  grad_accumulation_factor: posInt(),
  /** Global L2 gradient-norm clipping threshold applied at each optimiser step. */
  max_grad_norm: posNum(),
  /** Loss reduction: summed over frames/tokens, divided by the batch size (§13 G17). */
  loss_reduction: oneOf(["batchmean"]),
  /** Training-set order: random = CSV file order with sampler shuffling; or sorted by duration. */
  sorting: oneOf(["random", "ascending", "descending"]),
  /** Training arithmetic: bf16 (matrix products on bf16-rounded inputs, fp32 accumulation, saved
   * matmul operands packed in bf16; fp32 master weights, optimiser, norms, losses), or plain fp32.
   * Both backends. */
  precision: oneOf(["bf16", "fp32"]),
  /** Checkpoints kept per criterion (best, most recent); evaluation averages all kept (§13 G5). */
  avg_checkpoints: posInt(),
  /** Weight of CTC in the joint S2S loss (attention gets 1 - ctc_weight); null: CTC only. */
  ctc_weight: unitClosed().nullable(),

  // ---- optimiser and schedule (§8.1, §8.2) ----
  /** Optimiser class: Adam (coupled L2) or AdamW (decoupled weight decay). */
  optimizer: oneOf(["Adam", "AdamW"]),
  /** Peak learning rate (original key lr_adam in S2S files, lr_model in CTC files). */
  lr: posNum(),
  /** Adam betas [beta1, beta2]. */
  betas: z.tuple([unitHalfOpen(), unitHalfOpen()], e("a list [beta1, beta2] in [0, 1)"))
    .readonly(),
  /** Adam epsilon. */
  adam_eps: posNum(),
  /** Weight decay of the optimiser, applied to every parameter. */
  weight_decay: nonNegNum(),
  /** Noam schedule warm-up length, in optimiser steps. */
  n_warmup_steps: posInt(),

  // ---- input normalisation (§3.6) ----
  /** Global mean/std statistics are updated during epochs < update_until_epoch. */
  update_until_epoch: posInt(),
  /** Checkpoint name of the normaliser state (normalize.ckpt or normalizer.ckpt). */
  normalizer_name: oneOf(["normalize", "normalizer"]),

  // ---- features (§3) ----
  /** Audio sample rate in Hz. */
  sample_rate: posInt(),
  /** FFT size in samples. */
  n_fft: posInt(),
  /** Analysis window length in milliseconds (zero-padded to n_fft when shorter). */
  win_length: posNum(),
  /** Number of mel filters. */
  n_mels: posInt(),

  // ---- dynamic batching (§8.5) ----
  /** Group utterances into buckets of similar duration with a budget of seconds per batch. */
  dynamic_batching: bool(),
  /** Seconds of (un-perturbed) audio per training batch. */
  max_batch_length_train: posNum(),
  /** Seconds of audio per validation batch (original CTC key: max_batch_len_val). */
  max_batch_length_val: posNum(),
  /** Number of duration buckets of the dynamic sampler. */
  num_bucket: posInt(),
  /** Shuffle utterances before bucketing (false: batch contents fixed, file order). */
  shuffle: bool(),
  /** Order of the generated batches. */
  batch_ordering: oneOf(["random", "ascending", "descending"]),
  /** Upper bound on utterances per dynamic batch. */
  max_batch_ex: posInt(),

  // ---- model (§1, §2.2, §4) ----
  /** TransformerASR class the original instantiates; decides checkpoint tensor names (§5.4). */
  transformer_class: oneOf(["speechbrain.TransformerASR", "modules.TransformerASR"]),
  /** Encoder layer type. */
  encoder_module: oneOf(["conmamba", "conformer"]),
  /** Decoder layer type; null: no decoder (CTC-only model). */
  decoder_module: oneOf(["transformer", "mamba"]).nullable(),
  /** Encoder attention kind; RelPosMHAXL also means no absolute encoding on the encoder input. */
  attention_type: oneOf(["RelPosMHAXL", "regularMHA"]),
  /** Width of the CNN front-end output = last cnn_out_channels x mel bins after striding. */
  input_size: posInt(),
  /** Output channels of each CNN front-end block. */
  cnn_out_channels: list(posInt(), "positive integers"),
  /** Square kernel size of each CNN front-end block. */
  cnn_kernel_sizes: list(posInt(), "positive integers"),
  /** Stride (time and frequency) of each CNN front-end block. */
  cnn_strides: list(posInt(), "positive integers"),
  /** Whether each CNN front-end block has a residual connection. */
  cnn_residuals: list(bool(), "booleans"),
  /** Convolution layers per CNN front-end block. */
  cnn_num_layers_per_block: posInt(),
  /** Model width d. */
  d_model: posInt(),
  /** Attention heads (Conformer encoder, Transformer decoder). */
  nhead: posInt(),
  /** Number of encoder layers. */
  num_encoder_layers: posInt(),
  /** Number of decoder layers (0 for CTC-only models). */
  num_decoder_layers: nonNegInt(),
  /** Hidden width of the feed-forward modules. */
  d_ffn: posInt(),
  /** Dropout probability in FFN, conv module, attention and input projection. */
  transformer_dropout: unitHalfOpen(),
  /** Decoder feed-forward activation (the encoders use their own, §13 G8). */
  activation: oneOf(["GELU"]),
  /** Depthwise kernel size of the encoder convolution module. */
  conv_kernel_size: z.int(e("a positive odd integer")).min(1, e("a positive odd integer"))
    .refine((k) => k % 2 === 1, e("a positive odd integer")),
  /** Rows of the sinusoidal positional-encoding tables. */
  max_length: posInt(),
  /** Output vocabulary size V of ctc_lin (and seq_lin). */
  output_neurons: posInt(),
  /** CTC blank id. */
  blank_index: nonNegInt(),
  /** Token id used to pad target sequences (S2S); null where the original has none. */
  pad_index: nonNegInt().nullable(),
  /** Beginning-of-sentence id. */
  bos_index: nonNegInt(),
  /** End-of-sentence id. */
  eos_index: nonNegInt(),
  /** Label smoothing of the attention loss (0: NLL, > 0: KL divergence); null: CTC only. */
  label_smoothing: unitHalfOpen().nullable(),
  /** Mamba SSM state size; null when no Mamba block is used. */
  d_state: posInt().nullable(),
  /** Mamba inner-width expansion factor; null when no Mamba block is used. */
  expand: posInt().nullable(),
  /** Mamba causal depthwise conv width; null when no Mamba block is used. */
  d_conv: posInt().nullable(),
  /** Whether the encoder's Mamba blocks scan both directions; null when no Mamba block is used. */
  bidirectional: bool().nullable(),

  // ---- augmentation (§8.7, §8.8) ----
  /** Speed-perturbation factors in percent, one drawn per training utterance. */
  speed_changes: list(posInt(), "positive integers"),
  /** Shortest time mask, in frames. */
  time_drop_length_low: posInt(),
  /** Exclusive upper bound of the time-mask length, in frames. */
  time_drop_length_high: posInt(),
  /** Fewest time masks per utterance (one count drawn per batch). */
  time_drop_count_low: nonNegInt(),
  /** Most time masks per utterance. */
  time_drop_count_high: nonNegInt(),
  /** Replacement value of masked time frames. */
  time_drop_replace: oneOf(["mean"]),
  /** Narrowest frequency mask, in mel bins. */
  freq_drop_length_low: posInt(),
  /** Exclusive upper bound of the frequency-mask width, in mel bins. */
  freq_drop_length_high: posInt(),
  /** Fewest frequency masks per utterance (one count drawn per batch). */
  freq_drop_count_low: nonNegInt(),
  /** Most frequency masks per utterance. */
  freq_drop_count_high: nonNegInt(),
  /** Replacement value of masked mel bins. */
  freq_drop_replace: oneOf(["mean"]),
  /** Time-warp window in frames; null: no time warp. */
  time_warp_window: posInt().nullable(),
  /** Time-warp interpolation; null: no time warp. */
  time_warp_mode: oneOf(["bicubic"]).nullable(),

  // ---- validation and decoding (§8.9, §9) ----
  /** Run the validation beam search (S2S) every this many epochs; CTC: greedy WER every epoch. */
  valid_search_interval: posInt(),
  /** Beam of the validation search (S2S); null: greedy CTC. */
  valid_beam_size: posInt().nullable(),
  /** Beam of the test search (joint CTC/attention for S2S, CTC beam search for CTC). */
  test_beam_size: posInt(),
  /**
   * Search of the decode stage and `transcribe`: beam (the recipe's) or greedy (CTC: argmax per
   * frame, repeats merged, blanks dropped; S2S: the joint CTC/attention search with beam 1).
   */
  test_search: oneOf(["beam", "greedy"]),
  /** Fewest decoding steps as a fraction of encoder frames (S2S). */
  min_decode_ratio: nonNegNum().nullable(),
  /** Most decoding steps as a fraction of encoder frames (S2S). */
  max_decode_ratio: posNum().nullable(),
  /** CTC prefix-score weight in the S2S beam search (attention gets 1 - this). */
  ctc_weight_decode: unitClosed().nullable(),
  /** LM score weight in the S2S test search (used only when lm is set). */
  lm_weight: nonNegNum().nullable(),
  /** Decoder softmax temperature of the S2S test search (validation uses 1.0). */
  test_temperature: posNum().nullable(),
  /** LM softmax temperature of the S2S test search. */
  lm_temperature: posNum().nullable(),
  /** CTC beam search: drop beams scoring this far below the best (log domain). */
  beam_prune_logp: nonPosNum().nullable(),
  /** CTC beam search: consider only tokens with frame log-probability above this. */
  token_prune_min_logp: nonPosNum().nullable(),
  /** CTC beam search: merge beams by recent history only (pyctcdecode's prune_history). */
  prune_history: bool().nullable(),
});

type Fields = z.infer<typeof ExperimentFields>;
type Ctx = z.RefinementCtx<Fields>;

/** Keys that only a sequence-to-sequence (decoder) experiment sets; null in CTC-only files. */
export const S2S_ONLY_KEYS = [
  "ctc_weight",
  "label_smoothing",
  "pad_index",
  "valid_beam_size",
  "min_decode_ratio",
  "max_decode_ratio",
  "ctc_weight_decode",
  "lm_weight",
  "test_temperature",
  "lm_temperature",
] as const satisfies readonly (keyof Fields)[];

/** Keys that only a CTC-only experiment sets; null in S2S files. */
export const CTC_ONLY_KEYS = [
  "beam_prune_logp",
  "token_prune_min_logp",
  "prune_history",
] as const satisfies readonly (keyof Fields)[];

/** Keys that are set exactly when a Mamba block exists (ConMamba encoder or Mamba decoder). */
export const MAMBA_KEYS = [
  "d_state",
  "expand",
  "d_conv",
  "bidirectional",
] as const satisfies readonly (keyof Fields)[];

function fail(ctx: Ctx, key: keyof Fields, expected: string): void {
  ctx.addIssue({ code: "custom", path: [key], message: `expected ${expected}` });
}

function crossChecks(x: Fields, ctx: Ctx): void {
  const s2s = x.decoder_module !== null;
  if (s2s !== (x.num_decoder_layers > 0)) {
    fail(
      ctx,
      "num_decoder_layers",
      s2s ? `at least 1 with decoder_module ${x.decoder_module}` : "0 with decoder_module null",
    );
  }
  if (x.d_model % x.nhead !== 0) {
    fail(ctx, "nhead", `a divisor of d_model (${x.d_model})`);
  }
  for (const k of S2S_ONLY_KEYS) {
    if (s2s && x[k] === null) fail(ctx, k, "a value: the experiment has a decoder");
    if (!s2s && x[k] !== null) fail(ctx, k, "null: the experiment has no decoder (CTC only)");
  }
  for (const k of CTC_ONLY_KEYS) {
    if (!s2s && x[k] === null) fail(ctx, k, "a value: the experiment is CTC only");
    if (s2s && x[k] !== null) fail(ctx, k, "null: CTC beam-search settings need a CTC-only model");
  }
  if (!s2s && x.lm !== null) fail(ctx, "lm", "null: CTC-only experiments decode without an LM");
  if (!s2s && x.token_type !== "char") fail(ctx, "token_type", "char for a CTC-only experiment");
  const mamba = x.encoder_module === "conmamba" || x.decoder_module === "mamba";
  for (const k of MAMBA_KEYS) {
    if (mamba && x[k] === null) fail(ctx, k, "a value: the model contains Mamba blocks");
    if (!mamba && x[k] !== null) fail(ctx, k, "null: the model contains no Mamba block");
  }
  if (x.transformer_class === "speechbrain.TransformerASR") {
    if (x.encoder_module !== "conformer") {
      fail(ctx, "encoder_module", "conformer with transformer_class speechbrain.TransformerASR");
    }
    if (x.decoder_module === "mamba") {
      fail(ctx, "decoder_module", "transformer with transformer_class speechbrain.TransformerASR");
    }
  }
  if (x.token_type === "unigram" && x.vocab_size !== x.output_neurons) {
    fail(ctx, "vocab_size", `output_neurons (${x.output_neurons}) for a unigram tokenizer`);
  }
  if (x.token_type === "char" && x.vocab_size !== null) {
    fail(ctx, "vocab_size", "null for a char tokenizer (its size follows the training text)");
  }
  for (const k of ["blank_index", "bos_index", "eos_index", "pad_index"] as const) {
    const v = x[k];
    if (v !== null && v >= x.output_neurons) {
      fail(ctx, k, `an id below output_neurons (${x.output_neurons})`);
    }
  }
  if (x.bos_index === x.eos_index) fail(ctx, "eos_index", "an id different from bos_index");
  if (x.blank_index === x.bos_index || x.blank_index === x.eos_index) {
    fail(ctx, "blank_index", "an id different from bos_index and eos_index");
  }
  if ((x.time_warp_window === null) !== (x.time_warp_mode === null)) {
    fail(ctx, "time_warp_mode", "null exactly when time_warp_window is null");
  }
  for (const p of ["time", "freq"] as const) {
    const lo = x[`${p}_drop_length_low`], hi = x[`${p}_drop_length_high`];
    if (hi <= lo) fail(ctx, `${p}_drop_length_high`, `more than ${p}_drop_length_low (${lo})`);
    const clo = x[`${p}_drop_count_low`], chi = x[`${p}_drop_count_high`];
    if (chi < clo) fail(ctx, `${p}_drop_count_high`, `at least ${p}_drop_count_low (${clo})`);
  }
  if (
    x.min_decode_ratio !== null && x.max_decode_ratio !== null &&
    x.max_decode_ratio < x.min_decode_ratio
  ) {
    fail(ctx, "max_decode_ratio", `at least min_decode_ratio (${x.min_decode_ratio})`);
  }
  const blocks = x.cnn_out_channels.length;
  for (const k of ["cnn_kernel_sizes", "cnn_strides", "cnn_residuals"] as const) {
    if (x[k].length !== blocks) fail(ctx, k, `${blocks} entries, one per cnn_out_channels entry`);
  }
  let bins = x.n_mels;
  for (const s of x.cnn_strides) bins = Math.ceil(bins / s);
  const width = bins * x.cnn_out_channels[blocks - 1];
  if (x.input_size !== width) {
    fail(ctx, "input_size", `${width} (last cnn_out_channels x ${bins} mel bins after striding)`);
  }
  const window = Math.round((x.sample_rate * x.win_length) / 1000);
  if (window > x.n_fft) {
    fail(ctx, "win_length", `a window of at most n_fft (${x.n_fft}) samples, not ${window}`);
  }
}

/** One experiment: the keys above plus the cross-key rules (null where a key does not apply). */
export const ExperimentSchema = ExperimentFields.superRefine(crossChecks);

export type Experiment = z.infer<typeof ExperimentSchema>;
export type ConfigKey = keyof Experiment;

/** Every key, in schema order. */
export const CONFIG_KEYS: readonly ConfigKey[] = Object.freeze(
  Object.keys(ExperimentFields.shape) as ConfigKey[],
);
