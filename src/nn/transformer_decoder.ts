/**
 * The pre-norm Transformer decoder of the S2S models (CONMAMBA_SPEC.md 4.11; LN eps 1e-6, 4.16):
 *   t = t + Drop(self_attn(LN1(t); causal mask, target key padding where token == pad))
 *   t = t + Drop(cross(q = LN2(t), k = v = memory; memory frames >= round(l T') masked))
 *   t = t + Drop(pos_ffn(LN3(t)))                  (GELU, the yaml's `activation`)
 * and `norm` after the last layer. The cross-attention is `multihead_attn` in the repository's
 * decoder (ConMamba files) and `mutihead_attn` in SpeechBrain v1.0.0's (Conformer S2S, §5.4 G21).
 */
import type { Backend } from "../tensor/backend.ts";
import { Tensor } from "../tensor/tensor.ts";
import { PositionwiseFeedForward } from "./ffn.ts";
import { SbLayerNorm } from "./layer_norm.ts";
import { type ForwardContext, Module, scoped } from "./module.ts";
import { SbMultiheadAttention } from "./multihead_attention.ts";

export interface TransformerDecoderOptions {
  dModel: number;
  dFfn: number;
  heads: number;
  dropout?: number; // 0.1
  /** Attribute name of the cross-attention: "multihead_attn" or SpeechBrain 1.0's "mutihead_attn". */
  crossName?: "multihead_attn" | "mutihead_attn";
}

/** What the decoder needs besides its input: the padding of targets and memory. */
export interface DecoderMasks {
  /** (B, U) additive key mask of the targets: -Infinity where the token is pad (0), else 0. */
  targetKeyMask: Tensor;
  /** (B) absolute memory lengths round(l T') (frames at and after them are masked). */
  memoryLengths: Tensor;
}

export class TransformerDecoderLayer extends Module {
  readonly self_attn: SbMultiheadAttention;
  readonly cross: SbMultiheadAttention;
  readonly pos_ffn: PositionwiseFeedForward;
  readonly norm1: SbLayerNorm;
  readonly norm2: SbLayerNorm;
  readonly norm3: SbLayerNorm;
  readonly dropoutP: number;

  constructor(be: Backend, o: TransformerDecoderOptions) {
    super(be);
    const d = o.dModel, p = o.dropout ?? 0.1;
    this.dropoutP = p;
    this.self_attn = this.child("self_attn", new SbMultiheadAttention(be, d, o.heads, p));
    this.cross = this.child(
      o.crossName ?? "multihead_attn",
      new SbMultiheadAttention(be, d, o.heads, p),
    );
    this.pos_ffn = this.child("pos_ffn", new PositionwiseFeedForward(be, d, o.dFfn, p));
    this.norm1 = this.child("norm1", new SbLayerNorm(be, [d], 1e-6));
    this.norm2 = this.child("norm2", new SbLayerNorm(be, [d], 1e-6));
    this.norm3 = this.child("norm3", new SbLayerNorm(be, [d], 1e-6));
  }

  /**
   * t (B, U, d), memory (B, T', d) -> (B, U, d). Each residual's last Linear, dropout and add are
   * one node in training (the modules' `residual`: the bits of the ops in sequence).
   */
  forward(ctx: ForwardContext, t: Tensor, memory: Tensor, m: DecoderMasks): Tensor {
    const p = this.dropoutP;
    const t1 = this.norm1.forward(ctx, t, true); // norms 1-3: read by Linears alone
    const selfMask = { causal: true, keyMask: m.targetKeyMask };
    t = this.self_attn.residual(ctx, t, t1, t1, selfMask, true, p);
    const t2 = this.norm2.forward(ctx, t, true);
    t = this.cross.residual(ctx, t, t2, memory, { keyLengths: m.memoryLengths }, false, p);
    return this.pos_ffn.residual(ctx, t, this.norm3.forward(ctx, t, true), 1, p).out;
  }
}

class LayerList extends Module {
  readonly items: TransformerDecoderLayer[] = [];
  constructor(be: Backend, n: number, o: TransformerDecoderOptions) {
    super(be);
    for (let i = 0; i < n; i++) {
      this.items.push(this.child(String(i), new TransformerDecoderLayer(be, o)));
    }
  }
}

export class TransformerDecoder extends Module {
  readonly layers: LayerList;
  readonly norm: SbLayerNorm;

  constructor(be: Backend, numLayers: number, o: TransformerDecoderOptions) {
    super(be);
    this.layers = this.child("layers", new LayerList(be, numLayers, o));
    this.norm = this.child("norm", new SbLayerNorm(be, [o.dModel], 1e-6));
  }

  /** t (B, U, d) embedded targets + PE, memory (B, T', d). Probes decoder.layers.{i}, decoder. */
  forward(ctx: ForwardContext, t: Tensor, memory: Tensor, m: DecoderMasks): Tensor {
    let h = t;
    this.layers.items.forEach((layer, i) => {
      const x = h;
      h = scoped(ctx, () => layer.forward(ctx, x, memory, m));
      ctx.capture?.(`decoder.layers.${i}`, h);
    });
    const y = this.norm.forward(ctx, h);
    ctx.capture?.("decoder", y);
    return y;
  }
}

/** The target key mask (B, U): -Infinity where tokens[b, u] == pad, else 0. */
export function targetKeyMask(
  be: Backend,
  tokens: ArrayLike<number>,
  shape: readonly [number, number],
  pad = 0,
): Tensor {
  const m = new Float32Array(shape[0] * shape[1]);
  for (let i = 0; i < m.length; i++) m[i] = tokens[i] === pad ? -Infinity : 0;
  return Tensor.from(be, shape, m);
}
