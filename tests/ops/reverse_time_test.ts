/**
 * `reverse` on the depthwise conv and the selective scan (BiMamba's backward direction without
 * flips): every output and gradient has the bits of flip, op, flip on the same inputs, the
 * parameter gradients (dw, dbias, dA, dD, d delta_bias) included: the kernels run the flipped
 * sequence's arithmetic in its order and only address rows T-1-t. Column views as BiMamba
 * passes them (x and z halves of in_proj's output, B and C columns of x_proj's), chunk-crossing
 * lengths, T = 1, 1 and 2 threads.
 */
import { colView } from "../../src/tensor/col_view.ts";
import {
  conv1dDepthwise,
  conv1dDepthwiseBackward,
  flipTime,
  selectiveScan,
  selectiveScanBackward,
} from "../../src/tensor/mamba_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, withBackend } from "./helpers.ts";

function assertBits(what: string, got: Float32Array, want: Float32Array): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} vs ${want.length}`);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) throw new Error(`${what}[${i}]: ${got[i]} vs ${want[i]} (flip path)`);
  }
}

const zeros = (be: Parameters<typeof Tensor.from>[0], shape: number[]) =>
  Tensor.from(be, shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));

const CONV_CASES = [
  {
    label: "Mamba causal K 4 + SiLU, x the first half of xz",
    B: 2,
    T: 37,
    C: 12,
    K: 4,
    pad: 3,
    silu: true,
  },
  { label: "convolution module 'same' K 31", B: 2, T: 45, C: 8, K: 31, pad: 15, silu: false },
  { label: "T = 1, odd channels", B: 3, T: 1, C: 5, K: 4, pad: 3, silu: true },
];

for (const c of CONV_CASES) {
  for (const threads of [1, 2]) {
    Deno.test(`conv1d reverse = flip, conv, flip, bitwise: ${c.label}, ${threads} thread(s)`, async () => {
      await withBackend(threads, (be) => {
        const shape = [c.B, c.T, 2 * c.C];
        const xz = Tensor.from(be, shape, randn(c.B * c.T * 2 * c.C, 1));
        const w = Tensor.from(be, [c.C, c.K], randn(c.C * c.K, 2, 0.4));
        const bias = Tensor.from(be, [c.C], randn(c.C, 3, 0.2));
        const dy = Tensor.from(be, [c.B, c.T, c.C], randn(c.B * c.T * c.C, 4));
        const o = { padLeft: c.pad, silu: c.silu };
        const y = conv1dDepthwise(colView(xz, 0, c.C), w, bias, { ...o, reverse: true });
        const xzF = flipTime(xz);
        const yRef = flipTime(conv1dDepthwise(colView(xzF, 0, c.C), w, bias, o));
        assertBits("y", y.toArray(), yRef.toArray());
        const into = zeros(be, shape), intoF = zeros(be, shape);
        const g = conv1dDepthwiseBackward(dy, colView(xz, 0, c.C), w, bias, {
          ...o,
          reverse: true,
          into,
        });
        const gRef = conv1dDepthwiseBackward(flipTime(dy), colView(xzF, 0, c.C), w, bias, {
          ...o,
          into: intoF,
        });
        assertBits("dx", into.toArray(), flipTime(intoF).toArray());
        assertBits("dw", g.dw.toArray(), gRef.dw.toArray());
        assertBits("dbias", g.dbias.toArray(), gRef.dbias.toArray());
      });
    });
  }
}

const SCAN_CASES = [
  {
    label: "BiMamba direction, views, 2 x 70 (crosses the checkpoint chunk)",
    B: 2,
    T: 70,
    Di: 24,
    Ns: 16,
  },
  { label: "awkward Di 7, Ns 5, 3 chunks", B: 3, T: 130, Di: 7, Ns: 5 },
  { label: "T = 1", B: 2, T: 1, Di: 5, Ns: 4 },
];

for (const c of SCAN_CASES) {
  for (const threads of [1, 2]) {
    Deno.test(`selective scan reverse = flip, scan, flip, bitwise: ${c.label}, ${threads} thread(s)`, async () => {
      await withBackend(threads, (be) => {
        const R = 3, W = R + 2 * c.Ns, bt = [c.B, c.T], n = c.B * c.T;
        const t = (shape: number[], data: Float32Array) => Tensor.from(be, shape, data);
        const u = t([...bt, c.Di], randn(n * c.Di, 10));
        const delta = t([...bt, c.Di], randn(n * c.Di, 11, 0.5));
        const A = t(
          [c.Di, c.Ns],
          Float32Array.from(randn(c.Di * c.Ns, 12, 0.1), (v, i) => -(1 + (i % c.Ns)) * Math.exp(v)),
        );
        const xdbl = t([...bt, W], randn(n * W, 13)),
          xz = t([...bt, 2 * c.Di], randn(n * 2 * c.Di, 14));
        const D = t([c.Di], randn(c.Di, 15, 0.3, 1)), dbias = t([c.Di], randn(c.Di, 16, 0.5, -3));
        const dout = t([...bt, c.Di], randn(n * c.Di, 17));
        const q = (u: Tensor, delta: Tensor, xdbl: Tensor, xz: Tensor, reverse: boolean) => ({
          u,
          delta,
          A,
          B: colView(xdbl, R, c.Ns),
          C: colView(xdbl, R + c.Ns, c.Ns),
          D,
          z: colView(xz, c.Di, c.Di),
          deltaBias: dbias,
          reverse,
        });
        const qr = q(u, delta, xdbl, xz, true);
        const qf = q(flipTime(u), flipTime(delta), flipTime(xdbl), flipTime(xz), false);
        const s = selectiveScan(qr), sf = selectiveScan(qf);
        assertBits("out", s.out.toArray(), flipTime(sf.out).toArray());
        const bc = zeros(be, [...bt, W]), z = zeros(be, [...bt, 2 * c.Di]);
        const bcF = zeros(be, [...bt, W]), zF = zeros(be, [...bt, 2 * c.Di]);
        const g = selectiveScanBackward(dout, qr, s, { bc, z });
        const gf = selectiveScanBackward(flipTime(dout), qf, sf, { bc: bcF, z: zF });
        assertBits("du", g.du.toArray(), flipTime(gf.du).toArray());
        assertBits("ddelta", g.ddelta.toArray(), flipTime(gf.ddelta).toArray());
        assertBits("dB, dC", bc.toArray(), flipTime(bcF).toArray());
        assertBits("dz", z.toArray(), flipTime(zF).toArray());
        assertBits("dA", g.dA.toArray(), gf.dA.toArray());
        assertBits("dD", g.dD!.toArray(), gf.dD!.toArray());
        assertBits("ddelta_bias", g.ddeltaBias!.toArray(), gf.ddeltaBias!.toArray());
      });
    });
  }
}
