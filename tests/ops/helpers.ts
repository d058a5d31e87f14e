/** Shared by the op tests: seeded random inputs, the error check, backend setup. */
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { CHUNK_ROWS } from "../../src/tensor/chunk_sums.ts";

/** Unit roundoff of float32: round-to-nearest has relative error at most U. */
export const U = 2 ** -24;

/** mulberry32: a small seeded PRNG, so every failure reproduces. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n float32 values ~ mean + std N(0, 1) (Box-Muller), never exactly zero. */
export function randn(n: number, seed: number, std = 1, mean = 0): Float32Array {
  const r = rng(seed), out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    while (v === 0) {
      const u1 = 1 - r(), u2 = r();
      v = Math.fround(mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }
    out[i] = v;
  }
  return out;
}

/**
 * Fails unless |actual - expected| <= tol * mag elementwise (mag from the reference: the scale
 * of the terms of each element), naming the worst element. Also fails on NaN and on length
 * mismatch, so a kernel that writes nothing cannot pass.
 */
export function assertWithin(
  what: string,
  actual: ArrayLike<number>,
  expected: { y: ArrayLike<number>; mag: ArrayLike<number> },
  tol: number,
): void {
  if (actual.length !== expected.y.length) {
    throw new Error(`${what}: ${actual.length} values, expected ${expected.y.length}`);
  }
  let worst = -1, worstRatio = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected.y[i]);
    const allowed = tol * expected.mag[i] + Number.MIN_VALUE;
    const ratio = err / allowed;
    if (!(ratio <= 1)) {
      if (Number.isNaN(ratio) || ratio > worstRatio) {
        worst = i;
        worstRatio = Number.isNaN(ratio) ? Infinity : ratio;
      }
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: element ${worst} is ${actual[worst]}, reference ${expected.y[worst]} ` +
        `(error ${Math.abs(actual[worst] - expected.y[worst]).toExponential(2)} is ` +
        `${worstRatio.toFixed(1)}x the allowed ${(tol * expected.mag[worst]).toExponential(2)})`,
    );
  }
}

const backends = new Map<number, Promise<WasmBackend>>();

/**
 * Runs `fn` on this test file's backend of `threads` threads, which splits every call it can
 * (minWorkPerThread 1). One backend per file and thread count: starting workers costs ~0.7 s
 * (the worker module is type-checked), so they are started once and closed when the file ends.
 */
export async function withBackend(
  threads: number,
  fn: (backend: WasmBackend) => void | Promise<void>,
): Promise<void> {
  let backend = backends.get(threads);
  if (!backend) {
    backend = WasmBackend.create({ threads, minWorkPerThread: 1 });
    backends.set(threads, backend);
    const created = backend;
    globalThis.addEventListener("unload", () => created.then((b) => b.close()));
  }
  const be = await backend;
  try {
    await fn(be);
  } finally {
    be.resetStep();
  }
}

/**
 * Column sums of term(r, j) over rows in the order the op table fixes for kernels that sum on the
 * side (src/tensor/chunk_sums.ts), in float32 (each add rounded): per chunk of CHUNK_ROWS rows, 8
 * groups of consecutive rows each summed from 0 in row order, then added from 0 in group order;
 * then the chunks in order onto init (sum_rows).
 */
export function chunkSumsInOrder(
  term: (r: number, j: number) => number,
  rows: number,
  cols: number,
  init: Float32Array,
): Float32Array {
  const f = Math.fround, out = init.slice(), group = CHUNK_ROWS / 8;
  for (let c = 0; c * CHUNK_ROWS < rows; c++) {
    for (let j = 0; j < cols; j++) {
      let chunk = 0;
      for (let g = 0; g < 8; g++) {
        let sum = 0;
        const r0 = c * CHUNK_ROWS + g * group;
        for (let r = r0; r < Math.min(r0 + group, rows); r++) sum = f(sum + term(r, j));
        chunk = f(chunk + sum);
      }
      out[j] = f(out[j] + chunk);
    }
  }
  return out;
}

/** Throws at the first element whose float32 bits differ (-0 and +0 differ too). */
export function assertSameBits(what: string, a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} vs ${b.length} elements`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

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
