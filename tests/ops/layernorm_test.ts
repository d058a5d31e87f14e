import { add, addLayerNorm, layerNorm, layerNormBackward } from "../../src/tensor/ops.ts";
import { dropoutAdd } from "../../src/tensor/dropout.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { layerNormBackwardRef, layerNormRef } from "./reference.ts";
import {
  assertSameBits,
  assertWithin,
  bf16Ref,
  chunkSumsInOrder,
  randn,
  U,
  withBackend,
} from "./helpers.ts";

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
        const f = Math.fround;
        const xhat = (r: number, j: number) => f(f(xv[r * cols + j] - mean[r]) * rstd[r]);
        const dg = chunkSumsInOrder((r, j) => f(dyv[r * cols + j] * xhat(r, j)), rows, cols, old);
        const db = chunkSumsInOrder((r, j) => dyv[r * cols + j], rows, cols, old);
        const at = `(${rows}, ${cols}), ${threads} threads`;
        assertSameBits(`dgamma ${at}`, params.dgamma.toArray(), dg);
        assertSameBits(`dbeta ${at}`, params.dbeta.toArray(), db);
        results.push([dx.toArray(), params.dgamma.toArray()]);
      });
    }
    // dx accumulated into its old value: the same bits for every thread count
    assertSameBits(`dx (${rows}, ${cols}) 1 vs 2 threads`, results[0][0], results[1][0]);
    assertSameBits(`dx (${rows}, ${cols}) 1 vs 3 threads`, results[0][0], results[2][0]);
  }
});

Deno.test("residual + LayerNorm in one kernel: the bits of dropout_add (or add) then layerNorm, any threads", async () => {
  // dropout_add_layernorm: s = x + alpha dropout(y) with the flat mask index, then the norm of s;
  // 1 and 3 threads (the split's row0 places the mask), an odd width, ln float32 and packed.
  for (const threads of [1, 3]) {
    await withBackend(threads, (be) => {
      for (const [rows, cols] of [[37, 144], [9, 7], [130, 512]]) {
        const t = (shape: number[], seed: number, std = 1, mean = 0) =>
          Tensor.from(be, shape, randn(shape.reduce((p, q) => p * q), seed, std, mean));
        const x = t([rows, cols], 1), y = t([rows, cols], 2);
        const g = t([cols], 3, 0.2, 1), b = t([cols], 4, 0.1);
        for (
          const o of [{ alpha: 0.5, dropout: { p: 0.1, seed: 9, stream: 4 } }, {
            alpha: 1,
            dropout: null,
          }]
        ) {
          const s = o.dropout ? dropoutAdd(x, y, o.alpha, o.dropout) : add(x, y);
          const want = layerNorm(s, g, b, 1e-5);
          for (const dtype of cols % 2 === 0 ? ["f32", "bf16"] as const : ["f32"] as const) {
            const r = addLayerNorm(x, y, g, b, 1e-5, { ...o, dtype });
            const what = `${threads} threads, ${rows} x ${cols}, ${
              o.dropout ? "dropout_add" : "add"
            }, ${dtype}`;
            assertSameBits(`${what}: s`, r.s.toArray(), s.toArray());
            assertSameBits(`${what}: mean`, r.ln.mean.toArray(), want.mean.toArray());
            assertSameBits(`${what}: rstd`, r.ln.rstd.toArray(), want.rstd.toArray());
            const ln = dtype === "f32" ? want.y.toArray() : want.y.toArray().map(bf16Ref);
            assertSameBits(`${what}: ln`, r.ln.y.toArray(), Float32Array.from(ln));
          }
        }
      }
    });
  }
});
