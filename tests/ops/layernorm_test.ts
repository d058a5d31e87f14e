import { layerNorm, layerNormBackward, LN_CHUNK_ROWS } from "../../src/tensor/ops.ts";
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
  // Several chunks of the parameter gradients' partial sums (64 rows), the last cut short.
  { label: "150 rows: three chunks", shape: [3, 50, 40], eps: 1e-5 },
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

const f = Math.fround;

/**
 * dgamma and dbeta in the order the op table documents for layernorm_backward, in float32 (each
 * operation rounded): per chunk of LN_CHUNK_ROWS rows, 8 groups of consecutive rows summed in row
 * order from 0, added from 0 in group order; then the chunks in order onto the old value (sum_rows).
 */
function paramSumsInOrder(
  x: Float32Array,
  dy: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  rows: number,
  cols: number,
  init: Float32Array,
): { dgamma: Float32Array; dbeta: Float32Array } {
  const dgamma = init.slice(), dbeta = init.slice(), group = LN_CHUNK_ROWS / 8;
  for (let c = 0; c * LN_CHUNK_ROWS < rows; c++) {
    for (let j = 0; j < cols; j++) {
      let pg = 0, pb = 0;
      for (let g = 0; g < 8; g++) {
        let sg = 0, sb = 0;
        const r0 = c * LN_CHUNK_ROWS + g * group;
        for (let r = r0; r < Math.min(r0 + group, rows); r++) {
          const d = dy[r * cols + j];
          sg = f(sg + f(d * f(f(x[r * cols + j] - mean[r]) * rstd[r])));
          sb = f(sb + d);
        }
        pg = f(pg + sg);
        pb = f(pb + sb);
      }
      dgamma[j] = f(dgamma[j] + pg);
      dbeta[j] = f(dbeta[j] + pb);
    }
  }
  return { dgamma, dbeta };
}

const sameBits = (what: string, a: Float32Array, b: Float32Array) => {
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
};

// The chunked order is a contract: the CUDA kernel follows it too (tests/cuda/parity_test.ts
// compares its partial sums with the Wasm kernel's exactly), and it must not depend on threads.
Deno.test("layernorm backward: parameter gradients in the documented chunk order, any threads", async () => {
  for (const [rows, cols] of [[200, 24], [64, 5], [7, 3], [129, 144]]) {
    const xv = randn(rows * cols, 51, 1.5, 0.5), gv = randn(cols, 52, 0.5, 1);
    const dyv = randn(rows * cols, 53), old = randn(cols, 54), oldDx = randn(rows * cols, 55);
    const results: Float32Array[][] = [];
    for (const threads of [1, 2, 3]) {
      await withBackend(threads, (be) => {
        const x = Tensor.from(be, [rows, cols], xv), gamma = Tensor.from(be, [cols], gv);
        const saved = layerNorm(x, gamma, Tensor.from(be, [cols], gv), 1e-5);
        const dx = Tensor.from(be, [rows, cols], oldDx);
        const params = {
          dgamma: Tensor.from(be, [cols], old),
          dbeta: Tensor.from(be, [cols], old),
        };
        layerNormBackward(Tensor.from(be, [rows, cols], dyv), x, gamma, saved, { dx, params });
        const mean = saved.mean.toArray(), rstd = saved.rstd.toArray();
        const want = paramSumsInOrder(xv, dyv, mean, rstd, rows, cols, old);
        sameBits(
          `dgamma (${rows}, ${cols}), ${threads} threads`,
          params.dgamma.toArray(),
          want.dgamma,
        );
        sameBits(
          `dbeta (${rows}, ${cols}), ${threads} threads`,
          params.dbeta.toArray(),
          want.dbeta,
        );
        results.push([dx.toArray(), params.dgamma.toArray()]);
      });
    }
    // dx accumulated into its old value: the same bits for every thread count
    sameBits(`dx (${rows}, ${cols}) 1 vs 2 threads`, results[0][0], results[1][0]);
    sameBits(`dx (${rows}, ${cols}) 1 vs 3 threads`, results[0][0], results[2][0]);
  }
});
