/**
 * The models of the paper's table (CONMAMBA_SPEC.md 1, 4.1): one assembly for the S2S and CTC
 * recipes and both encoder kinds.
 *
 *   feats (B, T, n_mels) -> CNN (B, T', F', C) -> flatten (index f C + c)
 *     -> custom_src_module (Linear F'C -> d, Dropout) -> encoder (+ final LN) = enc (B, T', d)
 *     -> ctc_lin -> log_softmax                                  = p_ctc (B, T', V)
 *   tokens_bos (B, U) -> custom_tgt_module (Embedding * sqrt(d)) + absolute sinusoid PE
 *     -> decoder (memory = enc) (+ final LN) -> seq_lin -> log_softmax   = p_seq (B, U, V)
 *
 * Module tree and names as the original's state_dict (§5): CNN.*, Transformer.* (TransformerASR:
 * positional_encoding, positional_encoding_decoder, encoder, decoder, custom_src_module,
 * custom_tgt_module), seq_lin.* (S2S), ctc_lin.*. Encoder-level lengths are round-half-even of
 * rel * T' (§4.1); the ConMamba encoder ignores them (G2), the Conformer masks with them.
 */
import { roundHalfEven } from "../util/math.ts";
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import { Tensor } from "../tensor/tensor.ts";
import { dropout, logSoftmax, reshape } from "./_ops.ts";
import { CnnFrontEnd } from "./cnn_frontend.ts";
import { ConformerEncoder } from "./conformer_encoder.ts";
import { ConMambaEncoder } from "./conmamba_encoder.ts";
import { SbLinear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";
import { PositionalEncoding, RelPosEncXL } from "./positional.ts";
import { MambaDecoder } from "./mamba_decoder.ts";
import { targetKeyMask, TransformerDecoder } from "./transformer_decoder.ts";

export type EncoderKind = "conmamba" | "conformer";
export type DecoderKind = "transformer" | "mamba";

export interface AsrModelOptions {
  encoder?: EncoderKind; // conmamba
  decoder?: DecoderKind | null; // null: a CTC model
  dModel: number;
  dFfn: number;
  numEncoderLayers: number;
  numDecoderLayers?: number;
  heads?: number; // decoder (and Conformer) attention heads; 4 S, 8 L
  vocab: number;
  nMels?: number; // 80
  kernelSize?: number; // 31
  dropout?: number; // 0.1
  cnnChannels?: readonly [number, number]; // [64, 32]
  dState?: number; // 16
  expand?: number; // 2
  dConv?: number; // 4
  /** The Transformer decoder's cross-attention name (§5.4): SpeechBrain 1.0's Conformer S2S. */
  crossName?: "multihead_attn" | "mutihead_attn";
}

/** A ModuleList of one module, kept as "0". */
class OneModuleList<M extends Module> extends Module {
  readonly item: M;
  constructor(be: Backend, m: M) {
    super(be);
    this.item = this.child("0", m);
  }
}

/** SpeechBrain's ModuleList (`.layers`) of one module: custom_src_module, custom_tgt_module. */
class SbModuleList<M extends Module> extends Module {
  readonly layers: OneModuleList<M>;
  constructor(be: Backend, m: M) {
    super(be);
    this.layers = this.child("layers", new OneModuleList(be, m));
  }
  get first(): M {
    return this.layers.item;
  }
}

/** nn.Embedding. */
class SbEmbedding extends Module {
  readonly weight: Tensor; // (V, d)
  constructor(be: Backend, vocab: number, d: number) {
    super(be);
    this.weight = this.param("weight", [vocab, d]);
  }
}

/** speechbrain Embedding: nn.Embedding kept as `.Embedding`. */
class SbEmbeddingWrapper extends Module {
  readonly Embedding: SbEmbedding;
  constructor(be: Backend, vocab: number, d: number) {
    super(be);
    this.Embedding = this.child("Embedding", new SbEmbedding(be, vocab, d));
  }
}

/** NormalizedEmbedding: emb(x) * sqrt(d) (the scaling happens in TransformerAsr.embedTargets). */
class NormalizedEmbedding extends Module {
  readonly emb: SbEmbeddingWrapper;
  constructor(be: Backend, vocab: number, d: number) {
    super(be);
    this.emb = this.child("emb", new SbEmbeddingWrapper(be, vocab, d));
  }
}

/** What an encoder offers the assembly (ConMamba ignores the lengths). */
interface Encoder extends Module {
  forward(ctx: ForwardContext, x: Tensor, lengths: readonly number[]): Tensor;
}

/** What a decoder offers the assembly. */
interface Decoder extends Module {
  forward(
    ctx: ForwardContext,
    t: Tensor,
    memory: Tensor,
    masks: { targetKeyMask: Tensor; memoryLengths: Tensor },
  ): Tensor;
}

/** TransformerASR (the repository's class, or SpeechBrain's for the Conformer S2S baselines). */
export class TransformerAsr extends Module {
  readonly positional_encoding: RelPosEncXL;
  readonly positional_encoding_decoder: PositionalEncoding;
  readonly encoder: Encoder;
  readonly decoder: Decoder | null;
  readonly custom_src_module: SbModuleList<SbLinear>;
  readonly custom_tgt_module: SbModuleList<NormalizedEmbedding> | null;
  #pe: Float32Array | null = null;

  constructor(be: Backend, readonly o: AsrModelOptions, inFeatures: number) {
    super(be);
    const d = o.dModel;
    this.positional_encoding = this.child("positional_encoding", new RelPosEncXL(be, d));
    this.positional_encoding_decoder = this.child(
      "positional_encoding_decoder",
      new PositionalEncoding(be, d),
    );
    this.encoder = this.child("encoder", makeEncoder(be, o, this.positional_encoding));
    this.decoder = o.decoder ? this.child("decoder", makeDecoder(be, o)) : null;
    this.custom_src_module = this.child(
      "custom_src_module",
      new SbModuleList(be, new SbLinear(be, inFeatures, d)),
    );
    this.custom_tgt_module = o.decoder
      ? this.child(
        "custom_tgt_module",
        new SbModuleList(be, new NormalizedEmbedding(be, o.vocab, d)),
      )
      : null;
  }

  /** Embedding * sqrt(d) of tokens (B, U), then + pe[:U]. Probe: dec_emb (before the PE). */
  embedTargets(ctx: ForwardContext, tokens: ArrayLike<number>, b: number, u: number): Tensor {
    const tape = ctx.tape, d = this.o.dModel, be = this.backend;
    const table = this.custom_tgt_module!.first.emb.Embedding.weight;
    const ids = Tensor.from(be, [b, u], Float32Array.from(tokens));
    // The ids are checked from `tokens`, on the host: no download (a stream sync on a GPU).
    const emb = ag.scale(tape, ag.embedding(tape, table, ids, tokens), Math.sqrt(d)); // (B, U, d)
    ctx.capture?.("dec_emb", emb);
    if (u > 2500) throw new RangeError(`target length ${u} exceeds the 2500 positions of pe`);
    this.#pe ??= this.positional_encoding_decoder.pe.toArray();
    const pe = new Float32Array(b * u * d);
    for (let i = 0; i < b; i++) pe.set(this.#pe.subarray(0, u * d), i * u * d);
    return ag.add(tape, emb, Tensor.from(be, [b, u, d], pe));
  }
}

function makeEncoder(be: Backend, o: AsrModelOptions, posEnc: RelPosEncXL): Encoder {
  const layer = {
    dModel: o.dModel,
    dFfn: o.dFfn,
    kernelSize: o.kernelSize,
    dropout: o.dropout,
    dState: o.dState,
    expand: o.expand,
    dConv: o.dConv,
  };
  switch (o.encoder ?? "conmamba") {
    case "conmamba":
      return new ConMambaEncoder(be, o.numEncoderLayers, layer);
    case "conformer": // RelPosMHAXL over TransformerASR's relative table; masks padding (§4.10)
      return new ConformerEncoder(be, o.numEncoderLayers, {
        dModel: o.dModel,
        dFfn: o.dFfn,
        heads: o.heads ?? 4,
        kernelSize: o.kernelSize,
        dropout: o.dropout,
      }, posEnc);
    default:
      throw new Error(`encoder ${o.encoder} is not implemented`);
  }
}

function makeDecoder(be: Backend, o: AsrModelOptions): Decoder {
  const n = o.numDecoderLayers ?? 0;
  switch (o.decoder) {
    case "transformer":
      return new TransformerDecoder(be, n, {
        dModel: o.dModel,
        dFfn: o.dFfn,
        heads: o.heads ?? 4,
        dropout: o.dropout,
        crossName: o.crossName,
      });
    case "mamba": // no masks: causal by the recurrence; the memory's padding is scanned (G3)
      return new MambaDecoder(be, n, {
        dModel: o.dModel,
        dFfn: o.dFfn,
        dropout: o.dropout,
        dState: o.dState,
        expand: o.expand,
        dConv: o.dConv,
      });
    default:
      throw new Error(`decoder ${o.decoder} is not implemented`);
  }
}

export interface EncoderOutputs {
  cnnOut: Tensor; // (B, T', F', C)
  srcProj: Tensor; // (B, T', d), after the input dropout
  encOut: Tensor; // (B, T', d)
  /** round(rel * T') per utterance. */
  encLengths: number[];
  logits: Tensor; // (B, T', V) ctc_lin
  logProbs: Tensor; // (B, T', V) log_softmax
}

export interface DecoderOutputs {
  decOut: Tensor; // (B, U, d) after the decoder's final LN
  seqLogits: Tensor; // (B, U, V)
  seqLogProbs: Tensor; // (B, U, V)
}

export class AsrModel extends Module {
  readonly CNN: CnnFrontEnd;
  readonly Transformer: TransformerAsr;
  readonly seq_lin: SbLinear | null;
  readonly ctc_lin: SbLinear;
  readonly dropoutP: number;

  constructor(be: Backend, readonly options: AsrModelOptions) {
    super(be);
    this.CNN = this.child(
      "CNN",
      new CnnFrontEnd(be, { nMels: options.nMels, channels: options.cnnChannels }),
    );
    const inFeatures = this.CNN.outFreq * this.CNN.outChannels;
    this.Transformer = this.child("Transformer", new TransformerAsr(be, options, inFeatures));
    this.seq_lin = options.decoder
      ? this.child("seq_lin", new SbLinear(be, options.dModel, options.vocab))
      : null;
    this.ctc_lin = this.child("ctc_lin", new SbLinear(be, options.dModel, options.vocab));
    this.dropoutP = options.dropout ?? 0.1;
  }

  get isS2S(): boolean {
    return this.seq_lin !== null;
  }

  /**
   * The encoder and CTC head. feats (B, T, n_mels), already normalised; rel (B) relative lengths
   * in (0, 1] (default: all 1).
   */
  encode(ctx: ForwardContext, feats: Tensor, rel?: ArrayLike<number>): EncoderOutputs {
    const tape = ctx.tape;
    const cnnOut = this.CNN.forward(ctx, feats);
    const [b, t, fr, c] = cnnOut.shape;
    const encLengths = absoluteLengths(rel ?? new Array(b).fill(1), t);
    const flat = reshape(tape, cnnOut, [b, t, fr * c]); // index f C + c
    const proj = this.Transformer.custom_src_module.first.forward(ctx, flat);
    ctx.capture?.("src_proj", proj);
    const srcProj = dropout(ctx, proj, this.dropoutP);
    const encOut = this.Transformer.encoder.forward(ctx, srcProj, encLengths);
    const logits = this.ctc_lin.forward(ctx, encOut);
    const logProbs = logSoftmax(tape, logits);
    return { cnnOut, srcProj, encOut, encLengths, logits, logProbs };
  }

  /**
   * The decoder and sequence head under teacher forcing: tokens (B, U) = [bos] + ids, pad 0;
   * encOut (B, T', d) with its lengths.
   */
  decode(
    ctx: ForwardContext,
    tokens: ArrayLike<number>,
    shape: readonly [number, number],
    encOut: Tensor,
    encLengths: readonly number[],
  ): DecoderOutputs {
    const decOut = this.#decoderStates(ctx, tokens, shape, encOut, encLengths);
    const seqLogits = this.seq_lin!.forward(ctx, decOut);
    return { decOut, seqLogits, seqLogProbs: logSoftmax(ctx.tape, seqLogits) };
  }

  /**
   * What a search needs of `decode`: the logits (B, V) at the last position of each row of tokens
   * (B, U), seq_lin applied to that position alone (no log-softmax over all U). The bits are those
   * of decode's seqLogits there: every matmul output element is the same sequential sum whatever
   * the number of rows (wasm/matmul.c). Evaluation only (the last rows go through the host).
   */
  nextTokenLogits(
    ctx: ForwardContext,
    tokens: ArrayLike<number>,
    shape: readonly [number, number],
    encOut: Tensor,
    encLengths: readonly number[],
  ): Tensor {
    const decOut = this.#decoderStates(ctx, tokens, shape, encOut, encLengths);
    const [b, u] = shape, d = decOut.shape[2], all = decOut.toArray();
    const last = new Float32Array(b * d);
    for (let i = 0; i < b; i++) {
      last.set(all.subarray(((i + 1) * u - 1) * d, (i + 1) * u * d), i * d);
    }
    const logits = this.seq_lin!.forward(ctx, Tensor.from(this.backend, [b, 1, d], last));
    return logits.reshape([b, logits.shape[2]]);
  }

  /** Decoder output (B, U, d) after its final LN. */
  #decoderStates(
    ctx: ForwardContext,
    tokens: ArrayLike<number>,
    shape: readonly [number, number],
    encOut: Tensor,
    encLengths: readonly number[],
  ): Tensor {
    const dec = this.Transformer.decoder;
    if (!dec || !this.seq_lin) throw new Error("decode: this is a CTC model (no decoder)");
    const [b, u] = shape, be = this.backend;
    const t = this.Transformer.embedTargets(ctx, tokens, b, u);
    return dec.forward(ctx, t, encOut, {
      targetKeyMask: targetKeyMask(be, tokens, [b, u]),
      memoryLengths: Tensor.from(be, [b], Float32Array.from(encLengths)),
    });
  }

  /** CTC models' training/eval entry (the encoder with full lengths). */
  forward(ctx: ForwardContext, feats: Tensor, rel?: ArrayLike<number>): EncoderOutputs {
    return this.encode(ctx, feats, rel);
  }
}

/** Encoder-level absolute lengths: torch.round (half to even) of rel * T'. */
export function absoluteLengths(rel: ArrayLike<number>, frames: number): number[] {
  return Array.from(rel, (r) => roundHalfEven(Math.fround(r * frames)));
}
