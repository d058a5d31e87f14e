import { maskedFillTime } from "../../src/tensor/layout_ops.ts";
import * as ag from "../../src/tensor/autograd_ops.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertWithin, randn, withBackend } from "./helpers.ts";

/** Plain-loop reference: frames t >= len[b] become `value`. */
function ref(x: Float32Array, lens: number[], t: number, w: number, value: number): Float32Array {
  const y = x.slice();
  lens.forEach((l, b) => {
    for (let i = Math.max(0, Math.min(t, l)) * w; i < t * w; i++) y[b * t * w + i] = value;
  });
  return y;
}

// A copy or a constant: exact (tolerance 0). conmamba_small conv-module output (B, T', 144),
// lengths past T, zero and fractional, and awkward sizes.
for (
  const [b, t, w, lens] of [
    [3, 30, 144, [30, 22, 40]],
    [2, 1, 5, [0, 1]],
    [1, 7, 3, [4.5]],
  ] as [number, number, number, number[]][]
) {
  Deno.test(`masked fill time (${b}, ${t}, ${w}) lengths [${lens}]: forward and backward`, async () => {
    await withBackend(2, (be) => {
      const xv = randn(b * t * w, 3), dyv = randn(b * t * w, 4);
      const L = Tensor.from(be, [b], Float32Array.from(lens));
      const fl = lens.map(Math.floor);
      const y = maskedFillTime(Tensor.from(be, [b, t, w], xv), L, -7.5);
      assertWithin("masked fill", y.toArray(), { y: ref(xv, fl, t, w, -7.5), mag: xv }, 0);
      // Backward: the gradient passes at valid frames and is zero elsewhere (the op is linear).
      const x = Tensor.param(be, [b, t, w], xv), tape = new Tape();
      const out = ag.maskedFillTime(tape, x, L, 1);
      tape.backward(out, Tensor.from(be, [b, t, w], dyv));
      assertWithin(
        "masked fill grad",
        x.grad!.toArray(),
        { y: ref(dyv, fl, t, w, 0), mag: dyv },
        0,
      );
    });
  });
}
