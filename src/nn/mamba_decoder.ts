/**
 * The Mamba decoder of ConMamba+Mamba (CONMAMBA_SPEC.md 4.12, 5.2 "Mamba decoder layer"; G3, G23).
 * Per layer, pre-norm, LayerNorms eps 1e-6 (4.16), dropout 0.1 on the three residual branches and
 * inside the FFN (4.15), GELU FFN (G8):
 *   t = t + Drop(self_mamba(norm1(t)))
 *   s = concat_time(m, norm2(t))                       (B, T' + U, d): the memory is not normalised
 *   t = t + Drop(cross_mamba(s)[:, T':])               the last U outputs
 *   t = t + Drop(pos_ffn(norm3(t)))
 * then `norm` after the last layer. No masks at all: causality is the scan's, the memory includes
 * the padding frames of shorter utterances (G3). The input t is already embedded, scaled and has the
 * absolute positional encoding added (4.13, G9). Decoding re-runs the whole prefix (G23).
 */
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { dropout } from "./_ops.ts";
import { PositionwiseFeedForward } from "./ffn.ts";
import { SbLayerNorm } from "./layer_norm.ts";
import { Mamba } from "./mamba.ts";
import { type ForwardContext, Module, scoped } from "./module.ts";

export interface MambaDecoderOptions {
  dModel: number;
  dFfn: number;
  dropout?: number; // 0.1
  dState?: number; // 16
  expand?: number; // 2
  dConv?: number; // 4
}

export class MambaDecoderLayer extends Module {
  readonly self_mamba: Mamba;
  readonly cross_mamba: Mamba;
  readonly pos_ffn: PositionwiseFeedForward;
  readonly norm1: SbLayerNorm;
  readonly norm2: SbLayerNorm;
  readonly norm3: SbLayerNorm;
  readonly dropoutP: number;

  constructor(be: Backend, o: MambaDecoderOptions) {
    super(be);
    const d = o.dModel, mo = { dModel: d, dState: o.dState, expand: o.expand, dConv: o.dConv };
    this.dropoutP = o.dropout ?? 0.1;
    this.self_mamba = this.child("self_mamba", new Mamba(be, mo));
    this.cross_mamba = this.child("cross_mamba", new Mamba(be, mo));
    this.pos_ffn = this.child("pos_ffn", new PositionwiseFeedForward(be, d, o.dFfn, this.dropoutP));
    this.norm1 = this.child("norm1", new SbLayerNorm(be, [d], 1e-6));
    this.norm2 = this.child("norm2", new SbLayerNorm(be, [d], 1e-6));
    this.norm3 = this.child("norm3", new SbLayerNorm(be, [d], 1e-6));
  }

  /** t (B, U, d), memory (B, T', d) -> (B, U, d). */
  forward(ctx: ForwardContext, t: Tensor, memory: Tensor): Tensor {
    const tape = ctx.tape, p = this.dropoutP, u = t.shape[1];
    const sm = this.self_mamba.forward(ctx, this.norm1.forward(ctx, t, true)); // (B, U, d)
    const a = ag.add(tape, t, dropout(ctx, sm, p));
    const s = ag.concatTime(tape, [memory, this.norm2.forward(ctx, a)]); // (B, T' + U, d)
    const cm = this.cross_mamba.forward(ctx, s, u); // (B, U, d)
    const b = ag.add(tape, a, dropout(ctx, cm, p));
    const f = this.pos_ffn.forward(ctx, this.norm3.forward(ctx, b, true)); // (B, U, d)
    return ag.add(tape, b, dropout(ctx, f, p));
  }
}

class LayerList extends Module {
  readonly items: MambaDecoderLayer[] = [];
  constructor(be: Backend, n: number, o: MambaDecoderOptions) {
    super(be);
    for (let i = 0; i < n; i++) {
      this.items.push(this.child(String(i), new MambaDecoderLayer(be, o)));
    }
  }
}

/** `layers.{i}` Mamba decoder layers, then `norm` (LayerNorm eps 1e-6). */
export class MambaDecoder extends Module {
  readonly layers: LayerList;
  readonly norm: SbLayerNorm;

  constructor(be: Backend, numLayers: number, o: MambaDecoderOptions) {
    super(be);
    this.layers = this.child("layers", new LayerList(be, numLayers, o));
    this.norm = this.child("norm", new SbLayerNorm(be, [o.dModel], 1e-6));
  }

  /**
   * tgt (B, U, d) (embedded, scaled, plus positional encoding), memory (B, T', d) -> (B, U, d).
   * Probes: decoder.layers.{i} (before the final norm), decoder.
   */
  forward(ctx: ForwardContext, tgt: Tensor, memory: Tensor): Tensor {
    let h = tgt;
    this.layers.items.forEach((layer, i) => {
      const x = h;
      h = scoped(ctx, () => layer.forward(ctx, x, memory));
      ctx.capture?.(`decoder.layers.${i}`, h);
    });
    const y = this.norm.forward(ctx, h);
    ctx.capture?.("decoder", y);
    return y;
  }
}
