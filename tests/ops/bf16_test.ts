/**
 * bf16: the pack/unpack kernels and the matmul's bf16 mode against references written
 * independently of the kernels' bit trick (rounding in float64 arithmetic: keep 8 significant bits,
 * ties to even). Packing is exact (no tolerance); the bf16 matmul is a float32 sum of exact
 * products of rounded inputs, so the usual (k + 2) U bound of a float32 dot product applies.
 */
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { ObservedBackend } from "../../src/tensor/observed_backend.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import * as ag from "../../src/tensor/autograd_ops.ts";
import { packBf16, unpackBf16 } from "../../src/tensor/bf16.ts";
import { add, gelu, layerNorm, matmul, silu } from "../../src/tensor/ops.ts";
import {
  dropout,
  geluDropout,
  geluDropoutBackward,
  scaleDropout,
} from "../../src/tensor/dropout.ts";
import { swapAxes } from "../../src/tensor/layout_ops.ts";
import { gluBackward } from "../../src/tensor/conv_ops.ts";
import type { ColumnSums } from "../../src/tensor/chunk_sums.ts";
import { type DType, ShapeError, Tensor } from "../../src/tensor/tensor.ts";
import { assertWithin, bf16Ref, randn, U, withBackend } from "./helpers.ts";

const SPECIAL = [
  1 + 2 ** -8, // a tie: rounds down to even (1)
  1 + 3 * 2 ** -8, // a tie: rounds up to even
  1 + 2 ** -8 + 2 ** -20, // just above a tie: up
  -(1 + 2 ** -7 + 2 ** -8), // negative tie to even
  2 ** -130, // subnormal
  3.3e38, // rounds to infinity
  Infinity,
  -0,
  NaN,
  Math.fround(1.17549435e-38), // smallest normal
];

Deno.test("bf16_pack / bf16_unpack: nearest even, exact widening, NaN stays NaN", async () => {
  for (const threads of [1, 2]) {
    await withBackend(threads, (be) => {
      const data = randn(2 * 1031, 5, 3);
      data.set(SPECIAL);
      const x = Tensor.from(be, [data.length], data);
      const y = unpackBf16(packBf16(x)).toArray();
      for (let i = 0; i < data.length; i++) {
        const want = bf16Ref(data[i]);
        const ok = Number.isNaN(want) ? Number.isNaN(y[i]) : Object.is(y[i], Math.fround(want));
        if (!ok) {
          throw new Error(`${threads} threads, element ${i}: ${data[i]} -> ${y[i]}, want ${want}`);
        }
      }
      if (x.toArray().some((v, i) => !Object.is(v, data[i]) && !Number.isNaN(v))) {
        throw new Error("packing changed its input");
      }
    });
  }
});

Deno.test("bf16_pack: an odd element count is refused", async () => {
  await withBackend(1, (be) => {
    try {
      packBf16(Tensor.from(be, [3], [1, 2, 3]));
    } catch (e) {
      if (e instanceof RangeError) return;
      throw e;
    }
    throw new Error("no error");
  });
});

Deno.test("matmul in bf16 mode: float32 sums of the bf16-rounded inputs' products, any threads", async () => {
  const results: Float32Array[] = [];
  for (const threads of [1, 2]) {
    const be = await WasmBackend.create({ threads, minWorkPerThread: 1 });
    try {
      be.setMatmulPrecision("bf16");
      const [m, n, k] = [37, 70, 300];
      const av = randn(m * k, 1), bv = randn(n * k, 2), bias = randn(n, 3);
      const c = matmul(Tensor.from(be, [m, k], av), Tensor.from(be, [n, k], bv), {
        transB: true,
        bias: Tensor.from(be, [n], bias),
      }).toArray();
      const y = new Float64Array(m * n), mag = new Float64Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0, g = 0;
          for (let t = 0; t < k; t++) {
            const p = bf16Ref(av[i * k + t]) * bf16Ref(bv[j * k + t]);
            s += p, g += Math.abs(p);
          }
          y[i * n + j] = s + bias[j], mag[i * n + j] = g + Math.abs(bias[j]);
        }
      }
      assertWithin(`bf16 matmul, ${threads} threads`, c, { y, mag }, (k + 2) * U);
      // Not the fp32 product: the rounding is really applied (fp32 differs by ~2^-9 relative).
      be.setMatmulPrecision("fp32");
      const f = matmul(Tensor.from(be, [m, k], av), Tensor.from(be, [n, k], bv), { transB: true })
        .toArray();
      if (f.every((v, i) => v === c[i] - bias[i % n])) throw new Error("bf16 mode changed nothing");
      results.push(c);
    } finally {
      be.close();
    }
  }
  if (results[0].some((v, i) => !Object.is(v, results[1][i]))) {
    throw new Error("bf16 matmul differs between 1 and 2 threads");
  }
});

Deno.test("matmul reads packed bf16 operands: the bits of the float32 originals in bf16 mode", async () => {
  // Every transpose, a batched and a shared operand, m not a multiple of the 4-row split unit,
  // odd leading dimensions (element offsets of a thread's rows fall mid-slot only if the split
  // is wrong): packing A, B or both must not change one bit of C, for 1 and 3 threads.
  const shapes = [
    { batch: 0, m: 37, n: 70, k: 33 }, // 2-D: odd k, so odd lda / ldb when not transposed
    { batch: 3, m: 13, n: 9, k: 41 }, // batched A and B
    { batch: 2, m: 22, n: 31, k: 19 }, // batched A, shared B (a Linear's weight)
  ];
  for (const threads of [1, 3]) {
    const be = await WasmBackend.create({ threads, minWorkPerThread: 1 });
    try {
      be.setMatmulPrecision("bf16");
      let seed = 10;
      for (const { batch, m, n, k } of shapes) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const lead = batch > 0 ? [batch] : [];
            const aShape = [...lead, ...(transA ? [k, m] : [m, k])];
            const bShape = [...(batch === 3 ? lead : []), ...(transB ? [n, k] : [k, n])];
            const a = Tensor.from(be, aShape, randn(aShape.reduce((x, y) => x * y), seed++));
            const b = Tensor.from(be, bShape, randn(bShape.reduce((x, y) => x * y), seed++));
            const bias = Tensor.from(be, [n], randn(n, seed++));
            const o = { transA, transB, bias };
            const want = matmul(a, b, o).toArray();
            const pa = a.size % 2 === 0 ? packBf16(a) : null,
              pb = b.size % 2 === 0 ? packBf16(b) : null;
            for (const [x, y, what] of [[pa, b, "A"], [a, pb, "B"], [pa, pb, "A and B"]] as const) {
              if (!x || !y) continue;
              const got = matmul(x, y, o).toArray();
              const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
              if (bad >= 0) {
                throw new Error(
                  `${threads} threads, [${aShape}] x [${bShape}] transA ${transA} transB ${transB}, ` +
                    `packed ${what}: element ${bad} is ${got[bad]}, want ${want[bad]}`,
                );
              }
            }
          }
        }
      }
      // A packed operand outside bf16 mode, or given to an op that reads float32, is refused.
      const x = Tensor.from(be, [4, 6], randn(24, 99));
      const px = packBf16(x);
      be.setMatmulPrecision("fp32");
      for (const f of [() => matmul(px, x, { transB: true }), () => add(px, px)]) {
        try {
          f();
        } catch (e) {
          if (e instanceof ShapeError && /bf16/.test(e.message)) continue;
          throw e;
        }
        throw new Error("a packed operand was accepted");
      }
    } finally {
      be.close();
    }
  }
});

Deno.test("bf16 outputs (LayerNorm, GELU + dropout, GELU, SiLU, the column-summing backward ops): the float32 output's bf16 rounding, any threads", async () => {
  // The packed output must be exactly bf16_pack of the float32 output, whatever the thread split
  // (3 threads: parts start mid-tensor, where a wrong slot offset would show) and with a tail of
  // n % 4 elements for the elementwise op.
  for (const threads of [1, 3]) {
    const be = await WasmBackend.create({ threads, minWorkPerThread: 1 });
    try {
      const same = (what: string, got: Tensor, want: Tensor) => {
        if (got.dtype !== "bf16") throw new Error(`${what}: dtype ${got.dtype}`);
        const g = got.toArray(), w = want.toArray().map(bf16Ref);
        const bad = g.findIndex((v, i) => !Object.is(v, w[i]));
        if (bad >= 0) {
          throw new Error(`${threads} threads, ${what}: element ${bad} ${g[bad]} vs ${w[bad]}`);
        }
      };
      for (const [rows, cols] of [[37, 144], [5, 6], [64, 512]]) {
        const x = Tensor.from(be, [rows, cols], randn(rows * cols, rows, 3, 0.5));
        const gamma = Tensor.from(be, [cols], randn(cols, 7, 0.3, 1));
        const beta = Tensor.from(be, [cols], randn(cols, 8, 0.2));
        const f = layerNorm(x, gamma, beta, 1e-5), b = layerNorm(x, gamma, beta, 1e-5, "bf16");
        same(`layerNorm ${rows} x ${cols}`, b.y, f.y);
        for (const k of ["mean", "rstd"] as const) {
          if (f[k].toArray().some((v, i) => !Object.is(v, b[k].toArray()[i]))) {
            throw new Error(`layerNorm ${k} changed with a bf16 y`);
          }
        }
      }
      for (const n of [4102, 18, 7]) {
        const x = Tensor.from(be, [n], randn(n, n, 2));
        const o = { p: 0.1, seed: 5, stream: 9 };
        same(`geluDropout n ${n}`, geluDropout(x, o, "bf16"), geluDropout(x, o));
        same(`gelu n ${n}`, gelu(x, undefined, "bf16"), gelu(x));
        same(`silu n ${n}`, silu(x, undefined, "bf16"), silu(x));
        same(`dropout n ${n}`, dropout(x, o, "bf16"), dropout(x, o));
      }
      // attention's heads: (B, T, H, dh) -> (B, H, T, dh), split over the batch
      const h = Tensor.from(be, [3, 5, 4, 6], randn(360, 77));
      same("swapAxes heads", swapAxes(h, 1, "bf16"), swapAxes(h, 1));
      // the chunk-summing backward ops: dx packed, its column sums those of the float32 values
      for (const [rows, cols] of [[37, 144], [130, 6]]) {
        const x = Tensor.from(be, [rows, cols], randn(rows * cols, rows + 1, 2));
        const dy = Tensor.from(be, [rows, cols], randn(rows * cols, rows + 2));
        const o = { p: 0.1, seed: 3, stream: 4 };
        const bits = (what: string, a: Tensor, b: Tensor) => {
          const u = a.toArray(), v = b.toArray();
          if (u.some((e, i) => !Object.is(e, v[i]))) throw new Error(`${threads} threads, ${what}`);
        };
        const run = (f: (s: ColumnSums, dt: DType) => Tensor, width: number, what: string) => {
          const s32 = { out: Tensor.from(be, [width], new Float32Array(width)), accumulate: false };
          const s16 = { out: Tensor.from(be, [width], new Float32Array(width)), accumulate: false };
          same(`${what} ${rows} x ${cols}`, f(s16, "bf16"), f(s32, "f32"));
          bits(`${what} column sums`, s16.out, s32.out);
        };
        run((s, dt) => geluDropoutBackward(x, dy, o, s, dt), cols, "geluDropoutBackward");
        run((s, dt) => scaleDropout(dy, 0.5, o, s, dt), cols, "scaleDropout");
        const half = cols / 2, dg = Tensor.from(be, [rows, half], randn(rows * half, rows + 3));
        run((s, dt) => gluBackward(x, dg, s, dt), cols, "gluBackward");
      }
      try {
        layerNorm(
          Tensor.from(be, [2, 3], randn(6, 1)),
          Tensor.from(be, [3], [1, 1, 1]),
          Tensor.from(be, [3], [0, 0, 0]),
          1e-5,
          "bf16",
        );
        throw new Error("an odd row length was accepted for a bf16 LayerNorm output");
      } catch (e) {
        if (!(e instanceof ShapeError)) throw e;
      }
    } finally {
      be.close();
    }
  }
});

Deno.test("bf16 mode: products that save the same activation share one packed copy", async () => {
  // The encoder's output feeds every decoder layer's K and V projections: one bf16_pack for the
  // three products here, and the gradients those of unpacked saved operands, bit for bit.
  const be = await WasmBackend.create({ threads: 1 });
  try {
    be.setMatmulPrecision("bf16");
    let packs = 0;
    const obs = new ObservedBackend(be, (name) => {
      if (name === "bf16_pack") packs++;
    });
    const x0 = Tensor.param(obs, [6, 8], randn(48, 2));
    const ws = [3, 4, 5].map((s) => Tensor.param(obs, [5, 8], randn(40, s)));
    const run = (packSaved: boolean) => {
      const tape = new Tape();
      tape.packSaved = packSaved;
      const act = ag.add(tape, x0, Tensor.from(obs, [6, 8], randn(48, 1))); // a step activation
      packs = 0;
      const ys = ws.map((w) => ag.matmul(tape, act, w, { transB: true }));
      const forwardPacks = packs;
      tape.backward(ag.add(tape, ag.add(tape, ys[0], ys[1]), ys[2]));
      const grads = [x0, ...ws].map((p) => {
        const g = p.grad!.toArray();
        p.grad = null;
        return g;
      });
      tape.reset();
      obs.resetStep();
      return { forwardPacks, grads };
    };
    const shared = run(true), plain = run(false);
    if (shared.forwardPacks !== 1) {
      throw new Error(`3 products saving one activation packed it ${shared.forwardPacks} times`);
    }
    shared.grads.forEach((g, k) => {
      if (g.some((v, i) => !Object.is(v, plain.grads[k][i]))) {
        throw new Error(`gradient ${k} differs`);
      }
    });
  } finally {
    be.close();
  }
});

Deno.test("matmul's GELU + dropout epilogue: the bits of gelu_dropout_forward on C, any threads", async () => {
  // 37 rows split over 3 threads: each part's row0 must place its dropout mask; y float32 and
  // packed bf16; a batched product is refused.
  for (const threads of [1, 3]) {
    const be = await WasmBackend.create({ threads, minWorkPerThread: 1 });
    try {
      for (const precision of ["fp32", "bf16"] as const) {
        be.setMatmulPrecision(precision);
        const [m, k, n] = [37, 20, 34];
        const x = Tensor.from(be, [m, k], randn(m * k, 1));
        const w = Tensor.from(be, [n, k], randn(n * k, 2, 0.3));
        const b = Tensor.from(be, [n], randn(n, 3, 0.1));
        const dropout = { p: 0.2, seed: 11, stream: 5 };
        for (const dtype of ["f32", "bf16"] as const) {
          const y = Tensor.empty(be, [m, n], "step", dtype);
          const c = matmul(x, w, { transB: true, bias: b, geluDropout: { dropout, y } });
          const c2 = matmul(x, w, { transB: true, bias: b });
          const what = `${threads} threads, ${precision}, y ${dtype}`;
          if (c.toArray().some((v, i) => !Object.is(v, c2.toArray()[i]))) {
            throw new Error(`${what}: C`);
          }
          const want = geluDropout(c2, dropout, dtype).toArray(), got = y.toArray();
          const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
          if (bad >= 0) throw new Error(`${what}: y[${bad}] ${got[bad]}, want ${want[bad]}`);
        }
      }
      const x3 = Tensor.from(be, [2, 3, 4], randn(24, 4)),
        w3 = Tensor.from(be, [5, 4], randn(20, 5));
      const y = Tensor.empty(be, [2, 3, 5]);
      const opts = { transB: true, geluDropout: { dropout: { p: 0.1, seed: 1, stream: 1 }, y } };
      if (!threw(() => matmul(x3, w3, opts))) throw new Error("a batched epilogue was accepted");
    } finally {
      be.close();
    }
  }
});

function threw(f: () => unknown): boolean {
  try {
    f();
  } catch (e) {
    if (e instanceof ShapeError) return true;
    throw e;
  }
  return false;
}
