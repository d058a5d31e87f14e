/**
 * The tape's gradients against float64 central differences of the same composition evaluated
 * with the references of tests/ops/reference.ts. The kernels run in float32 (gradient error
 * ~1e-6 relative) and the differences in float64 (step 1e-5: error ~1e-9), so 1e-4 of the
 * largest gradient separates a correct chain rule from a wrong one by orders of magnitude.
 */
import { Tape, zeroGrad } from "../../src/tensor/autograd.ts";
import * as ag from "../../src/tensor/autograd_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  conv1dDepthwiseRef,
  flipTimeRef,
  geluRef,
  layerNormRef,
  matmulRef,
  selectiveScanRef,
} from "../ops/reference.ts";
import { assertSameBits, chunkSumsInOrder, randn, withBackend } from "../ops/helpers.ts";
import {
  dropoutAdd,
  geluDropout,
  geluDropoutBackward,
  scaleDropout,
} from "../../src/tensor/dropout.ts";
import * as ops from "../../src/tensor/ops.ts";
import { glu, gluBackward } from "../../src/tensor/conv_ops.ts";

type Inputs = Record<string, Float64Array>;

/** Checks every `stride`-th element of each input's analytic gradient against f's differences. */
function checkGrads(
  f: (v: Inputs) => number,
  inputs: Inputs,
  analytic: Record<string, Float32Array>,
  stride = 1,
): void {
  for (const [name, v] of Object.entries(inputs)) {
    const g = analytic[name];
    let scale = 0;
    for (const x of g) scale = Math.max(scale, Math.abs(x));
    for (let i = 0; i < v.length; i += stride) {
      const keep = v[i], h = 1e-5 * Math.max(1, Math.abs(keep));
      v[i] = keep + h;
      const up = f(inputs);
      v[i] = keep - h;
      const down = f(inputs);
      v[i] = keep;
      const fd = (up - down) / (2 * h);
      if (!(Math.abs(g[i] - fd) <= 1e-4 * scale + 1e-7)) {
        throw new Error(`d/d${name}[${i}]: tape ${g[i]}, finite difference ${fd}`);
      }
    }
  }
}

Deno.test("autograd: sum(r * gelu(layerNorm(x W^T + b))) + sum(x * x) vs finite differences", async () => {
  await withBackend(2, (be) => {
    const [M, K, N] = [5, 7, 6];
    const init: Record<string, Float32Array> = {
      x: randn(M * K, 1),
      w: randn(N * K, 2, 0.5),
      b: randn(N, 3),
      gamma: randn(N, 4, 0.3, 1),
      beta: randn(N, 5, 0.2),
    };
    const r = randn(M * N, 6);
    const tape = new Tape();
    const p = {
      x: Tensor.param(be, [M, K], init.x),
      w: Tensor.param(be, [N, K], init.w),
      b: Tensor.param(be, [N], init.b),
      gamma: Tensor.param(be, [N], init.gamma),
      beta: Tensor.param(be, [N], init.beta),
    };
    const forward = () => {
      const h = ag.matmul(tape, p.x, p.w, { transB: true, bias: p.b });
      const y = ag.gelu(tape, ag.layerNorm(tape, h, p.gamma, p.beta, 1e-5));
      const weighted = ag.mul(tape, y, Tensor.from(be, [M, N], r));
      return ag.add(tape, ag.sum(tape, weighted), ag.sum(tape, ag.mul(tape, p.x, p.x)));
    };
    tape.backward(forward());
    const f = (v: Inputs) => {
      const h = matmulRef(v.x, v.w, {
        batch: 1,
        m: M,
        n: N,
        k: K,
        transA: false,
        transB: true,
        strideA: 0,
        strideB: 0,
        bias: v.b,
      }).y;
      const ln = layerNormRef(h, v.gamma, v.beta, M, N, 1e-5).y;
      let s = 0;
      for (let i = 0; i < M * N; i++) s += r[i] * geluRef(ln[i]);
      for (const xi of v.x) s += xi * xi;
      return s;
    };
    const inputs = Object.fromEntries(
      Object.entries(init).map(([k, v]) => [k, Float64Array.from(v)]),
    );
    const grads = Object.fromEntries(Object.entries(p).map(([k, t]) => [k, t.grad!.toArray()]));
    checkGrads(f, inputs, grads);

    // A second backward accumulates into the same buffers; zeroGrad clears them. The kernels
    // add their terms onto the first gradient one by one (matmul's accumulate: one rounding per
    // product, K = 7 or M = 5 of them), so twice the gradient holds to a few float32 ulps of the
    // largest: 1e-6 relative (2^-24 = 6e-8 per rounding), far below a missing or doubled term.
    tape.reset();
    tape.backward(forward());
    for (const [k, t] of Object.entries(p)) {
      const twice = t.grad!.toArray(), big = Math.max(...grads[k].map(Math.abs));
      twice.forEach((v, i) => {
        if (!(Math.abs(v - 2 * grads[k][i]) <= 1e-6 * 2 * big)) {
          throw new Error(`accumulated d${k}[${i}] ${v} != 2 x ${grads[k][i]}`);
        }
      });
    }
    zeroGrad(Object.values(p));
    if (p.w.grad!.toArray().some((v) => v !== 0)) throw new Error("zeroGrad left values");
    tape.reset();
    for (const t of Object.values(p)) t.grad!.free(), t.free();
  });
});

Deno.test("autograd: BiMamba-style direction, conv1d+SiLU -> selective scan -> flip, vs finite differences", async () => {
  await withBackend(2, (be) => {
    const [Bn, T, Di, Ns] = [2, 6, 3, 4];
    const n = Bn * T * Di;
    const init: Record<string, Float32Array> = {
      x: randn(n, 11),
      cw: randn(Di * 4, 12, 0.5),
      cb: randn(Di, 13, 0.2),
      delta: randn(n, 14, 0.5),
      A: Float32Array.from(randn(Di * Ns, 15, 0.1), (v, i) => -(1 + (i % Ns)) * Math.exp(v)),
      B: randn(Bn * T * Ns, 16),
      C: randn(Bn * T * Ns, 17),
      D: randn(Di, 18, 0.3, 1),
      z: randn(n, 19),
      dbias: randn(Di, 20, 0.3, -1),
    };
    const r = randn(n, 21);
    const tape = new Tape();
    const shapes: Record<string, number[]> = {
      x: [Bn, T, Di],
      cw: [Di, 4],
      cb: [Di],
      delta: [Bn, T, Di],
      A: [Di, Ns],
      B: [Bn, T, Ns],
      C: [Bn, T, Ns],
      D: [Di],
      z: [Bn, T, Di],
      dbias: [Di],
    };
    const p = Object.fromEntries(
      Object.entries(init).map(([k, v]) => [k, Tensor.param(be, shapes[k], v)]),
    );
    const u = ag.conv1dDepthwise(tape, p.x, p.cw, p.cb, { padLeft: 3, silu: true });
    const o = ag.selectiveScan(tape, {
      u,
      delta: p.delta,
      A: p.A,
      B: p.B,
      C: p.C,
      D: p.D,
      z: p.z,
      deltaBias: p.dbias,
    });
    tape.backward(
      ag.sum(tape, ag.mul(tape, ag.flipTime(tape, o), Tensor.from(be, [Bn, T, Di], r))),
    );
    const f = (v: Inputs) => {
      const uu = conv1dDepthwiseRef(v.x, v.cw, v.cb, {
        batch: Bn,
        seqlen: T,
        channels: Di,
        kernel: 4,
        padLeft: 3,
        silu: true,
      }).y;
      const out = selectiveScanRef(
        { u: uu, delta: v.delta, A: v.A, B: v.B, C: v.C, D: v.D, z: v.z, deltaBias: v.dbias },
        { batch: Bn, seqlen: T, channels: Di, dstate: Ns, deltaSoftplus: true },
      ).y;
      return flipTimeRef(out, Bn, T, Di).y.reduce((s, y, i) => s + y * r[i], 0);
    };
    const inputs = Object.fromEntries(
      Object.entries(init).map(([k, v]) => [k, Float64Array.from(v)]),
    );
    const grads = Object.fromEntries(Object.entries(p).map(([k, t]) => [k, t.grad!.toArray()]));
    checkGrads(f, inputs, grads, 2);
    tape.reset();
    for (const t of Object.values(p)) t.grad!.free(), t.free();
  });
});

// A gradient the tape passes unchanged to two inputs (add's backward: dz to both h and the
// branch) must not be written in place by the branch's backward: here LayerNorm and a Linear
// would add their dx into dz while reading it as their dy. Residual and shared-input patterns
// (h feeds the LayerNorm, the Linear and both adds) with the in-place path on.
Deno.test("autograd: a gradient shared by two inputs is never added to in place (residuals around LayerNorm and Linear)", async () => {
  await withBackend(1, (be) => {
    const [M, K, N] = [4, 5, 6];
    const init: Record<string, Float32Array> = {
      x: randn(M * K, 31),
      w: randn(N * K, 32, 0.5),
      w2: randn(N * N, 33, 0.4),
      gamma: randn(N, 34, 0.3, 1),
      beta: randn(N, 35, 0.2),
    };
    const r = randn(M * N, 36);
    const tape = new Tape();
    const p = {
      x: Tensor.param(be, [M, K], init.x),
      w: Tensor.param(be, [N, K], init.w),
      w2: Tensor.param(be, [N, N], init.w2),
      gamma: Tensor.param(be, [N], init.gamma),
      beta: Tensor.param(be, [N], init.beta),
    };
    // h = x W^T;  z = h + LN(h);  y = z + z W2^T;  loss = sum(r * y)
    const h = ag.matmul(tape, p.x, p.w, { transB: true });
    const z = ag.add(tape, h, ag.layerNorm(tape, h, p.gamma, p.beta, 1e-5));
    const y = ag.add(tape, z, ag.matmul(tape, z, p.w2, { transB: true }));
    tape.backward(ag.sum(tape, ag.mul(tape, y, Tensor.from(be, [M, N], r))));
    const mm = (a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number) =>
      matmulRef(a, b, {
        batch: 1,
        m,
        n,
        k,
        transA: false,
        transB: true,
        strideA: 0,
        strideB: 0,
        bias: null,
      }).y;
    const f = (v: Inputs) => {
      const hh = mm(v.x, v.w, M, K, N);
      const ln = layerNormRef(hh, v.gamma, v.beta, M, N, 1e-5).y;
      const zz = hh.map((a, i) => a + ln[i]);
      const zw = mm(zz, v.w2, M, N, N);
      return zz.reduce((s, a, i) => s + r[i] * (a + zw[i]), 0);
    };
    const inputs = Object.fromEntries(
      Object.entries(init).map(([k, v]) => [k, Float64Array.from(v)]),
    );
    const grads = Object.fromEntries(Object.entries(p).map(([k, t]) => [k, t.grad!.toArray()]));
    checkGrads(f, inputs, grads);
    tape.reset();
    for (const t of Object.values(p)) t.grad!.free(), t.free();
  });
});

Deno.test("autograd: paramRows is a view whose gradient lands in those rows (in place, or by the tape's add)", async () => {
  await withBackend(2, (be) => {
    const [R, C, M] = [9, 4, 3];
    const wv = randn(R * C, 61), xv = randn(M * C, 62), r = randn(M * 3, 63);
    for (const inPlace of [true, false]) {
      const tape = new Tape();
      tape.accumulateInPlace = inPlace;
      const w = Tensor.param(be, [R, C], wv), x = Tensor.from(be, [M, C], xv);
      // rows 2..4 and 5..7 of w, each in a product, and rows 2..4 again: their gradients add up
      const a = ag.matmul(tape, x, ag.paramRows(tape, w, 2, 3), { transB: true });
      const b = ag.matmul(tape, x, ag.paramRows(tape, w, 5, 3), { transB: true });
      const c = ag.matmul(tape, x, ag.paramRows(tape, w, 2, 3), { transB: true });
      const rt = Tensor.from(be, [M, 3], r);
      const loss = ag.add(
        tape,
        ag.sum(tape, ag.mul(tape, ag.add(tape, a, c), rt)),
        ag.sum(tape, ag.mul(tape, b, rt)),
      );
      if (!Object.is(ag.paramRows(tape, w, 5, 3).toArray()[0], wv[20])) {
        throw new Error("paramRows: not rows 5.. of w");
      }
      tape.backward(loss);
      // d/dW[j] of sum_m r[m, i] x[m] . W[j]: row 2 + i gets 2 sum_m r[m, i] x[m] (two uses),
      // row 5 + i one, rows outside 2..7 nothing. Sums of 3 float32 products: 1e-6 relative.
      const g = w.grad!.toArray();
      for (let j = 0; j < R; j++) {
        for (let k = 0; k < C; k++) {
          let want = 0;
          const i = j >= 2 && j < 5 ? j - 2 : j >= 5 && j < 8 ? j - 5 : -1;
          if (i >= 0) {
            for (let m = 0; m < M; m++) want += r[m * 3 + i] * xv[m * C + k];
          }
          if (j < 5) want *= 2;
          if (!(Math.abs(g[j * C + k] - want) <= 1e-6 * (1 + Math.abs(want)))) {
            throw new Error(`inPlace ${inPlace}: dW[${j}, ${k}] = ${g[j * C + k]}, want ${want}`);
          }
        }
      }
      tape.reset();
      w.grad!.free(), w.free();
    }
    const tape = new Tape();
    const step = Tensor.from(be, [R, C], wv);
    let threw = false;
    try {
      ag.paramRows(tape, step, 0, 1);
    } catch {
      threw = true;
    }
    if (!threw) throw new Error("paramRows accepted a step tensor");
    threw = false;
    try {
      ag.paramRows(tape, Tensor.param(be, [R, C], wv), 8, 2);
    } catch (e) {
      threw = /rows \[8, 10\)/.test(String(e));
    }
    if (!threw) throw new Error("paramRows: a range past the end must be an error naming it");
  });
});

Deno.test("autograd: linearGeluDropout is matmul, GELU and dropout to the bit, its bias gradient from the GELU's column sums", async () => {
  await withBackend(2, (be) => {
    const [B, T, K, F] = [2, 70, 5, 9]; // 140 rows: three chunks of the column sums
    const xv = randn(B * T * K, 81), wv = randn(F * K, 82, 0.5), bv = randn(F, 83);
    const rv = randn(B * T * F, 84);
    const o = { p: 0.2, seed: 3, stream: 11 };
    const tape = new Tape();
    const x = Tensor.param(be, [B, T, K], xv), w = Tensor.param(be, [F, K], wv);
    const b = Tensor.param(be, [F], bv), r = Tensor.from(be, [B, T, F], rv);
    const y = ag.linearGeluDropout(tape, x, w, b, o);
    const pre = ops.matmul(Tensor.from(be, [B, T, K], xv), Tensor.from(be, [F, K], wv), {
      transB: true,
      bias: Tensor.from(be, [F], bv),
    });
    assertSameBits("forward", y.toArray(), geluDropout(pre, o).toArray());
    tape.backward(ag.sum(tape, ag.mul(tape, y, r)));
    // The same gradients from the plain ops: d(pre) once, then the two products.
    const dpre = geluDropoutBackward(pre, Tensor.from(be, [B, T, F], rv), o); // r: freed by the tape
    const dp = dpre.toArray();
    assertSameBits(
      "dx",
      x.grad!.toArray(),
      ops.matmul(dpre, Tensor.from(be, [F, K], wv)).toArray(),
    );
    const dw = ops.matmul(dpre.reshape([B * T, F]), Tensor.from(be, [B * T, K], xv), {
      transA: true,
    });
    assertSameBits("dW", w.grad!.toArray(), dw.toArray());
    const zero = new Float32Array(F);
    assertSameBits(
      "db",
      b.grad!.toArray(),
      chunkSumsInOrder((i, j) => dp[i * F + j], B * T, F, zero),
    );
    for (const t of [x, w, b]) t.grad!.free(), t.free();
    tape.reset();
  });
});

Deno.test("autograd: linearDropoutAdd is matmul, dropout, scale and add to the bit, its bias gradient from the dropout's column sums", async () => {
  await withBackend(2, (be) => {
    const [B, T, K, D] = [2, 70, 9, 5]; // 140 rows: three chunks of the column sums
    const xv = randn(B * T * D, 91), hv = randn(B * T * K, 92), wv = randn(D * K, 93, 0.5);
    const bv = randn(D, 94), rv = randn(B * T * D, 95);
    const o = { p: 0.2, seed: 4, stream: 12 }, alpha = 0.5;
    const tape = new Tape();
    const x = Tensor.param(be, [B, T, D], xv), h = Tensor.param(be, [B, T, K], hv);
    const w = Tensor.param(be, [D, K], wv), b = Tensor.param(be, [D], bv);
    const s = ag.linearDropoutAdd(tape, x, h, w, b, alpha, o).sum;
    const y = ops.matmul(Tensor.from(be, [B, T, K], hv), Tensor.from(be, [D, K], wv), {
      transB: true,
      bias: Tensor.from(be, [D], bv),
    });
    const want = dropoutAdd(Tensor.from(be, [B, T, D], xv), y, alpha, o);
    assertSameBits("forward", s.toArray(), want.toArray());
    tape.backward(ag.sum(tape, ag.mul(tape, s, Tensor.from(be, [B, T, D], rv))));
    assertSameBits("dx", x.grad!.toArray(), rv);
    const dy = scaleDropout(Tensor.from(be, [B, T, D], rv), alpha, o), d = dy.toArray();
    assertSameBits("dh", h.grad!.toArray(), ops.matmul(dy, Tensor.from(be, [D, K], wv)).toArray());
    const dw = ops.matmul(dy.reshape([B * T, D]), Tensor.from(be, [B * T, K], hv), {
      transA: true,
    });
    assertSameBits("dW", w.grad!.toArray(), dw.toArray());
    const zero = new Float32Array(D);
    assertSameBits(
      "db",
      b.grad!.toArray(),
      chunkSumsInOrder((i, j) => d[i * D + j], B * T, D, zero),
    );
    for (const t of [x, h, w, b]) t.grad!.free(), t.free();
    tape.reset();
  });
});

Deno.test("autograd: linearGlu is matmul and GLU to the bit, its bias gradient from the GLU backward's column sums", async () => {
  await withBackend(2, (be) => {
    const [B, T, K, D] = [2, 70, 5, 4]; // 140 rows: three chunks of the column sums
    const xv = randn(B * T * K, 101), wv = randn(2 * D * K, 102, 0.5), bv = randn(2 * D, 103);
    const rv = randn(B * T * D, 104);
    const tape = new Tape();
    const x = Tensor.param(be, [B, T, K], xv), w = Tensor.param(be, [2 * D, K], wv);
    const b = Tensor.param(be, [2 * D], bv);
    const y = ag.linearGlu(tape, x, w, b);
    const v = ops.matmul(Tensor.from(be, [B, T, K], xv), Tensor.from(be, [2 * D, K], wv), {
      transB: true,
      bias: Tensor.from(be, [2 * D], bv),
    });
    assertSameBits("forward", y.toArray(), glu(v).toArray());
    tape.backward(ag.sum(tape, ag.mul(tape, y, Tensor.from(be, [B, T, D], rv))));
    const dv = gluBackward(v, Tensor.from(be, [B, T, D], rv)), d = dv.toArray();
    assertSameBits(
      "dx",
      x.grad!.toArray(),
      ops.matmul(dv, Tensor.from(be, [2 * D, K], wv)).toArray(),
    );
    const dw = ops.matmul(dv.reshape([B * T, 2 * D]), Tensor.from(be, [B * T, K], xv), {
      transA: true,
    });
    assertSameBits("dW", w.grad!.toArray(), dw.toArray());
    const zero = new Float32Array(2 * D);
    const db = chunkSumsInOrder((i, j) => d[i * 2 * D + j], B * T, 2 * D, zero);
    assertSameBits("db", b.grad!.toArray(), db);
    for (const t of [x, w, b]) t.grad!.free(), t.free();
    tape.reset();
  });
});

Deno.test("autograd: the residual + LayerNorm nodes give the gradients of the ops in sequence, bit for bit", async () => {
  // ag.addLayerNorm against ag.add then ag.layerNorm, and ag.linearDropoutAdd with a norm against
  // the same node without one then ag.layerNorm: loss on both the sum and its norm (the sum feeds
  // the next residual as well), every gradient compared bitwise.
  await withBackend(2, (be) => {
    const [B, T, K, D] = [2, 70, 9, 6];
    const data = (n: number, seed: number, std = 1, mean = 0) => randn(n, seed, std, mean);
    const av = data(B * T * D, 1), bv = data(B * T * D, 2), hv = data(B * T * K, 3);
    const wv = data(D * K, 4, 0.5), biasv = data(D, 5), gv = data(D, 6, 0.2, 1), betav = data(D, 7);
    const r1 = data(B * T * D, 8), r2 = data(B * T * D, 9);
    const o = { p: 0.2, seed: 4, stream: 12 };
    const run = (fused: boolean, linear: boolean) => {
      const tape = new Tape();
      const a = Tensor.param(be, [B, T, D], av), b = Tensor.param(be, [B, T, D], bv);
      const h = Tensor.param(be, [B, T, K], hv), w = Tensor.param(be, [D, K], wv);
      const bias = Tensor.param(be, [D], biasv), g = Tensor.param(be, [D], gv);
      const beta = Tensor.param(be, [D], betav);
      const n = { gamma: g, beta, eps: 1e-5, dtype: "f32" as const };
      let sum: Tensor, normed: Tensor;
      if (linear) {
        const r = ag.linearDropoutAdd(tape, a, h, w, bias, 0.5, o, fused ? n : null);
        sum = r.sum;
        normed = r.normed ?? ag.layerNorm(tape, sum, g, beta, 1e-5);
      } else if (fused) ({ sum, normed } = ag.addLayerNorm(tape, a, b, n));
      else {
        sum = ag.add(tape, a, b);
        normed = ag.layerNorm(tape, sum, g, beta, 1e-5);
      }
      const loss = ag.add(
        tape,
        ag.sum(tape, ag.mul(tape, sum, Tensor.from(be, [B, T, D], r1))),
        ag.sum(tape, ag.mul(tape, normed, Tensor.from(be, [B, T, D], r2))),
      );
      const forward = [sum.toArray(), normed.toArray()]; // the tape frees them in backward
      tape.backward(loss);
      const params = linear ? [a, h, w, bias, g, beta] : [a, b, g, beta];
      const out = [...forward, ...params.map((p) => p.grad!.toArray())];
      tape.reset();
      be.resetStep();
      for (const p of params) p.grad!.free(), p.free();
      return out;
    };
    for (const linear of [false, true]) {
      const seq = run(false, linear), fused = run(true, linear);
      seq.forEach((v, i) =>
        assertSameBits(`${linear ? "linearDropoutAdd" : "add"} + norm [${i}]`, fused[i], v)
      );
    }
  });
});
