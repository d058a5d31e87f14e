import { conv2d, conv2dBackward, layerNormAxes } from "../../src/tensor/conv_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { conv2dBackwardRef, conv2dRef, layerNormRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

const CASES = [
  // CNN front end block 0 (CONMAMBA_SPEC.md 4.2): (B, T, 80, 1) -> (B, T1, 40, 64); odd T.
  { label: "front end block 0", batch: 2, time: 9, freq: 80, cin: 1, cout: 64 },
  // Block 1: (B, T1, 40, 64) -> (B, T', 20, 32).
  { label: "front end block 1", batch: 1, time: 6, freq: 40, cin: 64, cout: 32 },
  { label: "awkward 2 x 3, Cin 3, Cout 5", batch: 3, time: 2, freq: 3, cin: 3, cout: 5 },
];

// Tolerances: an output is a matmul sum of 9 Cin products plus the bias ((9 Cin + 2) U); dx sums
// at most 4 x 9 Cout contributions per input (reflection doubles some), dw and dbias sum B T' F'.
for (const c of CASES) {
  Deno.test(`conv2d 3x3 stride 2 reflect forward and backward: ${c.label}`, async () => {
    await withBackend(2, (be) => {
      const xv = randn(c.batch * c.time * c.freq * c.cin, 11);
      const wv = randn(c.cout * c.cin * 9, 12, 0.3), bv = randn(c.cout, 13);
      const x = Tensor.from(be, [c.batch, c.time, c.freq, c.cin], xv);
      const w = Tensor.from(be, [c.cout, c.cin, 3, 3], wv), bias = Tensor.from(be, [c.cout], bv);
      const saved = conv2d(x, w, bias);
      const ref = conv2dRef(xv, wv, bv, c);
      if (saved.y.shape.join() !== [c.batch, ref.to, ref.fo, c.cout].join()) {
        throw new Error(`conv2d shape [${saved.y.shape}]`);
      }
      assertWithin("y", saved.y.toArray(), ref, (9 * c.cin + 2) * U);
      const dyv = randn(saved.y.size, 14);
      const g = conv2dBackward(Tensor.from(be, saved.y.shape, dyv), x, w, bias, saved);
      const r = conv2dBackwardRef(dyv, xv, wv, c);
      assertWithin("dx", g.dx.toArray(), r.dx, (36 * c.cout + 36 + 2) * U);
      const pos = c.batch * ref.to * ref.fo;
      assertWithin("dw", g.dw.toArray(), r.dw, (pos + 2) * U);
      assertWithin("dbias", g.dbias!.toArray(), r.dbias, (pos + 2) * U);
    });
  });
}

Deno.test("layerNorm over (freq, channel) jointly (front end, eps 1e-5)", async () => {
  await withBackend(2, (be) => {
    const [b, t, f, ch] = [2, 3, 20, 32], n = f * ch;
    const xv = randn(b * t * n, 15, 2, 0.3), gv = randn(n, 16, 0.5, 1), bv = randn(n, 17, 0.1);
    const s = layerNormAxes(
      Tensor.from(be, [b, t, f, ch], xv),
      Tensor.from(be, [f, ch], gv),
      Tensor.from(be, [f, ch], bv),
      1e-5,
      2,
    );
    if (s.y.shape.join() !== [b, t, f, ch].join()) throw new Error(`shape [${s.y.shape}]`);
    // The same bound as the last-axis LayerNorm over D = F C values (layernorm_test.ts).
    assertWithin("y", s.y.toArray(), layerNormRef(xv, gv, bv, b * t, n, 1e-5), (n + 10) * U);
  });
});
