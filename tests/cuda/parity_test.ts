/**
 * The parity suite: every op of ffi/ops.ts run through the TypeScript op functions (the code the
 * model calls) on two backends with the same random inputs, results downloaded and compared with
 * a bound documented per op; then one training step of a tiny AsrModel on each backend.
 *
 *   reference: WasmBackend (the semantic reference, wasm/*.c)
 *   candidate: chosen by CONMAMBA_PARITY_BACKEND
 *     cuda  (default)  CudaBackend (build/libconmamba_cuda.so, `make cuda`), fp32 bounds below
 *     wasm2            WasmBackend with 2 threads and every call split (minWorkPerThread 1),
 *                      against a 1-thread reference: the Wasm kernels promise results bitwise
 *                      independent of the thread split, so every comparison is exact. This runs
 *                      the whole harness (cases, coverage, comparison, report) without a GPU:
 *                      CONMAMBA_PARITY_BACKEND=wasm2 deno test -A tests/cuda/parity_test.ts
 *   CONMAMBA_PARITY_PRECISION=bf16  both backends' matmuls round their inputs to bf16 (the
 *                      recipe's mixed precision: setMatmulPrecision("bf16"); CUDA on tensor
 *                      cores), so the products compare bf16 against bf16; the training step
 *                      also keeps its saved matmul operands packed in bf16; default fp32.
 *   CONMAMBA_PARITY_CUBLAS=1        the CUDA matmul goes through cuBLAS (loaded at run time) in
 *                      that precision; where no cuBLAS loads, our kernel runs (the log says).
 *   CONMAMBA_PARITY_REPORT=path     also writes the table of measured errors (markdown) there.
 *
 * Where CUDA cannot run (no library, no driver, no GPU) the CUDA tests are registered with
 * `ignore: true` and the reason is printed once, so CI shows them as ignored, not passed. The
 * coverage check (every op of the table has a case) never needs a GPU.
 *
 * Shapes are the models' (hparams/conmamba_small.yaml: d 144, d_ffn 1024, 4 heads, Mamba
 * Di 288, dt_rank 9, d_state 16, CNN [64, 32] channels on 80 mels, conv kernel 31, vocab 5000,
 * n_fft 400; hparams/conmamba_large.yaml: d 512, d_ffn 2048, 8 heads, Di 1024, dt_rank 32,
 * n_fft 512) at short utterances (B 2, ~100 encoder frames) plus awkward sizes (odd, 1, not a
 * multiple of 4 or of a tile).
 */
import assert from "node:assert/strict";
import { OPS } from "../../ffi/ops.ts";
import { Fbank, fbankSettings } from "../../src/audio/fbank.ts";
import { Resampler } from "../../src/audio/speed_perturb.ts";
import { AsrModel } from "../../src/nn/asr_model.ts";
import { initialize, Rng } from "../../src/nn/init.ts";
import { InputNormalization } from "../../src/audio/input_normalization.ts";
import {
  attnSoftmax,
  attnSoftmaxBackward,
  relShift,
  relShiftBackward,
} from "../../src/tensor/attention_ops.ts";
import type { Backend } from "../../src/tensor/backend.ts";
import { type ColView, colView } from "../../src/tensor/col_view.ts";
import {
  conv2d,
  conv2dBackward,
  exp,
  glu,
  gluBackward,
  leakyRelu,
  leakyReluBackward,
} from "../../src/tensor/conv_ops.ts";
import { CudaBackend } from "../../src/tensor/cuda_backend.ts";
import { packBf16, unpackBf16 } from "../../src/tensor/bf16.ts";
import {
  dropout,
  dropoutAdd,
  dropoutBackward,
  geluDropout,
  geluDropoutBackward,
  leakyReluDropout,
  leakyReluDropoutBackward,
  scaleDropout,
} from "../../src/tensor/dropout.ts";
import {
  concatTime,
  embedding,
  embeddingBackward,
  full,
  maskedFillTime,
  sliceTime,
  sliceTimeBackward,
  swapAxes,
} from "../../src/tensor/layout_ops.ts";
import { ctcLoss, smoothedNll } from "../../src/tensor/loss_ops.ts";
import {
  conv1dDepthwise,
  conv1dDepthwiseBackward,
  flipTime,
  selectiveScan,
  selectiveScanBackward,
} from "../../src/tensor/mamba_ops.ts";
import {
  add,
  addLayerNorm,
  gelu,
  geluBackward,
  layerNorm,
  layerNormBackward,
  logSoftmax,
  logSoftmaxBackward,
  matmul,
  matmulBackward,
  mul,
  scale,
  silu,
  siluBackward,
  softmax,
  softmaxBackward,
  sumRows,
} from "../../src/tensor/ops.ts";
import { adamStep, sumSquares } from "../../src/tensor/optimizer_ops.ts";
import { maxLast, meanAxis, sumAxis, sumAxisBackward } from "../../src/tensor/reduce_ops.ts";
import { type DType, Tensor } from "../../src/tensor/tensor.ts";
import type { ColumnSums } from "../../src/tensor/chunk_sums.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import type { Batch } from "../../src/train/batches.ts";
import { AsrTrainer } from "../../src/train/step.ts";
import { randn, rng } from "../ops/helpers.ts";
import { ObservedBackend } from "../../src/tensor/observed_backend.ts";
import { patternedBatch, tokenPatterns } from "../fixtures/patterned_batch.ts";

// ---- configuration -------------------------------------------------------------------------

const MODE = (Deno.env.get("CONMAMBA_PARITY_BACKEND") ?? "cuda").toLowerCase();
if (MODE !== "cuda" && MODE !== "wasm2") {
  throw new Error(`CONMAMBA_PARITY_BACKEND must be "cuda" or "wasm2", got "${MODE}"`);
}
const PRECISION = (Deno.env.get("CONMAMBA_PARITY_PRECISION") ?? "fp32").toLowerCase();
if (PRECISION !== "fp32" && PRECISION !== "bf16") {
  throw new Error(`CONMAMBA_PARITY_PRECISION must be "fp32" or "bf16", got "${PRECISION}"`);
}
/** wasm2: the thread split must not change a single bit, so every bound becomes "exact". */
const ALL_EXACT = MODE === "wasm2";

let skipReason: string | null = null;
if (MODE === "cuda") {
  skipReason = CudaBackend.unavailableReason();
  if (skipReason !== null) {
    console.warn(
      `parity suite: CUDA unavailable (${skipReason}); its tests are ignored. ` +
        "Run CONMAMBA_PARITY_BACKEND=wasm2 to exercise the harness without a GPU.",
    );
  }
}
const IGNORE = skipReason !== null;

// ---- a backend that records which ops it ran -----------------------------------------------

/** Delegates to a backend and records the name of every op run (to check the cases' `ops`). */
class Recording extends ObservedBackend {
  readonly ran = new Set<string>();
  constructor(inner: Backend) {
    super(inner, (name) => this.ran.add(name));
  }
}

async function openBackends(): Promise<{ ref: Recording; cand: Recording }> {
  if (MODE === "wasm2") {
    const ref = await WasmBackend.create({ threads: 1 });
    const cand = await WasmBackend.create({ threads: 2, minWorkPerThread: 1 });
    if (PRECISION === "bf16") { for (const be of [ref, cand]) be.setMatmulPrecision("bf16"); }
    return { ref: new Recording(ref), cand: new Recording(cand) };
  }
  // Wasm results do not depend on the thread count, so the reference may use several.
  const ref = await WasmBackend.create({
    threads: Math.max(1, Math.min(8, navigator.hardwareConcurrency)),
  });
  if (PRECISION === "bf16") ref.setMatmulPrecision("bf16");
  return { ref: new Recording(ref), cand: new Recording(CudaBackend.open()) };
}

const pair = IGNORE ? null : await openBackends();
if (pair) {
  let label = "2 threads";
  if (pair.cand.inner instanceof CudaBackend) {
    const cuda = pair.cand.inner;
    const cublas = Deno.env.get("CONMAMBA_PARITY_CUBLAS") === "1";
    if (PRECISION === "bf16" || cublas) {
      cuda.setMatmulPrecision(PRECISION === "bf16" ? "bf16" : "fp32", { cublas });
    }
    const mm = cuda.matmulMode();
    label = `${cuda.deviceName}; matmul ${mm.precision} ${mm.library}` +
      (cublas ? `, cuBLAS ${cuda.cublasVersion() || "not found"}` : "");
  }
  console.log(`parity suite: ${MODE} (${label}) against Wasm, ${PRECISION} bounds`);
  globalThis.addEventListener("unload", () => {
    pair.ref.close();
    pair.cand.close();
  });
}

// ---- bounds --------------------------------------------------------------------------------

/**
 * What a candidate output must satisfy against the reference (every given condition):
 * exact: the same float32 bits (NaN matches NaN); ulp: |c - r| <= ulp * ulp(r) elementwise;
 * relL2: ||c - r||_2 <= relL2 ||r||_2; maxRel: max |c - r| <= maxRel max |r|. A non-finite
 * value must match exactly in every mode.
 */
interface Bound {
  exact?: boolean;
  ulp?: number;
  relL2?: number;
  maxRel?: number;
}

/*
 * fp32 bounds, by the kind of arithmetic (U = 2^-24 = 6e-8, the float32 unit roundoff):
 *
 * EXACT - data movement (copies, gathers, transposes, flips, shifts, fills, masks, im2col), one
 *   correctly rounded IEEE operation per element (add, mul, scale, leaky_relu, dropout's
 *   x * (1 / (1 - p)) behind a counter-based mask, broadcast's x / divisor), a max and its index,
 *   and sums whose order ffi/ops.ts fixes (embedding_backward: ids in order).
 * ROUNDED_ONCE - float64 kernels rounded once to float32 (fbank, resample): the CUDA kernels
 *   repeat the reference's double operations in its order without FMA contraction, so equal
 *   bits are expected; 2 ulp leave room for a last-bit difference of a double that rounds to
 *   a float32 tie, and no more.
 * TRANSCENDENTAL - exp / erf / sigmoid based elementwise ops: each backend is within a few ulp of
 *   the true value (wasm/mathf.h's series vs CUDA's), so both agree to ~4 ulp per element:
 *   relL2 1e-6 (~16 U), and no element further off than 4e-6 of the largest.
 * ROW_REDUCE - per-row statistics (softmax, log_softmax, LayerNorm, GLU, attention softmax): a
 *   sum over the row in another order (tree vs sequential) adds ~log2(n) U relative to the
 *   row's magnitude on top of the transcendental error: relL2 2e-6.
 * SUMS - column / axis reductions and gradients that sum over many rows (sum_rows, sum_axis,
 *   LayerNorm's dgamma / dbeta, conv1d's dw / dbias, the backward of row-wise ops): a
 *   different summation order over n terms differs by ~sqrt(n) U relative to the sum of |terms|,
 *   more relative to a sum with cancellation: relL2 1e-5.
 * MATMUL - C = A B in fp32 with fp32 accumulation in another blocking order than the
 *   reference's sequential k loop: relL2 ~ sqrt(k) U ~ 3e-6 at k = 2048: relL2 1e-5,
 *   maxRel 1e-5. With bf16 inputs (CONMAMBA_PARITY_PRECISION=bf16) both backends round the
 *   same inputs to the same bf16 values (nearest even) and a product of two bf16 values is exact
 *   in float32, so again only the order of the float32 sums differs; the tensor cores' fp32
 *   accumulation need not round like IEEE adds (the PTX ISA leaves it unspecified), hence 1e-4.
 *   A wrong rounding or a bf16 kernel compared with fp32 products shows as ~3e-3 (2^-9 sqrt 2).
 * SCAN - the selective scan recurrence: per step ~Ns + 6 roundings and an exp whose few-ulp
 *   error differs between backends, forgotten at rate exp(d A) < 1; the backward adds sums
 *   over B T terms (dA, dD, d delta_bias): relL2 1e-5 (the Mamba reference kernels' tests use
 *   1e-5 relative for fp32 too), maxRel 1e-4.
 * LOSS - CTC (float64 forward-backward, same operations and order) and the smoothed NLL (a
 *   float64 row sum, possibly in tree order): float32 results within a few ulp: relL2 1e-6.
 * BF16_STORED - an output written as packed bf16 (y_bf16): each backend's bf16 is its own fp32
 *   value rounded (checked exactly inside the case), and two fp32 values a few ulp apart round
 *   to the same bf16 unless a rounding boundary lies between them, where they end one bf16 step
 *   (at most 2^-8 relative) apart: maxRel 4e-3; such elements are rare: relL2 1e-3.
 */
const EXACT: Bound = { exact: true };
const ROUNDED_ONCE: Bound = { ulp: 2 };
const TRANSCENDENTAL: Bound = { relL2: 1e-6, maxRel: 4e-6 };
const ROW_REDUCE: Bound = { relL2: 2e-6, maxRel: 1e-5 };
const SUMS: Bound = { relL2: 1e-5, maxRel: 1e-5 };
const MATMUL: Bound = PRECISION === "bf16"
  ? { relL2: 1e-4, maxRel: 1e-4 }
  : { relL2: 1e-5, maxRel: 1e-5 };
const SCAN: Bound = { relL2: 1e-5, maxRel: 1e-4 };
const LOSS: Bound = { relL2: 1e-6, maxRel: 2e-6 };
const BF16_STORED: Bound = { relL2: 1e-3, maxRel: 4e-3 };

/**
 * A column-summing backward op run with out_bf16 and without (fresh sums of `width`): the packed
 * output must be the float32 one rounded and the column sums the same bits (or this throws);
 * returns the packed output's values.
 */
function packedWithSums(
  be: Backend,
  what: string,
  width: number,
  f: (sums: ColumnSums, dtype: DType) => Tensor,
): Float32Array {
  const fresh = () => ({
    out: Tensor.from(be, [width], new Float32Array(width)),
    accumulate: false,
  });
  const s32 = fresh(), s16 = fresh();
  const y = bf16Of(what, f(s16, "bf16"), f(s32, "f32"));
  const a = s16.out.toArray(), b = s32.out.toArray();
  const bad = a.findIndex((v, i) => !Object.is(v, b[i]));
  if (bad >= 0) throw new Error(`${what}: column sum ${bad} is ${a[bad]} packed, ${b[bad]} not`);
  return y;
}

/** t's values; t must be packed bf16 and equal `f32`'s values rounded to bf16 (or this throws). */
function bf16Of(what: string, t: Tensor, f32: Tensor): Float32Array {
  if (t.dtype !== "bf16") throw new Error(`${what}: a ${t.dtype} output, not bf16`);
  const got = t.toArray(), want = unpackBf16(packBf16(f32)).toArray();
  const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
  if (bad >= 0) {
    throw new Error(`${what}: element ${bad} is ${got[bad]}, its fp32 rounds to ${want[bad]}`);
  }
  return got;
}

// ---- comparison ----------------------------------------------------------------------------

type Values = Float32Array | readonly number[];
type Outputs = Record<string, Values>;

interface Measured {
  relL2: number;
  maxRel: number;
  ulp: number;
  mismatches: number; // elements whose float32 bits differ
}

/** The spacing of float32 numbers at |x| (2^-149 below the normal range). */
function ulpOf(x: number): number {
  const a = Math.abs(x);
  if (!(a >= 2 ** -126)) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

function measure(ref: Values, cand: Values): Measured & { nonFinite: number } {
  let d2 = 0, r2 = 0, dmax = 0, rmax = 0, ulp = 0, mismatches = 0, nonFinite = 0;
  // float32 outputs are compared by their bits, host-side float64 values (summed losses) by
  // Object.is (which tells -0 from 0 and matches NaN with NaN).
  const rb = ref instanceof Float32Array
    ? new Uint32Array(ref.buffer, ref.byteOffset, ref.length)
    : null;
  const cb = cand instanceof Float32Array
    ? new Uint32Array(cand.buffer, cand.byteOffset, cand.length)
    : null;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i], c = cand[i];
    const same = Number.isNaN(r) ? Number.isNaN(c) : rb && cb ? rb[i] === cb[i] : Object.is(r, c);
    if (!same) mismatches++;
    if (!Number.isFinite(r) || !Number.isFinite(c)) {
      if (!same) nonFinite++;
      continue;
    }
    const d = Math.abs(c - r);
    d2 += d * d;
    r2 += r * r;
    dmax = Math.max(dmax, d);
    rmax = Math.max(rmax, Math.abs(r));
    ulp = Math.max(ulp, d / ulpOf(r));
  }
  const rel = (a: number, b: number) => a === 0 ? 0 : b === 0 ? Infinity : a / b;
  return {
    relL2: rel(Math.sqrt(d2), Math.sqrt(r2)),
    maxRel: rel(dmax, rmax),
    ulp,
    mismatches,
    nonFinite,
  };
}

/** Why `m` breaks `b`, or null when it satisfies it. */
function violation(m: ReturnType<typeof measure>, b: Bound, length: number): string | null {
  if (m.nonFinite > 0) return `${m.nonFinite} non-finite values differ`;
  if (b.exact && m.mismatches > 0) return `${m.mismatches} of ${length} elements differ (exact)`;
  if (b.ulp !== undefined && !(m.ulp <= b.ulp)) return `${m.ulp.toFixed(1)} ulp > ${b.ulp}`;
  if (b.relL2 !== undefined && !(m.relL2 <= b.relL2)) {
    return `relL2 ${m.relL2.toExponential(2)} > ${b.relL2}`;
  }
  if (b.maxRel !== undefined && !(m.maxRel <= b.maxRel)) {
    return `maxRel ${m.maxRel.toExponential(2)} > ${b.maxRel}`;
  }
  return null;
}

const BOUND_KEYS = ["exact", "ulp", "relL2", "maxRel"];
/** A Bound (for every output of a case), as opposed to a map from output names to bounds. */
const isBound = (b: Bound | Record<string, Bound>): b is Bound =>
  Object.keys(b).some((k) => BOUND_KEYS.includes(k));

const describe = (b: Bound) =>
  [
    b.exact ? "exact" : "",
    b.ulp !== undefined ? `<= ${b.ulp} ulp` : "",
    b.relL2 !== undefined ? `relL2 <= ${b.relL2}` : "",
    b.maxRel !== undefined ? `maxRel <= ${b.maxRel}` : "",
  ].filter((s) => s).join(", ");

interface ReportRow {
  test: string;
  output: string;
  m: Measured;
  bound: Bound;
  ok: boolean;
}
const REPORT: ReportRow[] = [];

function compareOutputs(
  test: string,
  ref: Outputs,
  cand: Outputs,
  bounds: Bound | Record<string, Bound>,
): void {
  const failures: string[] = [];
  assert.deepEqual(Object.keys(cand).sort(), Object.keys(ref).sort());
  for (const [name, r] of Object.entries(ref)) {
    const c = cand[name];
    const bound = ALL_EXACT ? EXACT : isBound(bounds) ? bounds : bounds[name];
    if (!bound) throw new Error(`${test}: no bound for output "${name}"`);
    if (r.length !== c.length) {
      failures.push(`${name}: ${c.length} values, reference ${r.length}`);
      continue;
    }
    if (r.length === 0) {
      throw new Error(`${test}: output "${name}" is empty (a case that cannot fail)`);
    }
    const m = measure(r, c);
    const why = violation(m, bound, r.length);
    REPORT.push({ test, output: name, m, bound, ok: why === null });
    if (why) failures.push(`${name}: ${why}`);
  }
  if (failures.length > 0) throw new Error(`${test}:\n  ${failures.join("\n  ")}`);
}

// ---- inputs --------------------------------------------------------------------------------

const t = (be: Backend, shape: number[], data: ArrayLike<number>) =>
  Tensor.from(be, shape, data instanceof Float32Array ? data : Float32Array.from(data));
const n = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
/** Random N(mean, std) tensor of `shape` from `seed` (the same values on every backend). */
const rt = (be: Backend, shape: number[], seed: number, std = 1, mean = 0) =>
  t(be, shape, randn(n(shape), seed, std, mean));
/** Columns [c0, c0 + cols) of a (rows, width) tensor, downloaded. */
function columns(v: ColView): Float32Array {
  const all = v.tensor.toArray(), w = v.tensor.shape[v.tensor.shape.length - 1];
  const rows = all.length / w, out = new Float32Array(rows * v.cols);
  for (let r = 0; r < rows; r++) {
    out.set(all.subarray(r * w + v.col0, r * w + v.col0 + v.cols), r * v.cols);
  }
  return out;
}
/** log_softmax rows of random logits, computed in float64 on the host and rounded. */
function logProbs(rows: number, vocab: number, seed: number, std = 2): Float32Array {
  const x = randn(rows * vocab, seed, std), out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * vocab, (r + 1) * vocab);
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    const lse = m + Math.log(s);
    for (let k = 0; k < vocab; k++) out[r * vocab + k] = row[k] - lse;
  }
  return out;
}
const ids = (count: number, lo: number, hi: number, seed: number) => {
  const r = rng(seed);
  return Array.from({ length: count }, () => lo + Math.floor(r() * (hi - lo)));
};

// ---- the cases -----------------------------------------------------------------------------

interface Case {
  /** "<op family>: <model shape it stands for>" */
  label: string;
  /** The ops of ffi/ops.ts this case exercises (checked against what the backend ran). */
  ops: readonly string[];
  run: (be: Backend) => Outputs;
  bound: Bound | Record<string, Bound>;
}

const SMALL = { d: 144, ffn: 1024, heads: 4, di: 288, dtRank: 9, ns: 16, conv: 31 };
const LARGE = { d: 512, ffn: 2048, heads: 8, di: 1024, dtRank: 32, ns: 16, conv: 31 };
const VOCAB = 5000;

const CASES: Case[] = [];
const addCase = (c: Case) => CASES.push(c);

// -- matmul (+ sum_rows through the bias gradient) --
for (
  const m of [
    // [label, M, K, N, bias]
    ["conmamba_small FFN w1: (2x100, 144) . (1024, 144)^T + b", 200, SMALL.d, SMALL.ffn, true],
    ["conmamba_small CTC head: (2x100, 144) . (5000, 144)^T + b", 200, SMALL.d, VOCAB, true],
    [
      "conmamba_large Mamba in_proj: (2x60, 512) . (2048, 512)^T",
      120,
      LARGE.d,
      2 * LARGE.di,
      false,
    ],
    ["conmamba_large FFN w2: (2x60, 2048) . (512, 2048)^T + b", 120, LARGE.ffn, LARGE.d, true],
    ["conmamba_large decoder seq_lin: (2x26, 512) . (5000, 512)^T + b", 52, LARGE.d, VOCAB, true],
    ["awkward: (37, 19) . (45, 19)^T + b", 37, 19, 45, true],
    ["awkward: (1, 1) . (1, 1)^T", 1, 1, 1, false],
  ] as const
) {
  const [label, M, K, N, bias] = m;
  addCase({
    label: `matmul: ${label}`,
    ops: ["matmul"],
    bound: MATMUL,
    run: (be) => {
      const x = rt(be, [M, K], 1), w = rt(be, [N, K], 2, 1 / Math.sqrt(K));
      const b = bias ? rt(be, [N], 3, 0.1) : null;
      return { y: matmul(x, w, { transB: true, bias: b }).toArray() };
    },
  });
}
addCase({
  label: "matmul backward: conmamba_small FFN w1 (dx, dW = dy^T x, db)",
  ops: ["matmul", "sum_rows"],
  bound: { da: MATMUL, db: MATMUL, dbias: SUMS },
  run: (be) => {
    const x = rt(be, [200, SMALL.d], 4), w = rt(be, [SMALL.ffn, SMALL.d], 5, 0.1);
    const b = rt(be, [SMALL.ffn], 6), dy = rt(be, [200, SMALL.ffn], 7);
    const g = matmulBackward(dy, x, w, { transB: true, bias: b });
    return { da: g.da.toArray(), db: g.db.toArray(), dbias: g.dbias!.toArray() };
  },
});
addCase({
  // k = 4000 rows for a 41 x 288 result: the CUDA backend splits it along k (split_k_plan).
  label: "matmul backward: conmamba_small x_proj weight gradient over 4 x 1000 frames (split-K)",
  ops: ["matmul"],
  bound: { da: MATMUL, db: MATMUL },
  run: (be) => {
    const di = SMALL.di, w = rt(be, [41, di], 19, 0.1);
    const x = rt(be, [4, 1000, di], 20), dy = rt(be, [4, 1000, 41], 21);
    const g = matmulBackward(dy, x, w, { transB: true });
    return { da: g.da.toArray(), db: g.db.toArray() };
  },
});
addCase({
  label: "matmul long k: (41, 4100) . (4100, 72) + bias, accumulated into C (split-K, remainder)",
  ops: ["matmul"],
  bound: MATMUL,
  run: (be) => {
    const a = rt(be, [41, 4100], 22), b = rt(be, [4100, 72], 23, 1 / 64);
    const out = rt(be, [41, 72], 24), bias = rt(be, [72], 25);
    matmul(a, b, { bias, accumulate: true, out });
    return { c: out.toArray() };
  },
});
addCase({
  label: "matmul batched: conmamba_large decoder attention scores (2x8, 26, 64) . (2x8, 100, 64)^T",
  ops: ["matmul"],
  bound: MATMUL,
  run: (be) => {
    const q = rt(be, [16, 26, 64], 8), k = rt(be, [16, 100, 64], 9);
    return { y: matmul(q, k, { transB: true }).toArray() };
  },
});
addCase({
  label: "matmul batched: attention context (2x4, 100, 100) . (2x4, 100, 36), transA grad",
  ops: ["matmul"],
  bound: MATMUL,
  run: (be) => {
    const p = rt(be, [8, 100, 100], 10, 0.1), v = rt(be, [8, 100, 36], 11);
    const dy = rt(be, [8, 100, 36], 12);
    const y = matmul(p, v);
    const g = matmulBackward(dy, p, v);
    return { y: y.toArray(), da: g.da.toArray(), db: g.db.toArray() };
  },
});
addCase({
  label: "matmul awkward: batch 3 x (13, 7) shared (7, 9) weight, transA, accumulate",
  ops: ["matmul", "sum_rows"],
  bound: MATMUL,
  run: (be) => {
    const a = rt(be, [3, 7, 13], 13), w = rt(be, [7, 9], 14);
    const out = rt(be, [3, 13, 9], 15);
    matmul(a, w, { transA: true, accumulate: true, out });
    const g = matmulBackward(rt(be, [3, 13, 9], 16), a, w, { transA: true });
    return { c: out.toArray(), da: g.da.toArray(), db: g.db.toArray() };
  },
});
// The GELU + dropout epilogue (the FFN's first Linear): within a backend y must be the bits of
// gelu_dropout_forward on the product's own C (our tensor-core kernel folds it into its tiles, the
// other paths run that kernel after the product); across backends C within MATMUL, and y, a
// smooth function of C behind the same mask, within MATMUL too (float32) or BF16_STORED (packed).
for (
  const [label, M, K, N] of [
    ["conmamba_large FFN w1 (2 x 500, 512) -> 2048", 1000, LARGE.d, LARGE.ffn],
    ["awkward (37, 19) -> 45", 37, 19, 45],
  ] as const
) {
  addCase({
    label: `matmul + GELU + dropout epilogue: ${label}`,
    ops: ["matmul", "gelu_dropout_forward"],
    bound: { c: MATMUL, y: MATMUL, y16: BF16_STORED },
    run: (be) => {
      const x = rt(be, [M, K], 60), w = rt(be, [N, K], 61, 1 / Math.sqrt(K));
      const b = rt(be, [N], 62, 0.1), dropout = { p: 0.1, seed: 4321, stream: 81 };
      const out: Outputs = {};
      for (const dtype of ["f32", "bf16"] as const) {
        const y = Tensor.empty(be, [M, N], "step", dtype);
        const c = matmul(x, w, { transB: true, bias: b, geluDropout: { dropout, y } });
        const want = geluDropout(c, dropout, dtype).toArray(), got = y.toArray();
        const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
        if (bad >= 0) {
          throw new Error(`epilogue y ${dtype}[${bad}]: ${got[bad]}, want ${want[bad]}`);
        }
        if (dtype === "f32") [out.c, out.y] = [c.toArray(), got];
        else out.y16 = got;
      }
      return out;
    },
  });
}

// Packed bf16 operands (autograd's saved activations in bf16 mode, read by the backward's
// products as they are): on each backend the product from the packed operand must be the bits of
// the product from its float32 original (the kernels widen it and round it back: exact), and
// across backends the usual MATMUL bound. Only in bf16 precision (packed operands need it).
if (PRECISION === "bf16") {
  /**
   * The product both ways on one backend; throws when packing changed a bit. Not checked through
   * cuBLAS, which may pick another algorithm for a packed operand than for its own bf16 copy
   * (only our kernels fix the order); the comparison with Wasm still applies.
   */
  const packedProduct = (
    what: string,
    f: (pack: (t: Tensor) => Tensor) => Tensor,
  ): Float32Array => {
    const plain = f((t) => t).toArray();
    const packed = f((t) => packBf16(t)).toArray();
    const inner = pair?.cand.inner;
    if (inner instanceof CudaBackend && inner.matmulMode().library === "cublas") return packed;
    const bad = packed.findIndex((v, i) => !Object.is(v, plain[i]));
    if (bad >= 0) {
      throw new Error(`${what}: element ${bad} is ${packed[bad]} packed, ${plain[bad]} not`);
    }
    return packed;
  };
  addCase({
    label:
      "matmul packed bf16: conmamba_large FFN w1 backward, dx = dy W and dW = dy^T x (packed x)",
    ops: ["matmul", "bf16_pack"],
    bound: { da: MATMUL, db: MATMUL },
    run: (be) => {
      const x = rt(be, [120, LARGE.d], 40), w = rt(be, [LARGE.ffn, LARGE.d], 41, 0.05);
      const dy = rt(be, [120, LARGE.ffn], 42);
      const db = packedProduct("dW", (p) => matmulBackward(dy, p(x), w, { transB: true }).db);
      const da = matmulBackward(dy, packBf16(x), w, { transB: true }).da;
      return { da: da.toArray(), db };
    },
  });
  addCase({
    // k = 4000 frames for a 41 x 288 result: split along k on CUDA, the chunks' packed A
    // pointers advanced in bf16 elements (matmul_advance).
    label:
      "matmul packed bf16: conmamba_small x_proj weight gradient over 4 x 1000 frames (split-K)",
    ops: ["matmul", "bf16_pack"],
    bound: MATMUL,
    run: (be) => {
      const x = rt(be, [4000, SMALL.di], 43), dy = rt(be, [4000, 41], 44);
      return { db: packedProduct("dW", (p) => matmul(dy, p(x), { transA: true })) };
    },
  });
  addCase({
    label: "matmul packed bf16: batched attention (2x4, 100, 100) . (2x4, 100, 36), both packed",
    ops: ["matmul", "bf16_pack"],
    bound: MATMUL,
    run: (be) => {
      const a = rt(be, [8, 100, 100], 45, 0.1), v = rt(be, [8, 100, 36], 46);
      return {
        y: packedProduct("AV", (p) => matmul(p(a), p(v))),
        yt: packedProduct("A^T V", (p) => matmul(p(a), p(v), { transA: true })),
      };
    },
  });
  addCase({
    // odd leading dimensions: the 4-element loads are off, every element loaded alone
    label: "matmul packed bf16 awkward: batch 2 x (13, 7)^T shared (10, 7)^T, odd ld, + bias",
    ops: ["matmul", "bf16_pack"],
    bound: MATMUL,
    run: (be) => {
      const a = rt(be, [2, 7, 13], 47), w = rt(be, [10, 7], 48), bias = rt(be, [10], 49);
      const o = { transA: true, transB: true, bias };
      return {
        a: packedProduct("packed A", (p) => matmul(p(a), w, o)),
        ab: packedProduct("packed A and B", (p) => matmul(p(a), p(w), o)),
      };
    },
  });
}
addCase({
  // from 1024 rows the CUDA kernel sums chunks of 256 rows in a fixed order (column_sums.cuh)
  label: "sum_rows: bias gradient over a batch (5000, 520), chunked, and accumulate",
  ops: ["sum_rows"],
  bound: SUMS,
  run: (be) => {
    const x = rt(be, [5000, 520], 19), y = rt(be, [520], 20);
    return { s: sumRows(x).toArray(), acc: sumRows(x, y, true).toArray() };
  },
});
addCase({
  label: "sum_rows: awkward (1001, 7) and accumulate into (7)",
  ops: ["sum_rows"],
  bound: SUMS,
  run: (be) => {
    const x = rt(be, [1001, 7], 17), y = rt(be, [7], 18);
    return { s: sumRows(x).toArray(), acc: sumRows(x, y, true).toArray() };
  },
});

// -- elementwise --
for (
  const [label, size] of [
    ["conmamba_small activations (2, 100, 144)", 2 * 100 * SMALL.d],
    ["conmamba_large FFN hidden (2, 60, 2048)", 2 * 60 * LARGE.ffn],
    ["awkward 13", 13],
    ["awkward 1", 1],
  ] as const
) {
  addCase({
    label: `add, mul, scale: ${label}`,
    ops: ["add", "mul", "scale"],
    bound: EXACT,
    run: (be) => {
      const a = rt(be, [size], 20), b = rt(be, [size], 21);
      return {
        add: add(a, b).toArray(),
        mul: mul(a, b).toArray(),
        scale: scale(a, 0.37).toArray(),
      };
    },
  });
  addCase({
    label: `gelu, silu, exp, leaky_relu (+ backward): ${label}`,
    ops: [
      "gelu_forward",
      "gelu_backward",
      "silu_forward",
      "silu_backward",
      "exp_forward",
      "leaky_relu_forward",
      "leaky_relu_backward",
    ],
    bound: {
      gelu: TRANSCENDENTAL,
      dgelu: TRANSCENDENTAL,
      silu: TRANSCENDENTAL,
      dsilu: TRANSCENDENTAL,
      exp: TRANSCENDENTAL,
      leaky: EXACT,
      dleaky: EXACT,
      gelu16: BF16_STORED,
      silu16: BF16_STORED,
    },
    run: (be) => {
      const x = rt(be, [size], 22, 3), dy = rt(be, [size], 23);
      // y_bf16 (an activation a matmul alone reads, in bf16 mode)
      const bf16 = size % 2 === 0
        ? {
          gelu16: bf16Of("gelu y_bf16", gelu(x, undefined, "bf16"), gelu(x)),
          silu16: bf16Of("silu y_bf16", silu(x, undefined, "bf16"), silu(x)),
        }
        : {} as Outputs;
      return {
        ...bf16,
        gelu: gelu(x).toArray(),
        dgelu: geluBackward(x, dy).toArray(),
        silu: silu(x).toArray(),
        dsilu: siluBackward(x, dy).toArray(),
        exp: exp(x).toArray(),
        leaky: leakyRelu(x, 0.01).toArray(),
        dleaky: leakyReluBackward(x, dy, 0.01).toArray(),
      };
    },
  });
}

// -- per-row ops --
for (
  const [label, rows, cols] of [
    ["conmamba_small encoder LN (2x100, 144)", 200, SMALL.d],
    ["conmamba_large encoder LN (2x60, 512)", 120, LARGE.d],
    // from 1024 rows the CUDA parameter gradients are chunked column sums (column_sums.cuh)
    // 4000 rows: 63 chunks of the parameter gradients' partial sums, the last cut short
    ["conmamba_large encoder LN over a batch (4x1000, 512)", 4000, LARGE.d],
    ["front-end LN over (F', C) = (20, 32) of (2, 100)", 200, 640],
    // over 1024 columns the CUDA backward takes its two-kernel path
    ["wide rows (300, 1100): the two-kernel path", 300, 1100],
    ["awkward (3, 7)", 3, 7],
    ["awkward (1, 1)", 1, 1],
  ] as const
) {
  addCase({
    label: `layernorm forward + backward: ${label}`,
    ops: ["layernorm_forward", "layernorm_backward", "sum_rows"],
    bound: {
      y: ROW_REDUCE,
      y16: BF16_STORED,
      mean: ROW_REDUCE,
      rstd: ROW_REDUCE,
      dx: SUMS,
      dgamma: SUMS,
      dbeta: SUMS,
    },
    run: (be) => {
      const x = rt(be, [rows, cols], 30, 2, 0.5), g = rt(be, [cols], 31, 0.2, 1);
      const b = rt(be, [cols], 32, 0.1), dy = rt(be, [rows, cols], 33);
      const s = layerNorm(x, g, b, 1e-5);
      const d = layerNormBackward(dy, x, g, s);
      // y_bf16 (a norm only Linears read, in bf16 mode): even widths
      const y16 = cols % 2 === 0
        ? { y16: bf16Of("y_bf16", layerNorm(x, g, b, 1e-5, "bf16").y, s.y) }
        : {} as Outputs;
      return {
        ...y16,
        y: s.y.toArray(),
        mean: s.mean.toArray(),
        rstd: s.rstd.toArray(),
        dx: d.dx.toArray(),
        dgamma: d.dgamma.toArray(),
        dbeta: d.dbeta.toArray(),
      };
    },
  });
}
// The parameter gradients' partial sums follow an order ffi/ops.ts fixes, with each term rounded
// (no FMA): given the same mean and rstd (here inputs, not the forward's few-ulp-apart values) the
// CUDA kernels must give the Wasm kernel's bits, both the one-pass kernel (cols <= 1024) and the
// two-kernel path; dx sums rows in another order (SUMS).
for (
  const [label, rows, cols] of [
    ["(4000, 512), one pass", 4000, LARGE.d],
    ["(130, 144), one pass, partial last chunk", 130, SMALL.d],
    ["(300, 1100), two kernels", 300, 1100],
  ] as const
) {
  addCase({
    label: `layernorm backward, given statistics: ${label}, dgamma / dbeta exact`,
    ops: ["layernorm_backward", "sum_rows"],
    bound: { dx: SUMS, dgamma: EXACT, dbeta: EXACT },
    run: (be) => {
      const x = rt(be, [rows, cols], 34, 2, 0.5), g = rt(be, [cols], 35, 0.2, 1);
      const mean = rt(be, [rows], 36, 0.1, 0.5), rstd = rt(be, [rows], 37, 0.05, 0.6);
      const dx = rt(be, [rows, cols], 38), dgamma = rt(be, [cols], 39), dbeta = rt(be, [cols], 40);
      const d = layerNormBackward(rt(be, [rows, cols], 41), x, g, { mean, rstd }, {
        dx,
        params: { dgamma, dbeta },
      });
      return { dx: d.dx.toArray(), dgamma: d.dgamma.toArray(), dbeta: d.dbeta.toArray() };
    },
  });
}
for (
  const [label, rows, cols] of [
    ["conmamba_small CTC output (2x100, 5000)", 200, VOCAB],
    ["conmamba_large decoder output (2x26, 5000)", 52, VOCAB],
    ["awkward (5, 3)", 5, 3],
    ["awkward (2, 1)", 2, 1],
  ] as const
) {
  addCase({
    label: `softmax, log_softmax (+ backward): ${label}`,
    ops: ["softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward"],
    bound: { p: ROW_REDUCE, dp: SUMS, lp: ROW_REDUCE, dlp: SUMS },
    run: (be) => {
      const x = rt(be, [rows, cols], 40, 3), dy = rt(be, [rows, cols], 41);
      const p = softmax(x), lp = logSoftmax(x);
      return {
        p: p.toArray(),
        dp: softmaxBackward(p, dy).toArray(),
        lp: lp.toArray(),
        dlp: logSoftmaxBackward(lp, dy).toArray(),
      };
    },
  });
}
for (
  const [label, shape] of [
    ["conmamba_small conv module pointwise out (2, 100, 2x144)", [2, 100, 2 * SMALL.d]],
    ["conmamba_large conv module (2, 60, 2x512)", [2, 60, 2 * LARGE.d]],
    ["conmamba_large conv module (2 x 500, 2x512): 16 chunks", [1000, 2 * LARGE.d]],
    ["awkward (3, 2)", [3, 2]],
  ] as const
) {
  addCase({
    label: `glu (+ backward, + its column sums): ${label}`,
    ops: ["glu_forward", "glu_backward", "sum_rows"],
    bound: { y: TRANSCENDENTAL, dx: TRANSCENDENTAL, db: SUMS, dx16: BF16_STORED },
    run: (be) => {
      const x = rt(be, [...shape], 42, 2), w = shape[shape.length - 1];
      const dy = rt(be, [...shape.slice(0, -1), w / 2], 43), db = rt(be, [w], 44);
      const dx = gluBackward(x, dy, { out: db, accumulate: true });
      // out_bf16 (the pointwise conv's backward products alone read dx, in bf16 mode)
      const dx16 = packedWithSums(be, "glu out_bf16", w, (s, dt) => gluBackward(x, dy, s, dt));
      return { y: glu(x).toArray(), dx: dx.toArray(), db: db.toArray(), dx16 };
    },
  });
}

// -- dropout --
for (
  const [label, size, p] of [
    ["conmamba_small FFN hidden (2, 100, 1024), p 0.1", 2 * 100 * SMALL.ffn, 0.1],
    ["awkward 13, p 0.5", 13, 0.5],
  ] as const
) {
  addCase({
    label: `dropout forward and backward: ${label}`,
    ops: ["dropout"],
    bound: EXACT,
    run: (be) => {
      const x = rt(be, [size], 50), o = { p, seed: 1234, stream: 77 };
      const y = dropout(x, o);
      const out: Outputs = { y: y.toArray(), dx: dropoutBackward(rt(be, [size], 51), o).toArray() };
      // y_bf16 (attention probabilities for the product with V alone, in bf16 mode): exact too
      if (size % 2 === 0) out.y16 = bf16Of("dropout y_bf16", dropout(x, o, "bf16"), y);
      return out;
    },
  });
}

// -- a residual sum and the LayerNorm after it in one kernel (dropout_add_layernorm): within a
// backend the bits of dropout_add (or add) then layernorm_forward; across backends s EXACT (one
// rounded product and sum behind the exact mask), the norm ROW_REDUCE, its bf16 BF16_STORED --
for (
  const [label, rows, cols] of [
    ["conmamba_large residual + LN (2 x 500, 512)", 1000, LARGE.d],
    ["wide rows (40, 1100): a block per row", 40, 1100],
    ["awkward (3, 7)", 3, 7],
  ] as const
) {
  addCase({
    label: `dropout_add_layernorm: ${label}`,
    ops: ["dropout_add_layernorm", "dropout_add", "add", "layernorm_forward"],
    bound: {
      s: EXACT,
      ln: ROW_REDUCE,
      mean: ROW_REDUCE,
      rstd: ROW_REDUCE,
      ln16: BF16_STORED,
      s1: EXACT,
      ln1: ROW_REDUCE,
    },
    run: (be) => {
      const x = rt(be, [rows, cols], 70, 2), y = rt(be, [rows, cols], 71);
      const g = rt(be, [cols], 72, 0.2, 1), b = rt(be, [cols], 73, 0.1);
      const out: Outputs = {};
      const same = (what: string, a: Tensor, w: Tensor) => {
        const u = a.toArray(), v = w.toArray(), bad = u.findIndex((e, i) => !Object.is(e, v[i]));
        if (bad >= 0) throw new Error(`${what}[${bad}]: ${u[bad]} fused, ${v[bad]} in sequence`);
        return u;
      };
      const drop = { p: 0.1, seed: 4321, stream: 83 };
      const r = addLayerNorm(x, y, g, b, 1e-5, { alpha: 0.5, dropout: drop });
      const s = dropoutAdd(x, y, 0.5, drop), want = layerNorm(s, g, b, 1e-5);
      out.s = same("s", r.s, s);
      out.ln = same("ln", r.ln.y, want.y);
      out.mean = same("mean", r.ln.mean, want.mean);
      out.rstd = same("rstd", r.ln.rstd, want.rstd);
      const r1 = addLayerNorm(x, y, g, b, 1e-5, {}); // no dropout, alpha 1: add then the norm
      const s1 = add(x, y);
      out.s1 = same("plain s", r1.s, s1);
      out.ln1 = same("plain ln", r1.ln.y, layerNorm(s1, g, b, 1e-5).y);
      if (cols % 2 === 0) {
        out.ln16 = bf16Of(
          "ln y_bf16",
          addLayerNorm(x, y, g, b, 1e-5, { alpha: 0.5, dropout: drop, dtype: "bf16" }).ln.y,
          want.y,
        );
      }
      return out;
    },
  });
}

// -- GELU + dropout fused (the FFN's inner activation): the mask exact, the GELU's float64 value
// rounded once on each side, so TRANSCENDENTAL like gelu_forward / gelu_backward --
for (
  const [label, rows, cols] of [
    // rows x cols: the FFN's (B T, F) hidden; 1000 rows: 16 chunks of the bias gradient's sums
    ["conmamba_large FFN hidden (2 x 500, 2048)", 1000, LARGE.ffn],
    ["conmamba_small FFN hidden (2 x 100, 1024)", 200, SMALL.ffn],
    ["awkward (3, 13)", 3, 13],
  ] as const
) {
  addCase({
    label: `gelu_dropout forward and backward (+ dx's column sums): ${label}`,
    ops: ["gelu_dropout_forward", "gelu_dropout_backward", "sum_rows"],
    bound: { y: TRANSCENDENTAL, y16: BF16_STORED, dx: TRANSCENDENTAL, db: SUMS, dx16: BF16_STORED },
    run: (be) => {
      const x = rt(be, [rows, cols], 52, 2), o = { p: 0.1, seed: 4321, stream: 78 };
      const db = rt(be, [cols], 57);
      const dy = rt(be, [rows, cols], 53);
      const dx = geluDropoutBackward(x, dy, o, { out: db, accumulate: true });
      const y = geluDropout(x, o);
      // y_bf16 (the next Linear's input) and out_bf16 (dx, which the first Linear's backward
      // products alone read), in bf16 mode
      const y16 = (rows * cols) % 2 === 0
        ? {
          y16: bf16Of("y_bf16", geluDropout(x, o, "bf16"), y),
          dx16: packedWithSums(be, "gelu_dropout_backward out_bf16", cols, (s, dt) =>
            geluDropoutBackward(x, dy, o, s, dt)),
        }
        : {} as Outputs;
      return { ...y16, y: y.toArray(), dx: dx.toArray(), db: db.toArray() };
    },
  });
}

// -- LeakyReLU + dropout fused (the CNN front end): one correctly rounded product behind the slope's
// comparison and the exact mask, so EXACT --
for (
  const [label, size] of [
    ["conmamba_large front end block 1 (2, 60, 40, 64)", 2 * 60 * 40 * 64],
    ["awkward 13", 13],
  ] as const
) {
  addCase({
    label: `leaky_relu_dropout forward and backward: ${label}`,
    ops: ["leaky_relu_dropout_forward", "leaky_relu_dropout_backward"],
    bound: EXACT,
    run: (be) => {
      const x = rt(be, [size], 59, 2), o = { p: 0.1, seed: 4321, stream: 80 };
      return {
        y: leakyReluDropout(x, 0.01, o).toArray(),
        dx: leakyReluDropoutBackward(x, rt(be, [size], 60), 0.01, o).toArray(),
      };
    },
  });
}

// -- dropout + scale + residual add fused (the macaron FFN's half step), and its branch
// gradient: three correctly rounded operations behind the exact mask, so EXACT; the branch
// gradient's column sums (the branch's last bias gradient) add exact values in the order the op
// table fixes, so EXACT too --
for (
  const [label, rows, cols, alpha] of [
    ["conmamba_large residual (2 x 500, 512), alpha 0.5", 1000, LARGE.d, 0.5],
    ["conmamba_large conv module residual (2 x 60, 512), alpha 1", 120, LARGE.d, 1],
    ["awkward (1, 13), alpha 0.3", 1, 13, 0.3],
  ] as const
) {
  addCase({
    label: `dropout_add and scale_dropout (+ column sums): ${label}`,
    ops: ["dropout_add", "scale_dropout", "sum_rows"],
    bound: EXACT,
    run: (be) => {
      const o = { p: 0.1, seed: 4321, stream: 79 };
      const x = rt(be, [rows * cols], 54), y = rt(be, [rows * cols], 55);
      const db = rt(be, [cols], 58);
      const ds = rt(be, [rows, cols], 56);
      const dy = scaleDropout(ds, alpha, o, { out: db, accumulate: true });
      const out: Outputs = {
        s: dropoutAdd(x, y, alpha, o).toArray(),
        dy: dy.toArray(),
        db: db.toArray(),
      };
      // out_bf16 (the branch's last Linear's backward products alone read dy, in bf16 mode)
      if ((rows * cols) % 2 === 0) {
        out.dy16 = packedWithSums(
          be,
          "scale_dropout out_bf16",
          cols,
          (s, dt) => scaleDropout(ds, alpha, o, s, dt),
        );
      }
      return out;
    },
  });
}

// -- bf16 packing (saved matmul operands in bf16 mode) --
for (
  const [label, n] of [
    ["conmamba_large FFN input (2 x 60, 2048)", 2 * 60 * 2048],
    ["awkward 2 elements", 2],
    ["awkward 1030 elements", 1030],
  ] as const
) {
  addCase({
    label: `bf16_pack, bf16_unpack: ${label}`,
    ops: ["bf16_pack", "bf16_unpack"],
    bound: EXACT,
    run: (be) => {
      const x = rt(be, [n], 63, 3);
      const p = packBf16(x);
      return { packed: be.download(p.storage), y: unpackBf16(p).toArray() };
    },
  });
}

// -- time and layout ops --
for (
  const [label, B, T, W] of [
    ["conmamba_small BiMamba flip (2, 100, 288)", 2, 100, SMALL.di],
    ["conmamba_large (2, 60, 512)", 2, 60, LARGE.d],
    ["awkward (3, 1, 5)", 3, 1, 5],
  ] as const
) {
  addCase({
    label: `flip_time, masked_fill_time, copy_time, fill: ${label}`,
    ops: ["flip_time", "masked_fill_time", "copy_time", "fill"],
    bound: EXACT,
    run: (be) => {
      const x = rt(be, [B, T, W], 60),
        lens = t(be, [B], Array.from({ length: B }, (_, b) => Math.max(0, T - 7 * b)));
      const cut = Math.max(1, T >> 1);
      const y2 = rt(be, [B, cut, W], 61);
      return {
        flip: flipTime(x).toArray(),
        masked: maskedFillTime(x, lens, -3.5).toArray(),
        slice: sliceTime(x, T - cut, cut).toArray(),
        sliceGrad: sliceTimeBackward(y2, T - cut, T).toArray(),
        concat: concatTime([x, y2]).toArray(),
        fill: full(x, [B, T, W], 0.25).toArray(),
      };
    },
  });
}
for (
  const [label, shape, axis] of [
    ["conmamba_small heads (2, 100, 4, 36) -> (2, 4, 100, 36)", [2, 100, SMALL.heads, 36], 1],
    ["conmamba_large heads (2, 60, 8, 64)", [2, 60, LARGE.heads, 64], 1],
    ["transpose of the last two axes (3, 17, 5)", [3, 17, 5], 1],
    ["awkward leading axis (7, 1, 3)", [7, 1, 3], 0],
  ] as const
) {
  addCase({
    label: `swap_axes: ${label}`,
    ops: ["swap_axes"],
    bound: EXACT,
    run: (be) => {
      const x = rt(be, [...shape], 62), y = swapAxes(x, axis);
      const out: Outputs = { y: y.toArray() };
      // y_bf16 (attention's heads, for matmuls alone in bf16 mode): exact too
      if (shape.slice(axis).reduce((a, b) => a * b, 1) % 2 === 0) {
        out.y16 = bf16Of("swap_axes y_bf16", swapAxes(x, axis, "bf16"), y);
      }
      return out;
    },
  });
}
for (
  const [label, vocab, d, count] of [
    ["conmamba_small decoder embedding (5000, 144), ids (2, 26)", VOCAB, SMALL.d, 52],
    ["conmamba_large decoder embedding (5000, 512), ids (2, 26)", VOCAB, LARGE.d, 52],
    ["awkward (3, 5), 40 repeated ids", 3, 5, 40],
  ] as const
) {
  addCase({
    label: `embedding forward + backward: ${label}`,
    ops: ["embedding_forward", "embedding_backward"],
    bound: EXACT,
    run: (be) => {
      const table = rt(be, [vocab, d], 70);
      // a few ids repeated so that the backward sums rows
      const idv = ids(count, 0, Math.min(vocab, count > 10 ? 40 : vocab), 71);
      const idt = t(be, [count], idv);
      return {
        y: embedding(table, idt).toArray(),
        dtable: embeddingBackward(rt(be, [count, d], 72), idt, vocab).toArray(),
      };
    },
  });
}

// -- reductions --
for (
  const [label, shape, axis] of [
    ["conmamba_small time mean (2, 100, 144) over T", [2, 100, SMALL.d], 1],
    ["conmamba_large (2, 60, 512) over the last axis", [2, 60, LARGE.d], 2],
    ["awkward (5, 3) over axis 0", [5, 3], 0],
  ] as const
) {
  addCase({
    label: `sum_axis, mean, broadcast_axis: ${label}`,
    ops: ["sum_axis", "broadcast_axis"],
    bound: { sum: SUMS, mean: SUMS, bsum: EXACT, bmean: EXACT },
    run: (be) => {
      const x = rt(be, [...shape], 80);
      const dy = rt(be, shape.filter((_, i) => i !== axis), 81);
      return {
        sum: sumAxis(x, axis).toArray(),
        mean: meanAxis(x, axis).toArray(),
        bsum: sumAxisBackward(dy, shape, axis).toArray(),
        bmean: sumAxisBackward(dy, shape, axis, true).toArray(),
      };
    },
  });
}
for (
  const [label, rows, cols] of [
    ["greedy CTC argmax (2x100, 5000), many ties", 200, VOCAB],
    ["awkward (3, 1)", 3, 1],
  ] as const
) {
  addCase({
    label: `max_last: ${label}`,
    ops: ["max_last"],
    bound: EXACT,
    run: (be) => {
      // values on a grid of 1/4: ties are frequent, the first index must win on both
      const x = Float32Array.from(randn(rows * cols, 82), (v) => Math.round(v * 4) / 4);
      const r = maxLast(t(be, [rows, cols], x));
      return { values: r.values.toArray(), indices: r.indices.toArray() };
    },
  });
}
addCase({
  label: "sum_squares_blocks: gradient norm of conmamba_small FFN w1 (1024 x 144) and 17",
  ops: ["sum_squares_blocks"],
  bound: SUMS,
  run: (be) => ({
    sq: [sumSquares(rt(be, [SMALL.ffn * SMALL.d], 83)), sumSquares(rt(be, [17], 84))],
  }),
});

// -- attention --
for (
  const [label, B, H, Tq, S, causal, mask] of [
    [
      "conmamba_small-sized self-attention (2, 4, 100, 100), key lengths",
      2,
      4,
      100,
      100,
      false,
      "lengths",
    ],
    [
      "conmamba_large decoder self-attention (2, 8, 26, 26), causal + key mask",
      2,
      8,
      26,
      26,
      true,
      "mask",
    ],
    ["conmamba_large decoder cross-attention (2, 8, 26, 60)", 2, 8, 26, 60, false, "none"],
    ["awkward (1, 1, 3, 5), key lengths", 1, 1, 3, 5, false, "lengths"],
  ] as const
) {
  addCase({
    label: `attn_softmax (+ backward): ${label}`,
    ops: ["attn_softmax_forward", "attn_softmax_backward"],
    bound: { y: ROW_REDUCE, dx: SUMS },
    run: (be) => {
      const x = rt(be, [B, H, Tq, S], 90, 3), dy = rt(be, [B, H, Tq, S], 91);
      const sc = 1 / Math.sqrt(36);
      const keyLengths = mask === "lengths"
        ? t(be, [B], Array.from({ length: B }, (_, b) => S - 3 * b))
        : null;
      const keyMask = mask === "mask"
        ? t(
          be,
          [B, S],
          Array.from({ length: B * S }, (_, i) => (i % S) >= S - 2 - (i / S | 0) ? -Infinity : 0),
        )
        : null;
      const y = attnSoftmax(x, { scale: sc, causal, keyLengths, keyMask });
      return { y: y.toArray(), dx: attnSoftmaxBackward(y, dy, { scale: sc }).toArray() };
    },
  });
}
for (
  const [label, N, S] of [
    ["conmamba_small RelPosMHAXL (2x4, 100, 199)", 8, 100],
    ["awkward (1, 1, 1) and (3, 2, 3)", 3, 2],
  ] as const
) {
  addCase({
    label: `rel_shift (+ backward): ${label}`,
    ops: ["rel_shift_forward", "rel_shift_backward"],
    bound: EXACT,
    run: (be) => ({
      y: relShift(rt(be, [N, S, 2 * S - 1], 92)).toArray(),
      dx: relShiftBackward(rt(be, [N, S, S], 93)).toArray(),
      y1: relShift(rt(be, [1, 1, 1], 94)).toArray(),
    }),
  });
}

// -- Mamba: depthwise conv1d and the selective scan --
for (
  const [label, B, T, C, K, pad, act, view] of [
    [
      "conmamba_small Mamba causal conv K 4 + SiLU on x of xz (2, 100, 288 of 576)",
      2,
      100,
      SMALL.di,
      4,
      3,
      true,
      true,
    ],
    [
      "conmamba_small conv module 'same' K 31 (2, 100, 144)",
      2,
      100,
      SMALL.d,
      SMALL.conv,
      15,
      false,
      false,
    ],
    ["conmamba_large Mamba causal conv (2, 60, 1024 of 2048)", 2, 60, LARGE.di, 4, 3, true, true],
    ["awkward C 7, K 5, T 3", 3, 3, 7, 5, 2, false, false],
  ] as const
) {
  // Each also in reverse time (BiMamba's backward direction: rows T-1-t).
  for (const reverse of [false, true]) {
    addCase({
      label: `conv1d_depthwise forward + backward: ${label}${reverse ? ", reverse time" : ""}`,
      ops: ["conv1d_depthwise_forward", "conv1d_depthwise_backward"],
      bound: { y: SUMS, dx: SUMS, dw: SUMS, dbias: SUMS },
      run: (be) => {
        const xt = rt(be, [B, T, view ? 2 * C : C], 100);
        const x = view ? colView(xt, 0, C) : xt;
        const w = rt(be, [C, K], 101, 0.3), bias = rt(be, [C], 102, 0.1);
        const dy = rt(be, [B, T, C], 103);
        const o = { padLeft: pad, silu: act, reverse };
        const y = conv1dDepthwise(x, w, bias, o);
        // reverse time also adds dx to a buffer's x columns (BiMamba's second direction)
        const into = reverse ? rt(be, [B, T, view ? 2 * C : C], 104) : undefined;
        const g = conv1dDepthwiseBackward(dy, x, w, bias, { ...o, into, accumulate: reverse });
        return { y: y.toArray(), dx: columns(g.dx), dw: g.dw.toArray(), dbias: g.dbias.toArray() };
      },
    });
  }
}
for (
  const [label, B, T, Di, Ns, R, views, optional] of [
    [
      "conmamba_small BiMamba direction (2, 100, 288), Ns 16, B C z as views",
      2,
      100,
      SMALL.di,
      SMALL.ns,
      SMALL.dtRank,
      true,
      true,
    ],
    [
      "conmamba_large (1, 70, 1024), Ns 16, crosses the 64-step chunk",
      1,
      70,
      LARGE.di,
      LARGE.ns,
      LARGE.dtRank,
      true,
      true,
    ],
    ["awkward Di 7, Ns 5, 3 chunks, no D z delta_bias", 3, 130, 7, 5, 2, false, false],
    ["awkward length 1", 2, 1, 5, 16, 1, true, true],
  ] as const
) {
  for (const reverse of [false, true]) {
    addCase({
      label: `selective_scan forward + backward: ${label}${reverse ? ", reverse time" : ""}`,
      ops: ["selective_scan_forward", "selective_scan_backward", "sum_rows"],
      bound: Object.fromEntries(
        ["out", "states", "du", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddeltaBias"]
          .map((k) => [k, SCAN] as const)
          .concat([["out16", BF16_STORED]]),
      ),
      run: (be) => {
        const bt = B * T, W = R + 2 * Ns;
        const u = rt(be, [B, T, Di], 110), delta = rt(be, [B, T, Di], 111, 0.5);
        // S4D-real A = -(n + 1), jittered; dt_proj.bias = softplus^-1(dt), dt in [1e-3, 0.1]
        const A = t(
          be,
          [Di, Ns],
          Float32Array.from(randn(Di * Ns, 112, 0.1), (v, i) => -(1 + (i % Ns)) * Math.exp(v)),
        );
        const xdbl = rt(be, [B, T, W], 113), xz = rt(be, [B, T, 2 * Di], 114);
        const D = optional ? rt(be, [Di], 115, 0.3, 1) : null;
        const deltaBias = optional
          ? t(
            be,
            [Di],
            Float32Array.from(
              randn(Di, 116),
              (v) => Math.log(Math.expm1(Math.exp(-4.6 + 2.3 * (0.5 + 0.2 * v)))),
            ),
          )
          : null;
        const Bv = views ? colView(xdbl, R, Ns) : rt(be, [bt, Ns], 117);
        const Cv = views ? colView(xdbl, R + Ns, Ns) : rt(be, [bt, Ns], 118);
        const z = optional ? (views ? colView(xz, Di, Di) : rt(be, [B, T, Di], 119)) : null;
        // reverse time also halves and adds another direction's half (BiMamba's second direction)
        const other = reverse ? rt(be, [B, T, Di], 122) : null;
        const q = {
          u,
          delta,
          A,
          B: Bv,
          C: Cv,
          D,
          z,
          deltaBias,
          deltaSoftplus: true,
          reverse,
          half: reverse,
          other,
        };
        const saved = selectiveScan(q);
        // reverse time also adds dz to a buffer (BiMamba's second direction), where z is a view
        const intoZ = reverse && z && views
          ? { z: rt(be, [B, T, 2 * Di], 121), accumulateZ: true }
          : {};
        const g = selectiveScanBackward(rt(be, [B, T, Di], 120), q, saved, intoZ);
        const out: Outputs = {
          out: saved.out.toArray(),
          states: saved.states.toArray(),
          du: g.du.toArray(),
          ddelta: g.ddelta.toArray(),
          dA: g.dA.toArray(),
          dB: columns(g.dB),
          dC: columns(g.dC),
        };
        if (g.dD) out.dD = g.dD.toArray();
        if (g.dz) out.dz = columns(g.dz);
        // out_bf16 (out_proj's input in bf16 mode)
        if (saved.out.size % 2 === 0) {
          const o16 = selectiveScan({ ...q, outDtype: "bf16" }).out;
          out.out16 = bf16Of("out_bf16", o16, saved.out);
        }
        if (g.ddeltaBias) out.ddeltaBias = g.ddeltaBias.toArray();
        return out;
      },
    });
  }
}

// -- the CNN front end: conv2d as im2col + matmul --
for (
  const [label, x, cout] of [
    ["conmamba front-end conv 1: (2, 200, 80, 1) -> 64", [2, 200, 80, 1], 64],
    ["conmamba front-end conv 2: (2, 100, 40, 64) -> 32", [2, 100, 40, 64], 32],
    ["awkward (1, 5, 3, 2) -> 3", [1, 5, 3, 2], 3],
    ["awkward minimum (1, 2, 2, 1) -> 1", [1, 2, 2, 1], 1],
  ] as const
) {
  addCase({
    label: `conv2d (im2col_reflect, col2im_reflect, matmul) forward + backward: ${label}`,
    ops: ["im2col_reflect", "col2im_reflect", "matmul", "sum_rows"],
    bound: { y: MATMUL, cols: EXACT, dx: MATMUL, dw: MATMUL, dbias: SUMS },
    run: (be) => {
      const xt = rt(be, [...x], 130), w = rt(be, [cout, x[3], 3, 3], 131, 0.2);
      const b = rt(be, [cout], 132, 0.1);
      const s = conv2d(xt, w, b);
      const g = conv2dBackward(rt(be, [...s.y.shape], 133), xt, w, b, s);
      return {
        y: s.y.toArray(),
        cols: s.cols.toArray(),
        dx: g.dx.toArray(),
        dw: g.dw.toArray(),
        dbias: g.dbias!.toArray(),
      };
    },
  });
}

// -- losses --
addCase({
  label: "ctc_loss: conmamba_small CTC (2, 100, 5000), 25 targets with repeats, weight 0.3",
  ops: ["ctc_loss"],
  bound: LOSS,
  run: (be) => {
    const B = 2, T = 100, S = 25;
    const lp = t(be, [B, T, VOCAB], logProbs(B * T, VOCAB, 140));
    const tg = ids(B * S, 1, 30, 141); // ids 1..29: repeats (the lattice's skip rule) are common
    const r = ctcLoss(lp, tg, [100, 81], [25, 19], { gradScale: 0.3 }); // the joint objective's
    return { loss: [r.loss], per: r.perUtterance, grad: r.grad.toArray() };
  },
});
addCase({
  label: "ctc_loss: awkward - infeasible, empty input, empty target, exact fit (zero_infinity)",
  ops: ["ctc_loss"],
  bound: LOSS,
  run: (be) => {
    // utterance 0: 3 frames for 3 repeated labels (needs 5): infeasible -> 0
    // 1: no frames, no labels -> 0; 2: 4 frames, no labels; 3: 3 frames, labels 1 2 3 exactly
    const B = 4, T = 4, V = 6;
    const lp = t(be, [B, T, V], logProbs(B * T, V, 142, 1));
    const r = ctcLoss(lp, [2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 2, 3], [3, 0, 4, 3], [3, 0, 0, 3]);
    return { per: r.perUtterance, grad: r.grad.toArray() };
  },
});
addCase({
  label: "ctc_loss: awkward - infinite loss without zero_infinity",
  ops: ["ctc_loss"],
  bound: LOSS,
  run: (be) => {
    const lp = t(be, [1, 2, 4], logProbs(2, 4, 143, 1));
    const r = ctcLoss(lp, [3, 3], [2], [2], { zeroInfinity: false });
    return { per: r.perUtterance, grad: r.grad.toArray() };
  },
});
for (
  const [label, B, U, V, eps] of [
    ["conmamba_small decoder (2, 26, 5000), smoothing 0.1", 2, 26, VOCAB, 0.1],
    ["awkward (3, 1, 2), NLL", 3, 1, 2, 0],
  ] as const
) {
  addCase({
    label: `smoothed_nll: ${label}`,
    ops: ["smoothed_nll"],
    bound: LOSS,
    run: (be) => {
      const lp = t(be, [B, U, V], logProbs(B * U, V, 150));
      const tg = ids(B * U, 0, V, 151);
      const w = tg.map((id, i) => (eps > 0 ? (id !== 0 ? 1 : 0) : i % 3 === 2 ? 0 : 1));
      const r = smoothedNll(lp, tg, w, eps, 0.7); // weighted as in the joint objective
      return { loss: [r.loss], per: r.perUtterance, grad: r.grad.toArray() };
    },
  });
}

// -- optimiser --
for (
  const [label, size, decoupled] of [
    ["conmamba_small FFN w1 (1024 x 144), Adam", SMALL.ffn * SMALL.d, false],
    ["awkward 13, AdamW", 13, true],
  ] as const
) {
  addCase({
    label: `adam_step: ${label}`,
    ops: ["adam_step"],
    // An update is lr-sized: compare it (p1 - p0), not p1, whose own magnitude would hide it.
    bound: { update: TRANSCENDENTAL, m: TRANSCENDENTAL, v: TRANSCENDENTAL },
    run: (be) => {
      const p0 = randn(size, 160), p = t(be, [size], p0);
      const g = rt(be, [size], 161), m = rt(be, [size], 162, 0.01);
      const v = t(be, [size], Float32Array.from(randn(size, 163, 1e-4), Math.abs));
      adamStep(p, g, m, v, {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-9,
        weightDecay: decoupled ? 0.01 : 0,
        decoupled,
        step: 3,
        gradScale: 0.7,
      });
      const p1 = p.toArray();
      return { update: p1.map((x, i) => x - p0[i]), m: m.toArray(), v: v.toArray() };
    },
  });
}

// -- audio: filterbank and speed perturbation --
function waveform(samples: number, seed: number): Float32Array {
  const noise = randn(samples, seed, 0.05);
  return Float32Array.from(noise, (e, i) => 0.3 * Math.sin(2 * Math.PI * 440 * i / 16000) + e);
}
for (
  const [label, nFft, winMs, samples] of [
    ["conmamba_small features: n_fft 400 (radices 4 2 5 5), 25 ms, 1.3 s", 400, 25, 20800],
    ["conmamba_large features: n_fft 512 (radices 4 4 4 4), 32 ms, 1.3 s", 512, 32, 20850],
    ["awkward: n_fft 384 (radix 3), 100 samples (every frame padded)", 384, 24, 100],
  ] as const
) {
  addCase({
    label: `fbank_forward: ${label}`,
    ops: ["fbank_forward"],
    bound: ROUNDED_ONCE,
    run: (be) => {
      const fb = new Fbank(
        be,
        fbankSettings({ sample_rate: 16000, n_fft: nFft, win_length: winMs, n_mels: 80 }),
      );
      try {
        return { feats: fb.compute(waveform(samples, 170)) };
      } finally {
        fb.free();
      }
    },
  });
}
for (
  const [label, speed, samples] of [
    ["speed perturbation 95 (16000 -> 15200 Hz), 1 s", 95, 16000],
    ["speed perturbation 105 (16000 -> 16800 Hz), 1 s", 105, 16000],
    ["awkward: speed 95 on 5 samples", 95, 5],
  ] as const
) {
  addCase({
    label: `resample_forward: ${label}`,
    ops: ["resample_forward"],
    bound: ROUNDED_ONCE,
    run: (be) => {
      const r = new Resampler(be, 16000, 16000 * speed / 100);
      try {
        return { y: r.apply(waveform(samples, 171)) };
      } finally {
        r.free();
      }
    },
  });
}

// ---- the tests -----------------------------------------------------------------------------

Deno.test("parity: every op of ffi/ops.ts has a case, and every case names real ops", () => {
  const known = new Set(OPS.map((o) => o.name));
  const covered = new Set(CASES.flatMap((c) => c.ops));
  const missing = [...known].filter((o) => !covered.has(o));
  const unknown = [...covered].filter((o) => !known.has(o));
  assert.deepEqual(
    { missing, unknown },
    { missing: [], unknown: [] },
    `ops without a parity case: [${missing.join(", ")}]; unknown ops named: [${
      unknown.join(", ")
    }]`,
  );
  const labels = CASES.map((c) => c.label);
  assert.equal(new Set(labels).size, labels.length, "two cases share a label");
});

Deno.test("parity harness: the comparison catches a flipped bit, a 1e-4 error and a NaN", () => {
  const r = randn(1000, 9);
  const oneBit = r.slice();
  new Uint32Array(oneBit.buffer)[17] ^= 1; // the last mantissa bit: 1 ulp
  const scaled = r.map((v) => v * (1 + 1e-4));
  const nan = r.slice();
  nan[3] = NaN;
  const check = (c: Float32Array, b: Bound) => violation(measure(r, c), b, r.length);
  assert.equal(check(r.slice(), EXACT), null);
  assert.notEqual(check(oneBit, EXACT), null);
  assert.equal(check(oneBit, ROUNDED_ONCE), null);
  const fp32 = [EXACT, ROUNDED_ONCE, TRANSCENDENTAL, ROW_REDUCE, SUMS, SCAN, LOSS];
  for (const b of PRECISION === "fp32" ? [...fp32, MATMUL] : fp32) {
    assert.notEqual(check(scaled, b), null, `a 1e-4 error passes ${describe(b)}`);
    assert.notEqual(check(nan, b), null, `a NaN passes ${describe(b)}`);
  }
});

function runCase(be: Recording, c: Case): Outputs {
  be.ran.clear();
  try {
    return c.run(be);
  } finally {
    be.resetStep();
  }
}

for (const c of CASES) {
  Deno.test({
    name: `parity ${MODE}: ${c.label}`,
    ignore: IGNORE,
    fn() {
      const { ref, cand } = pair!;
      const r = runCase(ref, c);
      const k = runCase(cand, c);
      const notRun = c.ops.filter((o) => !cand.ran.has(o));
      assert.deepEqual(notRun, [], `the case claims ops it did not run: ${notRun.join(", ")}`);
      compareOutputs(c.label, r, k, c.bound);
    },
  });
}

// ---- one training step of a tiny model -----------------------------------------------------

const F = 40, V = 12, UTTS = [[3, 4, 5, 6], [7, 8, 3, 9, 10], [11, 5, 8]];

/** A synthetic batch: each token a fixed random spectral pattern held for 8 frames, plus noise. */
function tinyBatch(): Batch {
  const rnd = new Rng(5);
  return patternedBatch(UTTS, tokenPatterns(V, F, rnd), rnd);
}

/** One AsrTrainer step (dropout on, joint CTC + attention loss, clipping, Adam) on `be`. */
function trainOneStep(be: Backend) {
  const model = new AsrModel(be, {
    encoder: "conmamba",
    decoder: "transformer",
    dModel: 32,
    dFfn: 64,
    numEncoderLayers: 2,
    numDecoderLayers: 1,
    heads: 2,
    vocab: V,
    nMels: F,
    kernelSize: 7,
    cnnChannels: [8, 8],
  });
  initialize(model, 11);
  const none = { lengthLow: 1, lengthHigh: 2, countLow: 0, countHigh: 0 };
  const tr = new AsrTrainer(model, new InputNormalization(F, 1000), {
    seed: 3,
    gradAccumulation: 1,
    maxGradNorm: 5,
    optimizer: "Adam",
    lr: 1e-3,
    betas: [0.9, 0.98],
    eps: 1e-9,
    weightDecay: 0,
    warmup: 1,
    blank: 0,
    ctcWeight: 0.3,
    labelSmoothing: 0.1,
    specAugment: { timeDrop: none, freqDrop: none, timeWarpWindow: null },
  });
  try {
    const before = model.parameters().map((p) => p.toArray());
    const log = tr.step(tinyBatch(), 1);
    const after = model.parameters().map((p) => p.toArray());
    // After one step the first moment is (1 - beta1) coef grad: the clipped gradient, scaled.
    const m = tr.m.map((x) => x.toArray());
    return { loss: log.loss, before, after, m };
  } finally {
    tr.free();
    model.free();
    be.resetStep();
  }
}

const concat = (xs: Float32Array[]) => {
  const out = new Float32Array(xs.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of xs) {
    out.set(x, o);
    o += x.length;
  }
  return out;
};

Deno.test({
  name: `parity ${MODE}: one training step of a tiny ConMamba + Transformer AsrModel`,
  ignore: IGNORE,
  fn() {
    const { ref, cand } = pair!;
    const r = trainOneStep(ref), k = trainOneStep(cand);
    assert.ok(Number.isFinite(r.loss) && Number.isFinite(k.loss), `losses ${r.loss}, ${k.loss}`);
    assert.deepEqual(concat(k.before), concat(r.before), "initialisation differs");
    const update = (x: { before: Float32Array[]; after: Float32Array[] }) =>
      concat(x.after).map((v, i) => v - concat(x.before)[i]);
    const ru = update(r), ku = update(k);
    const lossRel = Math.abs(k.loss - r.loss) / Math.abs(r.loss);
    const grad = measure(concat(r.m), concat(k.m));
    const upd = measure(ru, ku);
    const maxUpdate = ru.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    const T = "one training step (tiny AsrModel)";
    const lossBound = PRECISION === "bf16" ? 1e-2 : 1e-4;
    const gradBound = PRECISION === "bf16" ? 5e-2 : 1e-3;
    const lossM = { relL2: lossRel, maxRel: lossRel, ulp: NaN, mismatches: lossRel === 0 ? 0 : 1 };
    const report = (output: string, m: Measured, bound: Bound, ok: boolean) =>
      REPORT.push({ test: T, output, m, bound: ALL_EXACT ? EXACT : bound, ok });
    if (ALL_EXACT) {
      report("loss", lossM, EXACT, k.loss === r.loss);
      report("gradient (Adam m)", grad, EXACT, grad.mismatches === 0);
      report("parameter update", upd, EXACT, upd.mismatches === 0);
      assert.equal(k.loss, r.loss);
      assert.equal(grad.mismatches, 0, "gradients differ");
      assert.equal(upd.mismatches, 0, "parameters differ after the step");
      return;
    }
    // Loss: a forward of ~100 ops whose fp32 differences (bounds above) stay ~1e-6: 1e-4.
    report("loss", lossM, { relL2: lossBound }, lossRel <= lossBound);
    // Gradients: the backward compounds the per-op differences through ~10 layers: relL2 1e-3.
    report("gradient (Adam m)", grad, { relL2: gradBound }, grad.relL2 <= gradBound);
    report("parameter update", upd, { relL2: 5e-2 }, upd.relL2 <= 5e-2);
    assert.ok(lossRel <= lossBound, `loss ${k.loss} vs ${r.loss} (rel ${lossRel})`);
    assert.ok(grad.relL2 <= gradBound, `gradient relL2 ${grad.relL2}`);
    // Parameters: Adam's first update is lr g / (|g| + eps) ~ +-lr, so a gradient element near 0
    // may flip sign between backends and move its parameter by 2 lr in the other direction:
    // no parameter may differ by more than twice the largest update, and flips must be rare
    // (relL2 of the updates 5e-2: under ~0.06 % of the elements flipped).
    const pd = measure(concat(r.after), concat(k.after));
    assert.ok(pd.nonFinite === 0, "non-finite parameters");
    const maxDiff = concat(r.after).reduce(
      (a, v, i) => Math.max(a, Math.abs(v - concat(k.after)[i])),
      0,
    );
    assert.ok(
      maxDiff <= 2.01 * maxUpdate,
      `a parameter moved ${maxDiff}, updates are <= ${maxUpdate}`,
    );
    assert.ok(upd.relL2 <= 5e-2, `parameter updates differ: relL2 ${upd.relL2}`);
  },
});

// ---- the report ----------------------------------------------------------------------------

Deno.test({
  name: `parity ${MODE}: report of measured differences`,
  ignore: IGNORE,
  async fn() {
    const fmt = (x: number) => Number.isNaN(x) ? "-" : x === 0 ? "0" : x.toExponential(1);
    const lines = [
      `Parity: ${MODE === "cuda" ? "CUDA" : "Wasm 2 threads"} against Wasm, ${PRECISION} bounds ` +
      `(tests/cuda/parity_test.ts). relL2 = ||c - r|| / ||r||, maxRel = max|c - r| / max|r|, ` +
      `ulp = max |c - r| / ulp(r), differing = elements whose float32 bits differ.`,
      "",
      "| case | output | relL2 | maxRel | ulp | differing | bound | ok |",
      "|---|---|---|---|---|---|---|---|",
      ...REPORT.map((r) =>
        `| ${r.test} | ${r.output} | ${fmt(r.m.relL2)} | ${fmt(r.m.maxRel)} | ${fmt(r.m.ulp)} | ` +
        `${r.m.mismatches} | ${describe(r.bound) || "see test"} | ${r.ok ? "yes" : "**no**"} |`
      ),
    ];
    const text = lines.join("\n");
    console.log(
      `${REPORT.length} outputs compared; ${REPORT.filter((r) => !r.ok).length} over their bound`,
    );
    const path = Deno.env.get("CONMAMBA_PARITY_REPORT");
    if (path) await Deno.writeTextFile(path, text + "\n");
    else if (Deno.env.get("CONMAMBA_PARITY_VERBOSE")) console.log(text);
  },
});
