import { add, mul, scale } from "../../src/tensor/ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { mapRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

// Sizes: an awkward length (not a multiple of 4), one element, and a conmamba_small activation
// (B*T' = 16 frames x d = 144).
const SIZES = [
  { label: "awkward 1003", shape: [1003] },
  { label: "length 1", shape: [1] },
  { label: "conmamba_small activation", shape: [16, 144] },
];

// Tolerance U: each output is one correctly rounded float32 operation on float32 inputs, so its
// relative error is at most U (the unit roundoff). Backwards are these same kernels: d(a + b) is
// dy for both, d(a * b) is (dy * b, dy * a), d(alpha x) is alpha dy.
for (const { label, shape } of SIZES) {
  Deno.test(`add, mul, scale forward and backward: ${label}`, async () => {
    await withBackend(2, (be) => {
      const n = shape.reduce((x, y) => x * y, 1);
      const av = randn(n, 11), bv = randn(n, 12), dyv = randn(n, 13), alpha = Math.fround(-0.37);
      const a = Tensor.from(be, shape, av), b = Tensor.from(be, shape, bv);
      const dy = Tensor.from(be, shape, dyv);
      assertWithin("a + b", add(a, b).toArray(), mapRef(n, (i) => av[i] + bv[i]), U);
      assertWithin("a * b", mul(a, b).toArray(), mapRef(n, (i) => av[i] * bv[i]), U);
      assertWithin("alpha x", scale(a, alpha).toArray(), mapRef(n, (i) => alpha * av[i]), U);
      assertWithin("d(a*b)/da", mul(dy, b).toArray(), mapRef(n, (i) => dyv[i] * bv[i]), U);
      assertWithin("d(a*b)/db", mul(dy, a).toArray(), mapRef(n, (i) => dyv[i] * av[i]), U);
      assertWithin("d(alpha x)", scale(dy, alpha).toArray(), mapRef(n, (i) => alpha * dyv[i]), U);
      // In place (y aliases a), as gradient accumulation uses it.
      add(a, b, a);
      assertWithin("a += b", a.toArray(), mapRef(n, (i) => av[i] + bv[i]), U);
    });
  });
}
