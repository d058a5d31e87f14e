/**
 * The Mamba core's backward adds its dxz to the other direction's in place (src/nn/bimamba.ts):
 * conv1d backward's `accumulate` (dx) and the scan backward's `accumulateZ` (dz) must give the
 * bits of a fresh gradient followed by a separate add, in the columns they own, and leave the
 * other columns as they were; the scan's `half` (with `other`) must give the bits of scaling by
 * 0.5 and adding, forward, and of halving dout first, backward (BiMamba's average of both
 * directions), and its out_bf16 the bf16 rounding of that output. Both time directions, 1 and 2
 * threads.
 */
import { colView } from "../../src/tensor/col_view.ts";
import {
  conv1dDepthwiseBackward,
  selectiveScan,
  selectiveScanBackward,
} from "../../src/tensor/mamba_ops.ts";
import { add, scale } from "../../src/tensor/ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { bf16Ref, randn, withBackend } from "./helpers.ts";

function assertBits(what: string, got: Float32Array, want: Float32Array): void {
  const a = new Uint32Array(got.buffer), b = new Uint32Array(want.buffer);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) throw new Error(`${what}[${i}]: ${got[i]} vs ${want[i]} (fresh + add)`);
  }
}

for (const threads of [1, 2]) {
  for (const reverse of [false, true]) {
    const label = `${threads} thread(s)${reverse ? ", reverse time" : ""}`;
    Deno.test(`conv1d backward accumulate: dx + gradient, the bits of a separate add; ${label}`, async () => {
      await withBackend(threads, (be) => {
        const [B, T, C, K] = [2, 37, 12, 4], shape = [B, T, 2 * C], n = B * T * 2 * C;
        const xz = Tensor.from(be, shape, randn(n, 1));
        const w = Tensor.from(be, [C, K], randn(C * K, 2, 0.4));
        const bias = Tensor.from(be, [C], randn(C, 3, 0.2));
        const dy = Tensor.from(be, [B, T, C], randn(B * T * C, 4));
        const o = { padLeft: K - 1, silu: true, reverse };
        const prev = randn(n, 5);
        const acc = Tensor.from(be, shape, prev),
          fresh = Tensor.from(be, shape, new Float32Array(n));
        conv1dDepthwiseBackward(dy, colView(xz, 0, C), w, bias, {
          ...o,
          into: acc,
          accumulate: true,
        });
        conv1dDepthwiseBackward(dy, colView(xz, 0, C), w, bias, { ...o, into: fresh });
        assertBits("dxz", acc.toArray(), add(Tensor.from(be, shape, prev), fresh).toArray());
      });
    });

    Deno.test(`selective scan backward accumulateZ: dz + gradient, the bits of a separate add; ${label}`, async () => {
      await withBackend(threads, (be) => {
        const [B, T, Di, Ns, R] = [2, 70, 12, 8, 3], W = R + 2 * Ns, bt = [B, T], n = B * T;
        const t = (shape: number[], data: Float32Array) => Tensor.from(be, shape, data);
        const xdbl = t([...bt, W], randn(n * W, 13)),
          xz = t([...bt, 2 * Di], randn(n * 2 * Di, 14));
        const q = {
          u: t([...bt, Di], randn(n * Di, 10)),
          delta: t([...bt, Di], randn(n * Di, 11, 0.5)),
          A: t(
            [Di, Ns],
            Float32Array.from(randn(Di * Ns, 12, 0.1), (v, i) => -(1 + (i % Ns)) * Math.exp(v)),
          ),
          B: colView(xdbl, R, Ns),
          C: colView(xdbl, R + Ns, Ns),
          D: t([Di], randn(Di, 15, 0.3, 1)),
          z: colView(xz, Di, Di),
          deltaBias: t([Di], randn(Di, 16, 0.5, -3)),
          reverse,
        };
        const s = selectiveScan(q), dout = t([...bt, Di], randn(n * Di, 17));
        const prev = randn(n * 2 * Di, 18);
        const acc = t([...bt, 2 * Di], prev),
          fresh = t([...bt, 2 * Di], new Float32Array(n * 2 * Di));
        selectiveScanBackward(dout, q, s, { z: acc, accumulateZ: true });
        selectiveScanBackward(dout, q, s, { z: fresh });
        assertBits("dxz", acc.toArray(), add(t([...bt, 2 * Di], prev), fresh).toArray());
        // BiMamba's halves: the forward writes 0.5 out (+ another direction's half), the bits of
        // scale then add; the backward reads dout halved, the bits of scaling dout first
        const other = t([...bt, Di], randn(n * Di, 19));
        const half = selectiveScan({ ...q, half: true, other });
        assertBits("half + other", half.out.toArray(), add(other, scale(s.out, 0.5)).toArray());
        assertBits("half states", half.states.toArray(), s.states.toArray());
        // out_bf16 (out_proj's input in bf16 mode): that output rounded to bf16, nothing else
        const h16 = selectiveScan({ ...q, half: true, other, outDtype: "bf16" });
        if (h16.out.dtype !== "bf16") throw new Error(`out_bf16: a ${h16.out.dtype} output`);
        assertBits("out_bf16", h16.out.toArray(), half.out.toArray().map(bf16Ref));
        assertBits("out_bf16 states", h16.states.toArray(), s.states.toArray());
        const gh = selectiveScanBackward(dout, { ...q, half: true, other }, half);
        const g2 = selectiveScanBackward(scale(dout, 0.5), q, s);
        for (const k of ["du", "ddelta", "dA", "dD", "ddeltaBias"] as const) {
          assertBits(`half: ${k}`, gh[k]!.toArray(), g2[k]!.toArray());
        }
        assertBits("half: dB dC dz", gh.dB.tensor.toArray(), g2.dB.tensor.toArray());
      });
    });
  }
}
