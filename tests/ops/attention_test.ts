import {
  attnSoftmax,
  attnSoftmaxBackward,
  relShift,
  relShiftBackward,
} from "../../src/tensor/attention_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { type AttnRefMask, attnSoftmaxRef, relShiftRef, softmaxBackwardRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

const CASES: (AttnRefMask & { label: string })[] = [
  // conmamba_small decoder self-attention: 4 heads, U+1 = 13, causal and target padding.
  {
    label: "decoder self-attention, causal + key lengths",
    batch: 2,
    heads: 4,
    tq: 13,
    s: 13,
    scale: 1 / 6,
    causal: true,
    keyLengths: [13, 9],
  },
  // conmamba_large cross-attention: 8 heads (dh 64), 11 queries over T' = 37 frames, one padded.
  {
    label: "decoder cross-attention, key lengths",
    batch: 2,
    heads: 8,
    tq: 11,
    s: 37,
    scale: 1 / 8,
    causal: false,
    keyLengths: [37, 20],
  },
  // A float key mask (0 / -inf), one utterance fully masked: its rows must be zeros.
  {
    label: "float key mask, one row fully masked",
    batch: 2,
    heads: 1,
    tq: 3,
    s: 5,
    scale: 1,
    causal: false,
    keyMask: [0, -Infinity, 0, 0, -Infinity, ...Array(5).fill(-Infinity)],
  },
  { label: "awkward 1 x 1", batch: 1, heads: 1, tq: 1, s: 1, scale: 0.3, causal: true },
];

// As tests/ops/softmax_test.ts: (S + 64) U of each element's scale; scaling the scores first adds
// one rounding of |scale x| <= ~10 (inputs 3 N(0, 1)), i.e. ~10 U in the exponent: inside the 64.
for (const c of CASES) {
  Deno.test(`masked attention softmax forward and backward: ${c.label}`, async () => {
    await withBackend(3, (be) => {
      const shape = [c.batch, c.heads, c.tq, c.s], n = c.batch * c.heads * c.tq * c.s;
      const xv = randn(n, 21, 3), dyv = randn(n, 22);
      const mask = {
        scale: c.scale,
        causal: c.causal,
        keyLengths: c.keyLengths ? Tensor.from(be, [c.batch], c.keyLengths) : null,
        keyMask: c.keyMask ? Tensor.from(be, [c.batch, c.s], c.keyMask) : null,
      };
      const tol = (c.s + 64) * U;
      const y = attnSoftmax(Tensor.from(be, shape, xv), mask);
      assertWithin("attn softmax", y.toArray(), attnSoftmaxRef(xv, c), tol);
      const yv = y.toArray(), dx = attnSoftmaxBackward(y, Tensor.from(be, shape, dyv), mask);
      const ref = softmaxBackwardRef(yv, dyv, n / c.s, c.s);
      const scaled = { y: ref.y.map((v) => c.scale * v), mag: ref.mag.map((v) => c.scale * v) };
      assertWithin("attn softmax'", dx.toArray(), scaled, tol + U);
    });
  });
}

// RelPosMHAXL's shift: a gather (exact); its backward is the adjoint scatter (exact, zeros at
// the positions no output reads). conmamba_small Conformer: 4 heads over S = 50 frames.
for (const [n, s] of [[2 * 4, 50], [1, 1], [3, 2]]) {
  Deno.test(`relative shift forward and backward, ${n} x (${s}, ${2 * s - 1})`, async () => {
    await withBackend(2, (be) => {
      const w = 2 * s - 1, xv = randn(n * s * w, 23), dyv = randn(n * s * s, 24);
      const y = relShift(Tensor.from(be, [n, s, w], xv)).toArray();
      const want = relShiftRef(xv, n, s);
      assertWithin("rel shift", y, { y: want, mag: want }, 0);
      const dx = relShiftBackward(Tensor.from(be, [n, s, s], dyv)).toArray();
      const wantDx = new Float64Array(n * s * w);
      for (let m = 0; m < n; m++) {
        for (let i = 0; i < s; i++) {
          for (let j = 0; j < s; j++) {
            wantDx[(m * s + i) * w + s - 1 - i + j] = dyv[(m * s + i) * s + j];
          }
        }
      }
      assertWithin("rel shift'", dx, { y: wantDx, mag: wantDx }, 0);
    });
  });
}
