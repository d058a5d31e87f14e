import { logSoftmax, logSoftmaxBackward, softmax, softmaxBackward } from "../../src/tensor/ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  logSoftmaxBackwardRef,
  logSoftmaxRef,
  softmaxBackwardRef,
  softmaxRef,
} from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

const CASES = [
  // conmamba_small decoder attention scores: 4 heads x 6 queries over 23 keys.
  { label: "attention scores (4 x 6 x 23)", shape: [4, 6, 23] },
  // CTC / decoder output: log-probabilities over a 5000-token vocabulary, 3 frames.
  { label: "vocabulary 5000", shape: [3, 5000] },
  { label: "awkward 1 x 1", shape: [1, 1] },
  { label: "awkward 5 x 3", shape: [5, 3] },
];

// Inputs ~ 3 N(0, 1), so |x - max| stays below ~25. Tolerances: the row sum of exponentials has
// relative error <= D U; exp(x - max) adds ~|x - max| U from rounding x - max plus a few ulp of
// its own; so (D + 64) U of each element's scale. The backward sums D products: the same bound.
for (const { label, shape } of CASES) {
  Deno.test(`softmax and log-softmax forward and backward: ${label}`, async () => {
    await withBackend(2, (be) => {
      const d = shape[shape.length - 1], rows = shape.reduce((a, b) => a * b, 1) / d;
      const xv = randn(rows * d, 51, 3), dyv = randn(rows * d, 52);
      const x = Tensor.from(be, shape, xv), dy = Tensor.from(be, shape, dyv);
      const tol = (d + 64) * U;

      const y = softmax(x);
      assertWithin("softmax", y.toArray(), softmaxRef(xv, rows, d), tol);
      const yv = y.toArray(); // the backward reference uses the kernel's own y, as autograd does
      assertWithin(
        "softmax'",
        softmaxBackward(y, dy).toArray(),
        softmaxBackwardRef(yv, dyv, rows, d),
        tol,
      );

      const ly = logSoftmax(x);
      assertWithin("log_softmax", ly.toArray(), logSoftmaxRef(xv, rows, d), tol);
      const lyv = ly.toArray();
      assertWithin(
        "log_softmax'",
        logSoftmaxBackward(ly, dy).toArray(),
        logSoftmaxBackwardRef(lyv, dyv, rows, d),
        tol,
      );
    });
  });
}
