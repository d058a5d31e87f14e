import { flipTime } from "../../src/tensor/mamba_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { flipTimeRef } from "./reference.ts";
import { assertWithin, randn, withBackend } from "./helpers.ts";

// A copy: exact (tolerance 0). conmamba_small xz (B, T, 2 Di = 576), and awkward sizes.
for (const [b, t, w] of [[2, 13, 576], [3, 1, 5], [1, 7, 3]]) {
  Deno.test(`flip time (${b}, ${t}, ${w}), and flipping twice is the identity`, async () => {
    await withBackend(2, (be) => {
      const xv = randn(b * t * w, 9);
      const y = flipTime(Tensor.from(be, [b, t, w], xv));
      assertWithin("flip", y.toArray(), flipTimeRef(xv, b, t, w), 0);
      assertWithin("flip flip", flipTime(y).toArray(), { y: xv, mag: xv }, 0);
    });
  });
}
