import {
  dropout,
  dropoutAdd,
  dropoutBackward,
  geluDropout,
  geluDropoutBackward,
  leakyReluDropout,
  leakyReluDropoutBackward,
  scaleDropout,
} from "../../src/tensor/dropout.ts";
import { add, gelu, geluBackward, scale } from "../../src/tensor/ops.ts";
import { leakyRelu, leakyReluBackward } from "../../src/tensor/conv_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertSameBits, chunkSumsInOrder, randn, withBackend } from "./helpers.ts";

Deno.test("dropout: kept values scaled by 1/(1-p), rate near p, repeatable, seed/stream matter", async () => {
  await withBackend(2, (be) => {
    const n = 100003, p = 0.1, xv = randn(n, 3);
    const x = Tensor.from(be, [n], xv);
    const o = { p, seed: 7775, stream: 12 };
    const y = dropout(x, o).toArray();
    let dropped = 0;
    for (let i = 0; i < n; i++) {
      if (y[i] === 0) dropped++;
      else if (y[i] !== Math.fround(xv[i] * Math.fround(1 / Math.fround(1 - p)))) {
        throw new Error(`element ${i}: ${y[i]} is not x / (1 - p)`);
      }
    }
    // Binomial(n, 0.1): sd = sqrt(n p (1 - p)) ~ 95; 6 sd never fails by chance.
    if (Math.abs(dropped - n * p) > 6 * Math.sqrt(n * p * (1 - p))) {
      throw new Error(`dropped ${dropped} of ${n}, expected about ${n * p}`);
    }
    const same = dropout(x, o).toArray();
    if (same.some((v, i) => v !== y[i])) throw new Error("the same seed and stream differ");
    // The backward applies the same mask to dy.
    const dy = randn(n, 4), dx = dropoutBackward(Tensor.from(be, [n], dy), o).toArray();
    for (let i = 0; i < n; i++) {
      if ((dx[i] === 0) !== (y[i] === 0)) throw new Error(`backward mask differs at ${i}`);
    }
    for (const other of [{ ...o, stream: 13 }, { ...o, seed: 7776 }]) {
      const z = dropout(x, other).toArray();
      let agree = 0;
      for (let i = 0; i < n; i++) if ((z[i] === 0) === (y[i] === 0)) agree++;
      // independent masks agree on (1 - p)^2 + p^2 = 82% of elements
      if (agree > 0.84 * n) throw new Error(`masks for ${JSON.stringify(other)} look correlated`);
    }
  });
});

/** wasm/dropout.c's murmur3 finaliser, on uint32. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

Deno.test("dropout: the mask is exactly the documented hash of (seed, stream, index), any split", async () => {
  // Masks are part of a training run's bitwise reproducibility: the kernel (vectorised or not,
  // split over any number of threads) must keep element i iff hash(seed, stream, i) / 2^24 >= p.
  for (const threads of [1, 2]) {
    await withBackend(threads, (be) => {
      for (const [n, p, seed, stream] of [[1003, 0.25, 7775, 12], [37, 0.1, -5, 4096 * 3 + 7]]) {
        const xv = randn(n, 11);
        const y = dropout(Tensor.from(be, [n], xv), { p, seed, stream }).toArray();
        const key = fmix32(fmix32((seed ^ 0x243f6a88) >>> 0) ^ stream);
        const pf = Math.fround(p), scale = Math.fround(1 / Math.fround(1 - pf));
        for (let i = 0; i < n; i++) {
          const draw = (fmix32(key ^ fmix32(i)) >>> 8) / 2 ** 24;
          const want = draw >= pf ? Math.fround(xv[i] * scale) : 0;
          if (!Object.is(y[i], want)) {
            throw new Error(`${threads} thread(s), n ${n}, element ${i}: ${y[i]}, want ${want}`);
          }
        }
      }
    });
  }
});

// The fused GELU + dropout promises the bits of the two ops in sequence (forward: gelu then
// dropout; backward: dropout of dy then gelu_backward), for any thread split (2 threads, every
// call split: parts start at other index0 values) and awkward lengths (SIMD tails).
Deno.test("gelu_dropout: bitwise the two ops in sequence, forward and backward, any split", async () => {
  for (const threads of [1, 2]) {
    await withBackend(threads, (be) => {
      for (const n of [1, 3, 4, 7, 1001, 20483]) {
        const xv = randn(n, 10 + n, 2), dyv = randn(n, 20 + n);
        xv[0] = 0, xv[n - 1] = -40; // GELU's zero and its far tail
        const x = Tensor.from(be, [n], xv), dy = Tensor.from(be, [n], dyv);
        const o = { p: 0.1, seed: 7775, stream: 40 + n };
        const pairs: [string, Float32Array, Float32Array][] = [
          ["forward", geluDropout(x, o).toArray(), dropout(gelu(x), o).toArray()],
          [
            "backward",
            geluDropoutBackward(x, dy, o).toArray(),
            geluBackward(x, dropoutBackward(dy, o)).toArray(),
          ],
        ];
        for (const [what, fused, seq] of pairs) {
          const a = new Uint32Array(fused.buffer), b = new Uint32Array(seq.buffer);
          const i = a.findIndex((v, j) => v !== b[j]);
          if (i >= 0) {
            throw new Error(
              `${threads} threads, n ${n}, ${what}: element ${i} ${fused[i]} vs ${seq[i]}`,
            );
          }
        }
      }
    });
  }
});

Deno.test("dropout_add and scale_dropout: bitwise dropout, scale, add in sequence, any split", async () => {
  for (const threads of [1, 2]) {
    await withBackend(threads, (be) => {
      for (const n of [1, 3, 4, 7, 1001, 20483]) {
        const x = Tensor.from(be, [n], randn(n, 30 + n)),
          y = Tensor.from(be, [n], randn(n, 40 + n));
        for (const alpha of [0.5, 1, 0.3]) {
          const o = { p: 0.1, seed: 4242, stream: 50 + n };
          const pairs: [string, Float32Array, Float32Array][] = [
            [
              "dropout_add",
              dropoutAdd(x, y, alpha, o).toArray(),
              add(x, scale(dropout(y, o), alpha)).toArray(),
            ],
            [
              "scale_dropout",
              scaleDropout(y, alpha, o).toArray(),
              dropout(scale(y, alpha), o).toArray(),
            ],
          ];
          for (const [what, fused, seq] of pairs) {
            const a = new Uint32Array(fused.buffer), b = new Uint32Array(seq.buffer);
            const i = a.findIndex((v, j) => v !== b[j]);
            if (i >= 0) {
              throw new Error(
                `${threads} threads, n ${n}, alpha ${alpha}, ${what}: element ${i} ${fused[i]} vs ${
                  seq[i]
                }`,
              );
            }
          }
        }
      }
    });
  }
});

// Over rows (the FFN's (B T, F) hidden): every thread split cuts between chunks of rows, and the
// column sums of dx (the bias gradient of the Linear before the GELU) follow the chunk order that
// CUDA follows too, added onto the old value.
Deno.test("gelu_dropout backward over rows: the flat bits, and dx's column sums in chunk order", async () => {
  for (const [rows, cols] of [[300, 7], [130, 64], [1, 33], [64, 4]]) {
    const n = rows * cols, xv = randn(n, 71, 2), dyv = randn(n, 72), old = randn(cols, 73);
    const o = { p: 0.25, seed: 99, stream: 5 };
    for (const threads of [1, 2, 3]) {
      await withBackend(threads, (be) => {
        const x = Tensor.from(be, [rows, cols], xv), dy = Tensor.from(be, [rows, cols], dyv);
        const sums = Tensor.from(be, [cols], old);
        const dx = geluDropoutBackward(x, dy, o, { out: sums, accumulate: true }).toArray();
        const at = `(${rows}, ${cols}), ${threads} threads`;
        const flat = geluBackward(
          Tensor.from(be, [n], xv),
          dropoutBackward(Tensor.from(be, [n], dyv), o),
        ).toArray();
        assertSameBits(`dx ${at}`, dx, flat);
        const want = chunkSumsInOrder((r, j) => dx[r * cols + j], rows, cols, old);
        assertSameBits(`column sums ${at}`, sums.toArray(), want);
        const fresh = Tensor.empty(be, [cols]);
        geluDropoutBackward(x, dy, o, { out: fresh, accumulate: false });
        const want0 = chunkSumsInOrder(
          (r, j) => dx[r * cols + j],
          rows,
          cols,
          new Float32Array(cols),
        );
        assertSameBits(`column sums, not accumulated, ${at}`, fresh.toArray(), want0);
      });
    }
  }
});

Deno.test("scale_dropout over rows: the flat bits, and its column sums in chunk order", async () => {
  for (const [rows, cols] of [[300, 7], [130, 64], [1, 33]]) {
    const n = rows * cols, xv = randn(n, 74), old = randn(cols, 75);
    const o = { p: 0.1, seed: 98, stream: 6 };
    for (const threads of [1, 3]) {
      await withBackend(threads, (be) => {
        const sums = Tensor.from(be, [cols], old);
        const y = scaleDropout(Tensor.from(be, [rows, cols], xv), 0.5, o, {
          out: sums,
          accumulate: true,
        }).toArray();
        const at = `(${rows}, ${cols}), ${threads} threads`;
        const flat = dropout(scale(Tensor.from(be, [n], xv), 0.5), o).toArray();
        assertSameBits(`y ${at}`, y, flat);
        const want = chunkSumsInOrder((r, j) => y[r * cols + j], rows, cols, old);
        assertSameBits(`column sums ${at}`, sums.toArray(), want);
      });
    }
  }
});

// The front end's LeakyReLU + dropout promises the bits of the two ops in sequence, both ways, for
// any split (parts start at other index0 values) and awkward lengths (SIMD tails, zeros).
Deno.test("leaky_relu_dropout: bitwise the two ops in sequence, forward and backward, any split", async () => {
  for (const threads of [1, 2]) {
    await withBackend(threads, (be) => {
      for (const n of [1, 3, 7, 1001]) {
        const xv = randn(n, 30 + n, 2), dyv = randn(n, 40 + n);
        xv[0] = 0, xv[n - 1] = -0; // the comparison's edge: zeros of both signs take the slope
        const x = Tensor.from(be, [n], xv), dy = Tensor.from(be, [n], dyv);
        const o = { p: 0.1, seed: 7775, stream: 90 + n };
        assertSameBits(
          `${threads} threads, n ${n}, forward`,
          leakyReluDropout(x, 0.01, o).toArray(),
          dropout(leakyRelu(x, 0.01), o).toArray(),
        );
        assertSameBits(
          `${threads} threads, n ${n}, backward`,
          leakyReluDropoutBackward(x, dy, 0.01, o).toArray(),
          leakyReluBackward(x, dropoutBackward(dy, o), 0.01).toArray(),
        );
      }
    });
  }
});
