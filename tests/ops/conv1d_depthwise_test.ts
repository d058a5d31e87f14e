import { colView } from "../../src/tensor/col_view.ts";
import { conv1dDepthwise, conv1dDepthwiseBackward } from "../../src/tensor/mamba_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { conv1dDepthwiseBackwardRef, conv1dDepthwiseRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

const CASES = [
  // Mamba's causal conv (CONMAMBA_SPEC.md 4.7): conmamba_small Di = 288, K 4, SiLU, reading x
  // as the first half of in_proj's (B, T, 2 Di) output.
  {
    label: "conmamba_small Mamba conv, x a view of xz",
    b: 2,
    t: 11,
    c: 288,
    k: 4,
    pad: 3,
    silu: true,
    view: true,
  },
  // The convolution module's 'same' conv (4.6): conmamba_large d = 512, K 31, pad 15, T < K.
  {
    label: "conmamba_large conv module, T 20 < K",
    b: 1,
    t: 20,
    c: 512,
    k: 31,
    pad: 15,
    silu: false,
    view: false,
  },
  { label: "awkward C 7, T 1", b: 3, t: 1, c: 7, k: 4, pad: 3, silu: true, view: false },
  { label: "awkward C 13, K 31", b: 2, t: 45, c: 13, k: 31, pad: 15, silu: false, view: true },
];

// Tolerances: each output is a sequential float32 sum of at most K + 1 terms ((K + 2) U of mag),
// SiLU adds a few roundings of its own (+8 U). dx sums K terms; dw and dbias sum B T terms.
for (const c of CASES) {
  Deno.test(`conv1d depthwise forward and backward: ${c.label}`, async () => {
    await withBackend(2, (be) => {
      const n = c.b * c.t * c.c;
      const xv = randn(n, 1), wv = randn(c.c * c.k, 2, 0.4), bv = randn(c.c, 3);
      // As a view: x in columns [0, C) of a (B, T, 2C) tensor whose other half is junk.
      const wide = new Float32Array(2 * n).fill(1e30);
      for (let r = 0; r < c.b * c.t; r++) {
        wide.set(xv.subarray(r * c.c, (r + 1) * c.c), r * 2 * c.c);
      }
      const x = c.view
        ? colView(Tensor.from(be, [c.b, c.t, 2 * c.c], wide), 0, c.c)
        : Tensor.from(be, [c.b, c.t, c.c], xv);
      const w = Tensor.from(be, [c.c, c.k], wv), bias = Tensor.from(be, [c.c], bv);
      const o = { padLeft: c.pad, silu: c.silu };
      const q = {
        batch: c.b,
        seqlen: c.t,
        channels: c.c,
        kernel: c.k,
        padLeft: c.pad,
        silu: c.silu,
      };
      const y = conv1dDepthwise(x, w, bias, o);
      assertWithin("y", y.toArray(), conv1dDepthwiseRef(xv, wv, bv, q), (c.k + 10) * U);
      const dyv = randn(n, 4);
      const g = conv1dDepthwiseBackward(Tensor.from(be, [c.b, c.t, c.c], dyv), x, w, bias, o);
      const r = conv1dDepthwiseBackwardRef(dyv, xv, wv, bv, q);
      const all = g.dx.tensor.toArray(), ld = g.dx.tensor.shape[2];
      const dx = new Float32Array(n);
      for (let i = 0; i < c.b * c.t; i++) dx.set(all.subarray(i * ld, i * ld + c.c), i * c.c);
      assertWithin("dx", dx, r.dx, (c.k + 10) * U);
      assertWithin("dw", g.dw.toArray(), r.dw, (c.b * c.t + 10) * U);
      assertWithin("dbias", g.dbias.toArray(), r.dbias, (c.b * c.t + 10) * U);
    });
  });
}
