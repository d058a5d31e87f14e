/**
 * BiMamba's backward direction runs its conv and scan in reverse time instead of flipping xz and
 * the result (src/nn/bimamba.ts): against the flip formulation of CONMAMBA_SPEC.md 4.7
 * (o_b = flip(core(flip(xz)))), built here from the same pieces, the output is bitwise equal and
 * so are all parameter gradients but two: x_proj_b's and dt_proj_b's weight gradients sum their
 * rows in the other time order (one product over all rows), so they agree to float32 rounding.
 */
import { BiMamba, mambaCore } from "../../src/nn/bimamba.ts";
import { Tape, zeroGrad } from "../../src/tensor/autograd.ts";
import * as ag from "../../src/tensor/autograd_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, withBackend } from "../ops/helpers.ts";

Deno.test("BiMamba: the reverse-time backward direction has the bits of flip, core, flip", async () => {
  await withBackend(1, (be) => {
    const d = 16, B = 2, T = 70; // T crosses the scan's 64-step checkpoint chunk
    const m = new BiMamba(be, { dModel: d });
    let seed = 1;
    for (const [, p] of m.namedParameters()) be.upload(p.storage, randn(p.size, seed++, 0.3));
    const u = Tensor.from(be, [B, T, d], randn(B * T * d, 99), "param"); // kept across runs
    const r = Tensor.from(be, [B, T, d], randn(B * T * d, 98), "param");
    const params = [...m.namedParameters()];
    const run = (flips: boolean) => {
      const tape = new Tape(), ctx = { tape, training: true, seed: 3, stream: 0 };
      let y: Tensor;
      if (flips) {
        const xz = m.in_proj.forward(ctx, u);
        const oF = mambaCore(tape, xz, m.direction("forward"), m.dState);
        const oB = ag.flipTime(
          tape,
          mambaCore(tape, ag.flipTime(tape, xz), m.direction("backward"), m.dState),
        );
        y = m.out_proj.forward(ctx, ag.scale(tape, ag.add(tape, oF, oB), 0.5));
      } else {
        y = m.forward(ctx, u);
      }
      const out = y.toArray();
      tape.backward(ag.sum(tape, ag.mul(tape, y, r)));
      const grads = params.map(([name, p]) => [name, p.grad!.toArray()] as const);
      tape.reset();
      be.resetStep();
      zeroGrad(params.map(([, p]) => p));
      return { out, grads };
    };
    const ref = run(true), got = run(false);
    const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
    const same = (a: Float32Array, b: Float32Array) => bits(a).every((v, i) => v === bits(b)[i]);
    if (!same(got.out, ref.out)) throw new Error("output differs from the flip formulation");
    got.grads.forEach(([name, g], i) => {
      const h = ref.grads[i][1];
      if (name === "x_proj_b.weight" || name === "dt_proj_b.weight") {
        // Sums over B T = 140 rows in another order: ~sqrt(140) 2^-24 relative; 1e-5 of the
        // largest is far below any real difference.
        const big = Math.max(...h.map(Math.abs));
        g.forEach((v, j) => {
          if (!(Math.abs(v - h[j]) <= 1e-5 * big)) {
            throw new Error(`${name}[${j}]: ${v} vs ${h[j]}`);
          }
        });
      } else if (!same(g, h)) {
        throw new Error(`gradient of ${name} differs from the flip formulation`);
      }
    });
  });
});
