/** The ConMamba encoder: `layers.{i}` ConMamba layers, then `norm` (LayerNorm eps 1e-6, 4.16). */
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { ConMambaLayer, type ConMambaLayerOptions } from "./conmamba_layer.ts";
import { SbLayerNorm } from "./layer_norm.ts";
import { type ForwardContext, Module, scoped } from "./module.ts";

class LayerList extends Module {
  readonly items: ConMambaLayer[] = [];
  constructor(be: Backend, n: number, o: ConMambaLayerOptions) {
    super(be);
    for (let i = 0; i < n; i++) this.items.push(this.child(String(i), new ConMambaLayer(be, o)));
  }
}

export class ConMambaEncoder extends Module {
  readonly layers: LayerList;
  readonly norm: SbLayerNorm;

  constructor(be: Backend, numLayers: number, o: ConMambaLayerOptions) {
    super(be);
    this.layers = this.child("layers", new LayerList(be, numLayers, o));
    this.norm = this.child("norm", new SbLayerNorm(be, [o.dModel], 1e-6));
  }

  /** x (B, T', d) -> (B, T', d). Probes: encoder.layers.{i}[.sub], encoder. */
  forward(ctx: ForwardContext, x: Tensor): Tensor {
    let h = x;
    this.layers.items.forEach((layer, i) => {
      const x = h;
      h = scoped(ctx, () => layer.forward(ctx, x, `encoder.layers.${i}`));
    });
    const y = this.norm.forward(ctx, h);
    ctx.capture?.("encoder", y);
    return y;
  }
}
