import {
  concatTime,
  concatTimeBackward,
  embedding,
  embeddingBackward,
  sliceTime,
  sliceTimeBackward,
  swapAxes,
} from "../../src/tensor/layout_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { embeddingBackwardRef } from "./reference.ts";
import { assertWithin, randn, rng, U, withBackend } from "./helpers.ts";

const exact = (v: ArrayLike<number>) => ({ y: v, mag: v });

const EMBED_CASES = [
  // conmamba_small decoder: 5000 tokens of width 144, B 2 x U+1 13 (ids repeat).
  { label: "conmamba_small target embedding", vocab: 5000, d: 144, n: 26 },
  // conmamba_large: width 512; few ids so that many repeat.
  { label: "conmamba_large, repeated ids", vocab: 7, d: 512, n: 40 },
  { label: "awkward: width 3, one id", vocab: 4, d: 3, n: 1 },
];

// The forward is a copy (exact). The backward sums the dy rows of each id in order: at most n
// terms, so (n + 1) U of the sum of their magnitudes.
for (const { label, vocab, d, n } of EMBED_CASES) {
  Deno.test(`embedding forward and backward: ${label}`, async () => {
    for (const threads of [1, 3]) {
      await withBackend(threads, (be) => {
        const r = rng(vocab + n), idv = Float32Array.from({ length: n }, () => (r() * vocab) | 0);
        const tv = randn(vocab * d, 1), dyv = randn(n * d, 2);
        const table = Tensor.from(be, [vocab, d], tv), ids = Tensor.from(be, [n], idv);
        const want = new Float32Array(n * d);
        for (let i = 0; i < n; i++) want.set(tv.subarray(idv[i] * d, (idv[i] + 1) * d), i * d);
        assertWithin("embedding", embedding(table, ids).toArray(), exact(want), 0);
        const g = embeddingBackward(Tensor.from(be, [n, d], dyv), ids, vocab).toArray();
        assertWithin("embedding'", g, embeddingBackwardRef(idv, dyv, vocab, d), (n + 1) * U);
      });
    }
  });
}

Deno.test("embedding rejects ids that are not integers in [0, V)", async () => {
  await withBackend(1, (be) => {
    const table = Tensor.from(be, [3, 2], randn(6, 3));
    for (const bad of [3, -1, 0.5, NaN]) {
      let threw = false;
      try {
        embedding(table, Tensor.from(be, [1], [bad]));
      } catch {
        threw = true;
      }
      if (!threw) throw new Error(`id ${bad} was accepted`);
    }
  });
});

Deno.test("ids checked from the host values they came from: no download, bad ids still fail", async () => {
  await withBackend(1, (be) => {
    const table = Tensor.from(be, [5, 3], randn(15, 4));
    for (const bad of [5, -1, 2.5, NaN]) {
      let msg = "";
      try {
        embedding(table, Tensor.from(be, [2], [0, 0]), [0, bad]);
      } catch (e) {
        msg = (e as Error).message;
      }
      if (!msg.includes(`id 1 is ${bad}`)) throw new Error(`id ${bad}: "${msg}"`);
    }
    let lengthMsg = "";
    try {
      embedding(table, Tensor.from(be, [2], [0, 1]), [0, 1, 2]);
    } catch (e) {
      lengthMsg = (e as Error).message;
    }
    if (!lengthMsg.includes("3 host ids")) throw new Error(`length mismatch: "${lengthMsg}"`);
    const host = [4, 0, 4, 1], ids = Tensor.from(be, [2, 2], host);
    const down = be.download.bind(be);
    let downloads = 0;
    be.download = (s, o, l) => (downloads++, down(s, o, l));
    const y = embedding(table, ids, host);
    be.download = down;
    if (downloads !== 0) throw new Error(`${downloads} downloads with host ids given`);
    const t = table.toArray(), got = y.toArray();
    host.forEach((id, i) => {
      for (let k = 0; k < 3; k++) {
        if (got[i * 3 + k] !== t[id * 3 + k]) throw new Error(`row ${i} col ${k}`);
      }
    });
  });
});

// The Mamba decoder's cross scan input: [memory (B, T', d); LN(target) (B, U+1, d)] along time,
// keeping the last U+1 outputs (CONMAMBA_SPEC.md 4.12). Copies: exact.
for (const [b, tm, tu, w] of [[2, 23, 7, 144], [1, 1, 1, 5], [3, 4, 2, 3]]) {
  Deno.test(`concat along time and slice back, (${b}, ${tm} + ${tu}, ${w})`, async () => {
    await withBackend(2, (be) => {
      const mv = randn(b * tm * w, 4), tv = randn(b * tu * w, 5);
      const m = Tensor.from(be, [b, tm, w], mv), t = Tensor.from(be, [b, tu, w], tv);
      const y = concatTime([m, t]);
      const want = new Float32Array(b * (tm + tu) * w);
      for (let i = 0; i < b; i++) {
        want.set(mv.subarray(i * tm * w, (i + 1) * tm * w), i * (tm + tu) * w);
        want.set(tv.subarray(i * tu * w, (i + 1) * tu * w), (i * (tm + tu) + tm) * w);
      }
      assertWithin("concat", y.toArray(), exact(want), 0);
      assertWithin("slice", sliceTime(y, tm, tu).toArray(), exact(tv), 0);
      const [dm, dt] = concatTimeBackward(y, [tm, tu]);
      assertWithin("concat' memory", dm.toArray(), exact(mv), 0);
      assertWithin("concat' target", dt.toArray(), exact(tv), 0);
      // slice backward: dy at [tm, tm + tu), zeros before.
      const dx = sliceTimeBackward(t, tm, tm + tu).toArray();
      const wantDx = new Float32Array(b * (tm + tu) * w);
      for (let i = 0; i < b; i++) {
        wantDx.set(tv.subarray(i * tu * w, (i + 1) * tu * w), (i * (tm + tu) + tm) * w);
      }
      assertWithin("slice'", dx, exact(wantDx), 0);
    });
  });
}

// Heads out of the feature axis: (B, T, H, dh) -> (B, H, T, dh), and a last-two-axes transpose.
for (const shape of [[2, 13, 4, 36], [1, 1, 1, 1], [3, 5, 7]]) {
  Deno.test(`swap axes 1 and 2 of [${shape}], and back`, async () => {
    await withBackend(2, (be) => {
      const xv = randn(xsize(shape), 6), x = Tensor.from(be, shape, xv);
      const y = swapAxes(x, 1), [d0, d1, d2] = shape, inner = xsize(shape.slice(3));
      const want = new Float32Array(xv.length);
      for (let n = 0; n < d0; n++) {
        for (let i = 0; i < d1; i++) {
          for (let j = 0; j < d2; j++) {
            for (let k = 0; k < inner; k++) {
              want[((n * d2 + j) * d1 + i) * inner + k] = xv[((n * d1 + i) * d2 + j) * inner + k];
            }
          }
        }
      }
      assertWithin("swap", y.toArray(), exact(want), 0);
      assertWithin("swap swap", swapAxes(y, 1).toArray(), exact(xv), 0);
    });
  });
}

function xsize(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}
