import { gelu, geluBackward, silu, siluBackward } from "../../src/tensor/ops.ts";
import { exp, glu, gluBackward, leakyRelu, leakyReluBackward } from "../../src/tensor/conv_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  geluGradRef,
  geluRef,
  gluRef,
  mapRef,
  normalPdf,
  sigmoidRef,
  siluGradRef,
  siluRef,
} from "./reference.ts";
import {
  assertSameBits,
  assertWithin,
  chunkSumsInOrder,
  randn,
  U,
  withBackend,
} from "./helpers.ts";

// Inputs ~ 3 N(0, 1): the negative tail down to about -10 is exercised (where GELU is tiny and a
// cancelling 1 + erf would lose every digit).
const CASES = [
  { label: "awkward 1001", n: 1001 },
  { label: "length 1", n: 1 },
  { label: "conmamba_small FFN hidden (4 frames x 1024)", n: 4096 },
];

for (const { label, n } of CASES) {
  Deno.test(`gelu forward and backward: ${label}`, async () => {
    await withBackend(2, (be) => {
      const xv = randn(n, 21, 3), dyv = randn(n, 22);
      const x = Tensor.from(be, [n], xv), dy = Tensor.from(be, [n], dyv);
      // The kernel evaluates Phi in float64 lanes (relative error < 1e-9: a degree-11 fit of
      // erfcx, wasm/activation.c) and rounds once to float32: error <= U |y| plus ~0.02 U; 2 U
      // leaves room for the reference's 1e-9.
      assertWithin("gelu", gelu(x).toArray(), mapRef(n, (i) => geluRef(xv[i])), 2 * U);
      // Phi(x) + x phi(x) has a root near x = -0.75 where the sum cancels: the bound is taken
      // relative to |dy| (Phi + |x| phi), the size of the terms, not to the cancelled result.
      const ref = mapRef(n, (i) => dyv[i] * geluGradRef(xv[i]));
      ref.mag = ref.mag.map((_, i) =>
        Math.abs(dyv[i]) * (geluRef(Math.abs(xv[i])) / Math.abs(xv[i]) + Math.abs(xv[i]) *
            normalPdf(xv[i]))
      );
      assertWithin("gelu'", geluBackward(x, dy).toArray(), ref, 2 * U);
    });
  });

  Deno.test(`silu forward and backward: ${label}`, async () => {
    await withBackend(2, (be) => {
      const xv = randn(n, 31, 3), dyv = randn(n, 32);
      const x = Tensor.from(be, [n], xv), dy = Tensor.from(be, [n], dyv);
      // float32 throughout: exp (a few ulp), 1 + e, a division and a product: 8 U covers it.
      assertWithin("silu", silu(x).toArray(), mapRef(n, (i) => siluRef(xv[i])), 8 * U);
      // s (1 + x (1 - s)) cancels near x = -1.28: bound relative to s (1 + |x| (1 - s)) |dy|,
      // and the error of s (a few ulp) is amplified by |x|, hence 16 U.
      const ref = mapRef(n, (i) => dyv[i] * siluGradRef(xv[i]));
      ref.mag = ref.mag.map((_, i) => {
        const s = sigmoidRef(xv[i]);
        return Math.abs(dyv[i]) * s * (1 + Math.abs(xv[i]) * (1 - s));
      });
      assertWithin("silu'", siluBackward(x, dy).toArray(), ref, 16 * U);
    });
  });
}

Deno.test("glu, leaky relu and exp forward and backward", async () => {
  await withBackend(2, (be) => {
    // conmamba_small conv module: pointwise conv output (frames, 2 d = 288) -> (frames, 144).
    for (const [rows, d] of [[13, 144], [1, 3]]) {
      const xv = randn(rows * 2 * d, 51, 2), dyv = randn(rows * d, 52);
      const x = Tensor.from(be, [rows, 2 * d], xv);
      const r = gluRef(xv, dyv, rows, d);
      // a sigmoid(g): exp (a few ulp), 1 +, a division, a product: 8 U; the backward a few more.
      assertWithin("glu", glu(x).toArray(), r.y, 8 * U);
      assertWithin("glu'", gluBackward(x, Tensor.from(be, [rows, d], dyv)).toArray(), r.dx, 12 * U);
    }
    const n = 1003, xv = randn(n, 53, 3), dyv = randn(n, 54);
    const x = Tensor.from(be, [n], xv), dy = Tensor.from(be, [n], dyv);
    const lr = (v: number) => (v > 0 ? v : 0.01 * v);
    // the slope is rounded to float32 (U relative) and the product once more: 2 U
    assertWithin("leaky", leakyRelu(x).toArray(), mapRef(n, (i) => lr(xv[i])), 2 * U);
    assertWithin(
      "leaky'",
      leakyReluBackward(x, dy).toArray(),
      mapRef(n, (i) => (xv[i] > 0 ? 1 : 0.01) * dyv[i]),
      2 * U,
    );
    // cm_expf: range reduction and a degree-7 series, a few ulp; with |x| up to ~10 the reduced
    // argument's rounding (|x| U) adds to it.
    assertWithin("exp", exp(x).toArray(), mapRef(n, (i) => Math.exp(xv[i])), 16 * U);
  });
});

// Over rows, each thread split cuts between chunks of rows, and the column sums of dx (the
// pointwise conv's bias gradient) follow the chunk order CUDA follows too.
Deno.test("glu backward over rows: the same dx with column sums, in chunk order, any threads", async () => {
  for (const [rows, d] of [[300, 5], [130, 32]]) {
    const xv = randn(rows * 2 * d, 55, 2), dyv = randn(rows * d, 56), old = randn(2 * d, 57);
    for (const threads of [1, 3]) {
      await withBackend(threads, (be) => {
        const x = Tensor.from(be, [rows, 2 * d], xv), dy = Tensor.from(be, [rows, d], dyv);
        const sums = Tensor.from(be, [2 * d], old);
        const dx = gluBackward(x, dy, { out: sums, accumulate: true }).toArray();
        const at = `(${rows}, ${2 * d}), ${threads} threads`;
        assertSameBits(`dx ${at}`, dx, gluBackward(x, dy).toArray());
        const want = chunkSumsInOrder((r, j) => dx[r * 2 * d + j], rows, 2 * d, old);
        assertSameBits(`column sums ${at}`, sums.toArray(), want);
      });
    }
  }
});
