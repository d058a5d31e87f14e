import { layerNorm, layerNormBackward } from "../../src/tensor/ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { layerNormBackwardRef, layerNormRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

const CASES = [
  // conmamba_small encoder LN (d = 144, eps 1e-5, CONMAMBA_SPEC.md 4.5), 2 x 9 frames.
  { label: "conmamba_small encoder LN", shape: [2, 9, 144], eps: 1e-5 },
  // conmamba_large final encoder LN (d = 512, eps 1e-6).
  { label: "conmamba_large LN_enc", shape: [5, 512], eps: 1e-6 },
  { label: "awkward d = 7", shape: [3, 7], eps: 1e-5 },
  { label: "one row", shape: [1, 33], eps: 1e-5 },
];

// Tolerances: the mean and variance are float32 sums of D terms (error <= D U of the summed
// magnitudes) and every later step adds a few roundings, so (D + 10) U of the terms' scale bounds
// y and dx; dgamma and dbeta add a sum over the rows, hence (rows + 2 D + 10) U.
for (const { label, shape, eps } of CASES) {
  Deno.test(`layernorm forward and backward: ${label}`, async () => {
    await withBackend(2, (be) => {
      const d = shape[shape.length - 1], rows = shape.reduce((a, b) => a * b, 1) / d;
      // Inputs with an offset (mean 0.5) so that the mean subtraction matters.
      const xv = randn(rows * d, 41, 1.5, 0.5), gv = randn(d, 42, 0.5, 1), bv = randn(d, 43, 0.1);
      const dyv = randn(rows * d, 44);
      const x = Tensor.from(be, shape, xv);
      const gamma = Tensor.from(be, [d], gv), beta = Tensor.from(be, [d], bv);
      const saved = layerNorm(x, gamma, beta, eps);
      const ref = layerNormRef(xv, gv, bv, rows, d, eps);
      assertWithin("y", saved.y.toArray(), ref, (d + 10) * U);
      assertWithin(
        "mean",
        saved.mean.toArray(),
        { y: ref.mean, mag: ref.mean.map(() => 3) },
        d * U,
      );

      const g = layerNormBackward(Tensor.from(be, shape, dyv), x, gamma, saved);
      const gref = layerNormBackwardRef(dyv, xv, gv, rows, d, eps);
      assertWithin("dx", g.dx.toArray(), gref.dx, (d + 10) * U);
      assertWithin("dgamma", g.dgamma.toArray(), gref.dgamma, (rows + 2 * d + 10) * U);
      assertWithin("dbeta", g.dbeta.toArray(), gref.dbeta, (rows + 2) * U);
    });
  });
}
