/**
 * bf16: the pack/unpack kernels and the matmul's bf16 mode against references written
 * independently of the kernels' bit trick (rounding in float64 arithmetic: keep 8 significant bits,
 * ties to even). Packing is exact (no tolerance); the bf16 matmul is a float32 sum of exact
 * products of rounded inputs, so the usual (k + 2) U bound of a float32 dot product applies.
 */
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { packBf16, unpackBf16 } from "../../src/tensor/bf16.ts";
import { add, matmul } from "../../src/tensor/ops.ts";
import { ShapeError, Tensor } from "../../src/tensor/tensor.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

/** Round to nearest bf16, ties to even, in float64: 8 significant bits above the subnormal floor. */
export function bf16Ref(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -126);
  // log2 may land one off near powers of two: fix the exponent so that 2^e <= |x| < 2^(e+1).
  let ee = e;
  if (Math.abs(x) < 2 ** ee && ee > -126) ee--;
  if (Math.abs(x) >= 2 ** (ee + 1)) ee++;
  const q = x * 2 ** (7 - ee), fl = Math.floor(q), frac = q - fl;
  const r = frac > 0.5 || (frac === 0.5 && fl % 2 !== 0) ? fl + 1 : fl;
  const out = r * 2 ** (ee - 7);
  return Math.abs(out) > 0x1fe * 2 ** 119 ? Math.sign(x) * Infinity : out; // past bf16's max
}

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
