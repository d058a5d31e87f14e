/**
 * Multi-head attention on the tape (src/tensor/attention.ts) against the float64 reference
 * forward, and its gradients with respect to q, k and v against central differences of that
 * reference (as tests/tensor/autograd_test.ts: float32 kernels, float64 differences, 1e-4 of
 * the largest gradient).
 */
import { attention } from "../../src/tensor/attention.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import * as ag from "../../src/tensor/autograd_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attentionRef, type AttnRefMask } from "../ops/reference.ts";
import { assertWithin, randn, U, withBackend } from "../ops/helpers.ts";

const CASES: (AttnRefMask & { label: string })[] = [
  {
    label: "self-attention, causal + key lengths, 2 heads",
    batch: 2,
    heads: 2,
    tq: 5,
    s: 5,
    scale: 1 / Math.sqrt(3),
    causal: true,
    keyLengths: [5, 3],
  },
  {
    label: "cross-attention, key lengths, 3 heads",
    batch: 2,
    heads: 3,
    tq: 4,
    s: 7,
    scale: 1 / Math.sqrt(2),
    causal: false,
    keyLengths: [7, 4],
  },
];

for (const c of CASES) {
  Deno.test(`attention forward and gradients vs finite differences: ${c.label}`, async () => {
    await withBackend(2, (be) => {
      const dh = c.heads === 2 ? 3 : 2, d = c.heads * dh;
      const init = {
        q: randn(c.batch * c.tq * d, 31),
        k: randn(c.batch * c.s * d, 32),
        v: randn(c.batch * c.s * d, 33),
      };
      const r = randn(c.batch * c.tq * d, 34);
      const tape = new Tape();
      const q = Tensor.param(be, [c.batch, c.tq, d], init.q);
      const k = Tensor.param(be, [c.batch, c.s, d], init.k);
      const v = Tensor.param(be, [c.batch, c.s, d], init.v);
      const keyLengths = c.keyLengths ? Tensor.from(be, [c.batch], c.keyLengths) : null;
      const out = attention(tape, q, k, v, { heads: c.heads, causal: c.causal, keyLengths });
      const want = attentionRef(init.q, init.k, init.v, c);
      // Sums of at most S + dh products of magnitude <= ~1 (probabilities times N(0, 1)).
      assertWithin("attention", out.toArray(), { y: want, mag: want.map(() => 10) }, 64 * U);
      tape.backward(ag.sum(tape, ag.mul(tape, out, Tensor.from(be, out.shape, r))));
      const inputs = {
        q: Float64Array.from(init.q),
        k: Float64Array.from(init.k),
        v: Float64Array.from(init.v),
      };
      const f = () => {
        const y = attentionRef(inputs.q, inputs.k, inputs.v, c);
        return y.reduce((s, yi, i) => s + yi * r[i], 0);
      };
      for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
        const g = t.grad!.toArray(), x = inputs[name];
        const scale = g.reduce((m, gi) => Math.max(m, Math.abs(gi)), 0);
        for (let i = 0; i < x.length; i++) {
          const keep = x[i], h = 1e-5;
          x[i] = keep + h;
          const up = f();
          x[i] = keep - h;
          const down = f();
          x[i] = keep;
          const fd = (up - down) / (2 * h);
          if (!(Math.abs(g[i] - fd) <= 1e-4 * scale + 1e-7)) {
            throw new Error(`d/d${name}[${i}]: tape ${g[i]}, finite difference ${fd}`);
          }
        }
      }
      for (const t of [q, k, v]) t.free(), t.grad?.free();
    });
  });
}

Deno.test("tape: embedding, concat / slice along time, mean over time vs finite differences", async () => {
  await withBackend(2, (be) => {
    const [B, Tm, U1, D, V] = [2, 3, 4, 5, 6];
    const idv = [1, 4, 1, 0, 5, 5, 2, 1]; // (B, U1), repeated ids
    const init = { table: randn(V * D, 41), mem: randn(B * Tm * D, 42) };
    const r = randn(B * D, 43);
    const tape = new Tape();
    const table = Tensor.param(be, [V, D], init.table),
      mem = Tensor.param(be, [B, Tm, D], init.mem);
    const x = ag.embedding(tape, table, Tensor.from(be, [B, U1], idv));
    const kept = ag.sliceTime(tape, ag.concatTime(tape, [mem, x]), 1, Tm + U1 - 1);
    const m = ag.meanAxis(tape, ag.swapAxes(tape, ag.swapAxes(tape, kept, 1), 1), 1); // (B, D)
    tape.backward(ag.sum(tape, ag.mul(tape, m, Tensor.from(be, [B, D], r))));
    const inputs = { table: Float64Array.from(init.table), mem: Float64Array.from(init.mem) };
    const f = () => {
      let s = 0; // sum_b,k r[b,k] mean over t in [1, Tm + U1) of [mem; table[ids]][b, t, k]
      for (let b = 0; b < B; b++) {
        for (let t = 1; t < Tm + U1; t++) {
          for (let k = 0; k < D; k++) {
            const v = t < Tm
              ? inputs.mem[(b * Tm + t) * D + k]
              : inputs.table[idv[b * U1 + t - Tm] * D + k];
            s += (r[b * D + k] * v) / (Tm + U1 - 1);
          }
        }
      }
      return s;
    };
    for (const [name, t] of [["table", table], ["mem", mem]] as const) {
      const g = t.grad!.toArray(), xv = inputs[name];
      for (let i = 0; i < xv.length; i++) {
        const keep = xv[i];
        xv[i] = keep + 1e-5;
        const up = f();
        xv[i] = keep - 1e-5;
        const down = f();
        xv[i] = keep;
        const fd = (up - down) / 2e-5;
        if (!(Math.abs(g[i] - fd) <= 1e-5)) {
          throw new Error(`d/d${name}[${i}]: tape ${g[i]}, finite difference ${fd}`);
        }
      }
    }
    for (const t of [table, mem]) t.free(), t.grad?.free();
  });
});
