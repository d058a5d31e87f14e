import {
  adamStep,
  clipCoefficient,
  NORM_BLOCK,
  sumSquares,
  sumSquaresEach,
} from "../../src/tensor/optimizer_ops.ts";
import { zeroGrad } from "../../src/tensor/autograd.ts";
import type { Backend, Storage } from "../../src/tensor/backend.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { adamRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

// CONMAMBA_SPEC.md 8.1: small models Adam (wd 0), large AdamW (wd 0.01), CTC AdamW (wd 5e-4);
// betas (0.9, 0.98), eps 1e-9. Three steps from zero moments with clipping folded in.
for (
  const [label, wd, decoupled] of [["Adam", 0, false], ["AdamW", 0.01, true], [
    "Adam + L2",
    5e-4,
    false,
  ]] as const
) {
  Deno.test(`${label} step matches the float64 reference over 3 steps`, async () => {
    await withBackend(2, (be) => {
      const n = 1029,
        pv = randn(n, 1),
        o = { lr: 8e-4, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: wd, decoupled };
      const p = Tensor.from(be, [n], pv, "param");
      const m = Tensor.from(be, [n], new Float32Array(n), "param");
      const v = Tensor.from(be, [n], new Float32Array(n), "param");
      const p64 = Float64Array.from(pv), m64 = new Float64Array(n), v64 = new Float64Array(n);
      for (let step = 1; step <= 3; step++) {
        const gv = randn(n, 10 + step, 3);
        const g = Tensor.from(be, [n], gv);
        const { coef } = clipCoefficient([g], 5.0);
        adamStep(p, g, m, v, { ...o, step, gradScale: coef });
        adamRef(p64, gv.map((x) => x * coef), m64, v64, { ...o, step });
      }
      // Each step moves p by about lr; the update's float32 error is a few U of lr (rounded
      // moments, a root, a division), and p itself rounds: (|p| + 3 lr) 16 U bounds three steps.
      const mag = p64.map((x) => Math.abs(x) + 3 * o.lr);
      assertWithin("param", p.toArray(), { y: p64, mag }, 16 * U);
      p.free(), m.free(), v.free();
    });
  });
}

Deno.test("global norm: block partials in float64, clip coefficient as torch", async () => {
  await withBackend(2, (be) => {
    const a = randn(3 * NORM_BLOCK + 17, 5), b = randn(5, 6);
    const want = [...a, ...b].reduce((s, x) => s + x * x, 0);
    const ta = Tensor.from(be, [a.length], a), tb = Tensor.from(be, [5], b);
    // each partial is a float64 sum rounded once to float32; the host adds ~4 of them
    const got = sumSquares(ta) + sumSquares(tb);
    if (Math.abs(got - want) > 4 * U * want) throw new Error(`sum of squares ${got}, want ${want}`);
    const { total, coef } = clipCoefficient([ta, tb], 5.0);
    if (Math.abs(total - Math.sqrt(want)) > 4 * U * total) throw new Error(`norm ${total}`);
    if (Math.abs(coef - 5 / (total + 1e-6)) > 1e-12) throw new Error(`coef ${coef}`);
    if (clipCoefficient([tb], 1e6).coef !== 1) throw new Error("no clipping below max_norm");
  });
});

/** Counts the host transfers a backend is asked for (each download synchronises a GPU). */
function countTransfers(be: Backend): { downloads: number; uploads: number; restore(): void } {
  const c = { downloads: 0, uploads: 0, restore: () => {} };
  const down = be.download.bind(be), up = be.upload.bind(be);
  be.download = (s: Storage, o?: number, l?: number) => (c.downloads++, down(s, o, l));
  be.upload = (s: Storage, d: Float32Array, o?: number) => (c.uploads++, up(s, d, o));
  c.restore = () => {
    be.download = down;
    be.upload = up;
  };
  return c;
}

Deno.test("global norm of many gradients: one download, the bits of one buffer at a time", async () => {
  await withBackend(2, (be) => {
    const sizes = [3 * NORM_BLOCK + 17, 5, 0, NORM_BLOCK, 2 * NORM_BLOCK - 1, 1];
    const gs = sizes.map((n, i) => Tensor.from(be, [n], randn(n, 40 + i)));
    const alone = gs.map((g) => sumSquares(g));
    const io = countTransfers(be);
    const each = sumSquaresEach(gs);
    const { total } = clipCoefficient(gs, 5.0);
    io.restore();
    if (io.downloads !== 2 || io.uploads !== 0) {
      throw new Error(`${io.downloads} downloads, ${io.uploads} uploads for two norms: want 2, 0`);
    }
    each.forEach((v, i) => {
      if (!Object.is(v, alone[i])) throw new Error(`buffer ${i}: ${v} together, ${alone[i]} alone`);
    });
    // The total adds the per-buffer sums in order, as clip_grad_norm_'s sum over parameters.
    const want = Math.sqrt(alone.reduce((s, v) => s + v, 0));
    if (!Object.is(total, want)) throw new Error(`norm ${total}, want ${want}`);
    if (alone[2] !== 0) throw new Error(`empty buffer: ${alone[2]}`);
  });
});

Deno.test("zeroGrad clears gradients on the device, with no host upload", async () => {
  await withBackend(2, (be) => {
    const p = Tensor.param(be, [3, 7], randn(21, 50));
    p.grad = Tensor.from(be, [3, 7], randn(21, 51), "param");
    const io = countTransfers(be);
    zeroGrad([p]);
    io.restore();
    if (io.uploads !== 0) throw new Error(`zeroGrad uploaded ${io.uploads} buffers`);
    const g = p.grad.toArray();
    if (g.some((x) => !Object.is(x, 0))) throw new Error(`gradient not +0 after zeroGrad: ${g}`);
    p.free(), p.grad.free();
  });
});
