import { maxLast, meanAxis, sumAxis, sumAxisBackward } from "../../src/tensor/reduce_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { sumAxisRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

const CASES = [
  // conmamba_small encoder output (B 2, T' 50, d 144): mean over time.
  { label: "conmamba_small mean over time", shape: [2, 50, 144], axis: 1 },
  // conmamba_large: sum over the batch of a (B 8, d 512) gradient.
  { label: "conmamba_large sum over batch", shape: [8, 512], axis: 0 },
  { label: "awkward last axis of 7", shape: [3, 5, 7], axis: 2 },
  { label: "awkward length 1", shape: [1, 1, 3], axis: 1 },
];

// A sum of n terms in order has error <= (n - 1) U of the sum of |terms|; the mean's division
// adds one rounding: (n + 1) U. The backward is a division (1 rounding) and the max is exact.
for (const { label, shape, axis } of CASES) {
  Deno.test(`sum / mean over an axis and back, max over the last: ${label}`, async () => {
    await withBackend(3, (be) => {
      const xv = randn(shape.reduce((a, b) => a * b), 7), x = Tensor.from(be, shape, xv);
      const n = shape[axis], outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
      const inner = xv.length / (outer * n);
      assertWithin("sum", sumAxis(x, axis).toArray(), sumAxisRef(xv, outer, n, inner, 1), n * U);
      const mean = meanAxis(x, axis);
      assertWithin("mean", mean.toArray(), sumAxisRef(xv, outer, n, inner, n), (n + 1) * U);
      const mv = mean.toArray(), dx = sumAxisBackward(mean, shape, axis, true).toArray();
      const want = new Float64Array(xv.length);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < n; i++) {
          for (let k = 0; k < inner; k++) want[(o * n + i) * inner + k] = mv[o * inner + k] / n;
        }
      }
      assertWithin("mean'", dx, { y: want, mag: want.map(Math.abs) }, U);
      const cols = shape[shape.length - 1], rows = xv.length / cols, m = maxLast(x);
      const vals = new Float64Array(rows), idx = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        vals[r] = -Infinity;
        for (let j = 0; j < cols; j++) {
          if (xv[r * cols + j] > vals[r]) [vals[r], idx[r]] = [xv[r * cols + j], j];
        }
      }
      assertWithin("max", m.values.toArray(), { y: vals, mag: vals }, 0);
      assertWithin("argmax", m.indices.toArray(), { y: idx, mag: idx }, 0);
    });
  });
}
