import { colView } from "../../src/tensor/col_view.ts";
import { selectiveScan, selectiveScanBackward } from "../../src/tensor/mamba_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { type ScanDims, selectiveScanBackwardRef, selectiveScanRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

interface Case {
  label: string;
  batch: number;
  seqlen: number;
  channels: number;
  dstate: number;
  /** B and C as columns of one (B, T, R + 2 Ns) x_proj output, z as the second half of xz. */
  views?: boolean;
  noOptional?: boolean;
}

const CASES: Case[] = [
  // conmamba_small BiMamba direction: d = 144 -> Di = 288, Ns 16, R = 9; 2 x 70 frames crosses
  // the 64-step checkpoint chunk.
  {
    label: "conmamba_small direction, views",
    batch: 2,
    seqlen: 70,
    channels: 288,
    dstate: 16,
    views: true,
  },
  { label: "conmamba_large Di = 1024, 1 x 9", batch: 1, seqlen: 9, channels: 1024, dstate: 16 },
  { label: "awkward Di 7, Ns 5, 3 chunks", batch: 3, seqlen: 130, channels: 7, dstate: 5 },
  { label: "length 1", batch: 2, seqlen: 1, channels: 5, dstate: 16, views: true },
  { label: "no D, z, delta_bias", batch: 1, seqlen: 33, channels: 6, dstate: 4, noOptional: true },
];

function inputs(c: Case, seed: number) {
  const bt = c.batch * c.seqlen, R = 9, W = R + 2 * c.dstate;
  const u = randn(bt * c.channels, seed), delta = randn(bt * c.channels, seed + 1, 0.5);
  // S4D-real init A = -(n + 1), jittered; dt_proj.bias = softplus^-1(dt), dt in [1e-3, 0.1]
  const A = Float32Array.from(
    randn(c.channels * c.dstate, seed + 2, 0.1),
    (v, i) => -(1 + (i % c.dstate)) * Math.exp(v),
  );
  const xdbl = randn(bt * W, seed + 3), xz = randn(bt * 2 * c.channels, seed + 4);
  const D = randn(c.channels, seed + 5, 0.3, 1);
  const dbias = Float32Array.from(
    randn(c.channels, seed + 6),
    (v) => Math.log(Math.expm1(Math.exp(-4.6 + 2.3 * (0.5 + 0.2 * v)))),
  );
  const cols = (src: Float32Array, w: number, c0: number, n: number) => {
    const out = new Float32Array(bt * n);
    for (let r = 0; r < bt; r++) for (let j = 0; j < n; j++) out[r * n + j] = src[r * w + c0 + j];
    return out;
  };
  return {
    u,
    delta,
    A,
    xdbl,
    xz,
    B: cols(xdbl, W, R, c.dstate),
    C: cols(xdbl, W, R + c.dstate, c.dstate),
    z: cols(xz, 2 * c.channels, c.channels, c.channels),
    D: c.noOptional ? null : D,
    deltaBias: c.noOptional ? null : dbias,
    W,
    R,
  };
}

// Tolerances. Forward: each step adds ~Ns + 6 roundings to y and exp(d A) carries ~3 ulp into the
// state, but the state forgets at rate exp(d A) < 1, so the accumulated relative error stays a
// small multiple of one step's: bounded by (Ns + 32) U of mag (the same recurrence on absolute
// values). Backward: the reverse recurrence has the same structure plus the products of the chain
// rule; dA, dD and delta_bias also sum over B T terms: (Ns + 48 + 2 T) U of their mags.
for (const c of CASES) {
  Deno.test(`selective scan forward and backward: ${c.label}`, async () => {
    await withBackend(2, (be) => {
      const x = inputs(c, 100);
      const dims: ScanDims = { ...c, deltaSoftplus: true };
      const bt = [c.batch, c.seqlen];
      const xdblT = Tensor.from(be, [...bt, x.W], x.xdbl),
        xzT = Tensor.from(be, [...bt, 2 * c.channels], x.xz);
      const q = {
        u: Tensor.from(be, [...bt, c.channels], x.u),
        delta: Tensor.from(be, [...bt, c.channels], x.delta),
        A: Tensor.from(be, [c.channels, c.dstate], x.A),
        B: c.views ? colView(xdblT, x.R, c.dstate) : Tensor.from(be, [...bt, c.dstate], x.B),
        C: c.views
          ? colView(xdblT, x.R + c.dstate, c.dstate)
          : Tensor.from(be, [...bt, c.dstate], x.C),
        D: x.D ? Tensor.from(be, [c.channels], x.D) : null,
        z: c.noOptional
          ? null
          : c.views
          ? colView(xzT, c.channels, c.channels)
          : Tensor.from(be, [...bt, c.channels], x.z),
        deltaBias: x.deltaBias ? Tensor.from(be, [c.channels], x.deltaBias) : null,
      };
      const ref = { ...x, z: c.noOptional ? null : x.z };
      const saved = selectiveScan(q);
      assertWithin("out", saved.out.toArray(), selectiveScanRef(ref, dims), (c.dstate + 32) * U);

      const dout = randn(c.batch * c.seqlen * c.channels, 200);
      const g = selectiveScanBackward(Tensor.from(be, q.u.shape, dout), q, saved);
      const gr = selectiveScanBackwardRef(dout, ref, dims);
      const tol = (c.dstate + 48) * U, tolSum = (c.dstate + 48 + 2 * c.seqlen * c.batch) * U;
      const colsOf = (v: { tensor: Tensor; col0: number; cols: number }) => {
        const all = v.tensor.toArray(), w = v.tensor.shape[v.tensor.shape.length - 1];
        const out = new Float32Array((all.length / w) * v.cols);
        for (let r = 0; r < all.length / w; r++) {
          for (let j = 0; j < v.cols; j++) out[r * v.cols + j] = all[r * w + v.col0 + j];
        }
        return out;
      };
      assertWithin("du", g.du.toArray(), gr.du, tol);
      assertWithin("ddelta", g.ddelta.toArray(), gr.ddelta, tol);
      assertWithin("dB", colsOf(g.dB), gr.dB, (c.channels + c.dstate + 48) * U);
      assertWithin("dC", colsOf(g.dC), gr.dC, (c.channels + 48) * U);
      assertWithin("dA", g.dA.toArray(), gr.dA, tolSum);
      if (q.D) assertWithin("dD", g.dD!.toArray(), gr.dD, tolSum);
      if (q.z) assertWithin("dz", colsOf(g.dz!), gr.dz, tol);
      if (q.deltaBias) assertWithin("ddelta_bias", g.ddeltaBias!.toArray(), gr.ddeltaBias, tolSum);
    });
  });
}

Deno.test("selective scan reference backward agrees with finite differences", () => {
  // The reference backward is checked against central differences of the reference forward in
  // float64 (step 1e-6: truncation ~1e-12, rounding ~1e-10 relative), on every input kind.
  const c: Case = { label: "fd", batch: 2, seqlen: 5, channels: 3, dstate: 4 };
  const x = inputs(c, 300), dims: ScanDims = { ...c, deltaSoftplus: true };
  const args = {
    u: Float64Array.from(x.u),
    delta: Float64Array.from(x.delta),
    A: Float64Array.from(x.A),
    B: Float64Array.from(x.B),
    C: Float64Array.from(x.C),
    D: Float64Array.from(x.D!),
    z: Float64Array.from(x.z),
    deltaBias: Float64Array.from(x.deltaBias!),
  };
  const dout = randn(c.batch * c.seqlen * c.channels, 301);
  const loss = () => selectiveScanRef(args, dims).y.reduce((s, v, i) => s + v * dout[i], 0);
  const g = selectiveScanBackwardRef(dout, args, dims);
  const pairs = [
    ["u", "du"],
    ["delta", "ddelta"],
    ["A", "dA"],
    ["B", "dB"],
    ["C", "dC"],
    ["D", "dD"],
    ["z", "dz"],
    ["deltaBias", "ddeltaBias"],
  ] as const;
  for (const [name, gname] of pairs) {
    const v = args[name];
    for (let i = 0; i < v.length; i += 3) {
      const keep = v[i], h = 1e-6;
      v[i] = keep + h;
      const up = loss();
      v[i] = keep - h;
      const down = loss();
      v[i] = keep;
      const fd = (up - down) / (2 * h), an = g[gname].y[i];
      if (Math.abs(fd - an) > 1e-7 * (1 + Math.abs(fd))) {
        throw new Error(`${gname}[${i}]: reference ${an}, finite difference ${fd}`);
      }
    }
  }
});
