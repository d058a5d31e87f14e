/**
 * The Conformer encoder of the baselines (CONMAMBA_SPEC.md 4.10, 4.14; SpeechBrain v1.0.0
 * ConformerEncoder): `layers.{i}` Conformer layers, then `norm` (LayerNorm eps 1e-6, 4.16).
 * RelPosEncXL's table (4.4) is computed once per forward and read by every layer. Padding:
 * attention masks keys >= length and the conv module's output is zeroed at frames >= length.
 */
import type { Backend } from "../tensor/backend.ts";
import { Tensor } from "../tensor/tensor.ts";
import {
  ConformerLayer,
  type ConformerLayerOptions,
  type ConformerMasks,
} from "./conformer_layer.ts";
import { SbLayerNorm } from "./layer_norm.ts";
import { type ForwardContext, Module, scoped } from "./module.ts";
import { RelPosEncXL } from "./positional.ts";

class LayerList extends Module {
  readonly items: ConformerLayer[] = [];
  constructor(be: Backend, n: number, o: ConformerLayerOptions) {
    super(be);
    for (let i = 0; i < n; i++) this.items.push(this.child(String(i), new ConformerLayer(be, o)));
  }
}

export class ConformerEncoder extends Module {
  readonly layers: LayerList;
  readonly norm: SbLayerNorm;
  /** TransformerASR's `positional_encoding` (not a child: it is not under `encoder.`). */
  readonly posEnc: RelPosEncXL;
  readonly #ownPosEnc: boolean;

  constructor(be: Backend, numLayers: number, o: ConformerLayerOptions, posEnc?: RelPosEncXL) {
    super(be);
    this.layers = this.child("layers", new LayerList(be, numLayers, o));
    this.norm = this.child("norm", new SbLayerNorm(be, [o.dModel], 1e-6));
    this.#ownPosEnc = !posEnc;
    this.posEnc = posEnc ?? new RelPosEncXL(be, o.dModel);
  }

  /**
   * x (B, S, d) -> (B, S, d). lengths: (B) absolute valid frames (round-half-even of rel S), or
   * null for no padding. Probes: encoder.layers.{i}[.sub], encoder.
   */
  forward(
    ctx: ForwardContext,
    x: Tensor,
    lengths: readonly number[] | Tensor | null = null,
  ): Tensor {
    const [b, s, d] = x.shape, be = x.backend;
    const masks: ConformerMasks = {
      posEmb: Tensor.from(be, [1, 2 * s - 1, d], this.posEnc.table(s)),
      keyLengths: null,
      padLengths: null,
    };
    if (lengths) {
      const lens = lengths instanceof Tensor ? Array.from(lengths.toArray()) : [...lengths];
      if (lens.length !== b) throw new RangeError(`${lens.length} lengths for a batch of ${b}`);
      masks.keyLengths = Tensor.from(be, [b], lens);
      if (lens.some((l) => l < s)) masks.padLengths = masks.keyLengths;
    }
    let h = x;
    this.layers.items.forEach((layer, i) => {
      const x = h;
      h = scoped(ctx, () => layer.forward(ctx, x, masks, `encoder.layers.${i}`));
    });
    const y = this.norm.forward(ctx, h);
    ctx.capture?.("encoder", y);
    return y;
  }

  override free(): void {
    super.free();
    if (this.#ownPosEnc) this.posEnc.free();
  }
}
