/**
 * The op table: every compute kernel, listed once.
 *
 * `ffi/ops.h` is generated from this file (`deno run ffi/gen_header.ts`), the Wasm backend binds
 * its exports from it, and tests/ops/op_table_test.ts fails when build/kernels.wasm lacks an op
 * listed here or exports a `cm_` symbol that is not.
 *
 * Every kernel is `void cm_<name>(const cm_<struct>* p, <pointer args>)`: a pointer to a small
 * parameter struct (sizes, strides, flags, scalars) followed by pointers to f32 buffers.
 */

/** A field of a parameter struct: 32-bit integer or 32-bit float, in declaration order. */
export type FieldType = "i32" | "f32";

export interface ParamStruct {
  /** C name without the `cm_` prefix and `_params` suffix, e.g. "matmul" -> cm_matmul_params. */
  readonly name: string;
  readonly fields: readonly (readonly [name: string, type: FieldType, doc: string])[];
}

export interface OpArg {
  readonly name: string;
  /** "in": const float*, "out": float* written by the kernel, "inout": read and written. */
  readonly dir: "in" | "out" | "inout";
  /** May be NULL (0): the kernel skips what it is for (e.g. the bias of a matmul). */
  readonly optional?: boolean;
  /** Shape in terms of the struct's fields, for the header comment. */
  readonly shape: string;
  /**
   * How the pointer moves when a call is split across threads (see `OpSpec.split`):
   * "vector" (n) moves by the first element; "matrix" (rows, ld) by r0*ld for a row split or c0
   * for a column split; "per_row" (rows) by r0; "per_col" (cols) by c0. Matmul args are named
   * a, b, bias, c and split by their role. Defaults to "vector".
   */
  readonly layout?: "vector" | "matrix" | "per_row" | "per_col";
}

export interface OpSpec {
  readonly name: string;
  readonly params: ParamStruct;
  readonly args: readonly OpArg[];
  readonly doc: string;
  /**
   * Which independent ranges a thread pool may hand to separate calls, each call seeing a smaller
   * problem through shifted pointers and a smaller size field: "elements" splits n, "rows" splits
   * rows, "cols" splits cols (reductions over rows), "matmul_rows" splits m. Every split keeps each
   * output element's arithmetic unchanged, so results are bitwise independent of the thread count.
   */
  readonly split: "elements" | "rows" | "cols" | "matmul_rows";
}

export const MATMUL_PARAMS: ParamStruct = {
  name: "matmul",
  fields: [
    ["batch", "i32", "number of independent products"],
    ["m", "i32", "rows of C"],
    ["n", "i32", "columns of C"],
    ["k", "i32", "inner dimension"],
    ["lda", "i32", "row stride of A as stored ((M, K), or (K, M) when trans_a)"],
    ["ldb", "i32", "row stride of B as stored ((K, N), or (N, K) when trans_b)"],
    ["ldc", "i32", "row stride of C"],
    ["stride_a", "i32", "elements between batches of A (0: shared)"],
    ["stride_b", "i32", "elements between batches of B (0: shared, e.g. a weight)"],
    ["stride_c", "i32", "elements between batches of C"],
    ["trans_a", "i32", "1: A is stored (K, M)"],
    ["trans_b", "i32", "1: B is stored (N, K)"],
    ["accumulate", "i32", "1: C += op(A) op(B); 0: C = op(A) op(B)"],
  ],
};

export const ELEMENTWISE_PARAMS: ParamStruct = {
  name: "elementwise",
  fields: [
    ["n", "i32", "number of elements"],
    ["alpha", "f32", "scalar operand (scale)"],
  ],
};

export const ROWS_PARAMS: ParamStruct = {
  name: "rows",
  fields: [
    ["rows", "i32", "number of rows handled by this call"],
    ["cols", "i32", "length of the last axis handled by this call"],
    ["ld", "i32", "row stride in elements (>= cols)"],
    ["accumulate", "i32", "1: outputs are added to, 0: overwritten"],
    ["eps", "f32", "LayerNorm epsilon"],
  ],
};

export const FBANK_PARAMS: ParamStruct = {
  name: "fbank",
  fields: [
    ["rows", "i32", "frames computed by this call"],
    ["cols", "i32", "mel filters (80)"],
    ["ld", "i32", "row stride of the output"],
    ["row0", "i32", "index of this call's first frame in the utterance"],
    ["n_samples", "i32", "samples of the waveform"],
    ["n_fft", "i32", "FFT length (even, n_fft/2 a product of 2, 3, 5; <= 1024)"],
    ["hop", "i32", "samples between frames (160)"],
  ],
};

type Layout = OpArg["layout"];
const fin = (name: string, shape: string, layout: Layout = "vector"): OpArg => ({
  name,
  dir: "in",
  shape,
  layout,
});
const fout = (name: string, shape: string, layout: Layout = "vector"): OpArg => ({
  name,
  dir: "out",
  shape,
  layout,
});
const finout = (name: string, shape: string, layout: Layout = "vector"): OpArg => ({
  name,
  dir: "inout",
  shape,
  layout,
});
const M = "matrix", R = "per_row", C = "per_col";

export const OPS: readonly OpSpec[] = [
  {
    name: "matmul",
    params: MATMUL_PARAMS,
    split: "matmul_rows",
    args: [
      fin("a", "(batch, m, k) or (batch, k, m)"),
      fin("b", "(batch, k, n) or (batch, n, k)"),
      { name: "bias", dir: "in", optional: true, shape: "(n)" },
      finout("c", "(batch, m, n)"),
    ],
    doc: "C = op(A) op(B) (+ C when accumulate) (+ bias per column). Each C element is a " +
      "sequential float32 sum over k in order, whatever the blocking or thread split.",
  },
  {
    name: "sum_rows",
    params: ROWS_PARAMS,
    split: "cols",
    args: [fin("x", "(rows, ld)", M), finout("y", "(cols)", C)],
    doc: "y[j] (+)= sum over rows of x[r, j], rows in order (bias and LayerNorm beta gradients).",
  },
  {
    name: "add",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("a", "(n)"), fin("b", "(n)"), fout("y", "(n)")],
    doc: "y = a + b; y may alias a or b.",
  },
  {
    name: "mul",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("a", "(n)"), fin("b", "(n)"), fout("y", "(n)")],
    doc: "y = a * b; y may alias a or b.",
  },
  {
    name: "scale",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("x", "(n)"), fout("y", "(n)")],
    doc: "y = alpha * x; y may alias x.",
  },
  {
    name: "gelu_forward",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("x", "(n)"), fout("y", "(n)")],
    doc: "y = x * Phi(x) = 0.5 x erfc(-x / sqrt 2) (exact, erf-based GELU).",
  },
  {
    name: "gelu_backward",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("x", "(n)"), fin("dy", "(n)"), fout("dx", "(n)")],
    doc: "dx = dy * (Phi(x) + x phi(x)).",
  },
  {
    name: "silu_forward",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("x", "(n)"), fout("y", "(n)")],
    doc: "y = x * sigmoid(x) (Swish).",
  },
  {
    name: "silu_backward",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("x", "(n)"), fin("dy", "(n)"), fout("dx", "(n)")],
    doc: "dx = dy * s (1 + x (1 - s)), s = sigmoid(x).",
  },
  {
    name: "layernorm_forward",
    params: ROWS_PARAMS,
    split: "rows",
    args: [
      fin("x", "(rows, ld)", M),
      fin("gamma", "(cols)", C),
      fin("beta", "(cols)", C),
      fout("y", "(rows, ld)", M),
      fout("mean", "(rows)", R),
      fout("rstd", "(rows)", R),
    ],
    doc:
      "LayerNorm over the last axis (CONMAMBA_SPEC.md 4.16): y = (x - mean) rstd gamma + beta, " +
      "rstd = 1 / sqrt(biased var + eps); saves mean and rstd for the backward.",
  },
  {
    name: "layernorm_backward",
    params: ROWS_PARAMS,
    split: "rows",
    args: [
      fin("x", "(rows, ld)", M),
      fin("gamma", "(cols)", C),
      fin("mean", "(rows)", R),
      fin("rstd", "(rows)", R),
      fin("dy", "(rows, ld)", M),
      finout("dx", "(rows, ld)", M),
    ],
    doc: "dx (+)= rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma; per row.",
  },
  {
    name: "layernorm_backward_params",
    params: ROWS_PARAMS,
    split: "cols",
    args: [
      fin("x", "(rows, ld)", M),
      fin("mean", "(rows)", R),
      fin("rstd", "(rows)", R),
      fin("dy", "(rows, ld)", M),
      finout("dgamma", "(cols)", C),
      finout("dbeta", "(cols)", C),
    ],
    doc: "dgamma (+)= sum_r dy xhat, dbeta (+)= sum_r dy; rows in order, so a split over " +
      "columns gives the same bits for any thread count.",
  },
  {
    name: "softmax_forward",
    params: ROWS_PARAMS,
    split: "rows",
    args: [fin("x", "(rows, ld)", M), fout("y", "(rows, ld)", M)],
    doc: "y = exp(x - max) / sum exp(x - max), per row.",
  },
  {
    name: "softmax_backward",
    params: ROWS_PARAMS,
    split: "rows",
    args: [fin("y", "(rows, ld)", M), fin("dy", "(rows, ld)", M), fout("dx", "(rows, ld)", M)],
    doc: "dx = y (dy - sum(dy y)), per row.",
  },
  {
    name: "log_softmax_forward",
    params: ROWS_PARAMS,
    split: "rows",
    args: [fin("x", "(rows, ld)", M), fout("y", "(rows, ld)", M)],
    doc: "y = (x - max) - log sum exp(x - max), per row.",
  },
  {
    name: "log_softmax_backward",
    params: ROWS_PARAMS,
    split: "rows",
    args: [fin("y", "(rows, ld)", M), fin("dy", "(rows, ld)", M), fout("dx", "(rows, ld)", M)],
    doc: "dx = dy - exp(y) sum(dy), per row.",
  },
  // ---- filterbank features (src/audio/fbank.ts) ----
  {
    name: "fbank_forward",
    params: FBANK_PARAMS,
    split: "rows",
    args: [
      fin("wav", "(n_samples)"),
      fin("window", "(n_fft)"),
      fin("twiddle_hi", "(n_fft, 2)"),
      fin("twiddle_lo", "(n_fft, 2)"),
      fin("mel", "(packed: per filter first_bin, count, count weights)"),
      fout("out", "(rows, ld)", M),
    ],
    doc: "Log-mel dB of frames row0 .. row0+rows-1 (CONMAMBA_SPEC.md 3.2-3.5, before the " +
      "per-utterance top_db clamp), computed in double: centred zero-padded frames, window, " +
      "|FFT|^2, triangular mel filters, 10 log10(max(E, 1e-10)).",
  },
];

export const PARAM_STRUCTS: readonly ParamStruct[] = [
  MATMUL_PARAMS,
  ELEMENTWISE_PARAMS,
  ROWS_PARAMS,
  FBANK_PARAMS,
];

/** The exported C symbol of an op. */
export function symbolOf(op: OpSpec): string {
  return `cm_${op.name}`;
}

/** Bytes of a parameter struct (every field is 4 bytes). */
export function structBytes(s: ParamStruct): number {
  return 4 * s.fields.length;
}

/** The op of that name; throws when the table has none (a typo in a caller). */
export function opByName(name: string): OpSpec {
  const op = OPS.find((o) => o.name === name);
  if (!op) throw new Error(`ffi/ops.ts has no op named "${name}"`);
  return op;
}
