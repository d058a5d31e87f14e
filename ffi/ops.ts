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
  /**
   * For an axis split (`OpSpec.split` an object): elements the pointer moves per unit of the
   * split axis, as a product of parameter fields and integers ("seqlen*channels", "kernel", "1");
   * "0" keeps it in place. Required for every argument of such an op.
   */
  readonly move?: string;
  /**
   * A parameter field (e.g. "y_bf16") that, when 1, makes this argument packed bf16 (bf16_pack's
   * layout: element e at 16-bit index e from the pointer): a thread split then moves its pointer
   * by half the element offset in float32 slots (src/tensor/split.ts; an odd offset is an error).
   */
  readonly packedIf?: string;
}

/** Splitting a named size field of the struct: each part sees [begin, end) of that axis. */
export interface AxisSplit {
  /** The parameter field that is split (it shrinks to end - begin in each part). */
  readonly axis: string;
  /** Parts begin at multiples of this (e.g. 4 channels of an f32x4). Default 1. */
  readonly unit?: number;
  /** Work per unit of the axis, as a product of fields ("seqlen*dstate"), to size the parts. */
  readonly work: string;
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
  readonly split: "elements" | "rows" | "cols" | "matmul_rows" | AxisSplit;
  /**
   * A parameter field that receives each part's `begin` added to it (e.g. the global element
   * index that seeds dropout, or the first frame of a row split), so that kernels can tell where
   * in the whole call their part lies.
   */
  readonly splitBase?: string;
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
    ["bf16_inputs", "i32", "1: A and B rounded to bf16 (nearest even) first; fp32 accumulation"],
    ["a_bf16", "i32", "1: A is stored as packed bf16 (needs bf16_inputs; see bf16_pack)"],
    ["b_bf16", "i32", "1: B is stored as packed bf16 (needs bf16_inputs)"],
    [
      "epilogue",
      "i32",
      "1: also y = dropout(gelu(C)) after the bias, gelu_dropout_forward's bits (batch 1, ldc n)",
    ],
    ["p", "f32", "the epilogue's drop probability in [0, 1)"],
    ["seed", "i32", "the epilogue's dropout seed"],
    ["stream", "i32", "the epilogue's dropout stream"],
    [
      "row0",
      "i32",
      "global row of C's first row (thread split): element (i, j) is mask index (row0 + i) n + j",
    ],
    ["y_bf16", "i32", "1: the epilogue's y written as packed bf16"],
  ],
};

export const BF16_PARAMS: ParamStruct = {
  name: "bf16",
  fields: [["pairs", "i32", "float32 slots of the packed side: 2 bf16 values each"]],
};

export const ELEMENTWISE_PARAMS: ParamStruct = {
  name: "elementwise",
  fields: [
    ["n", "i32", "number of elements"],
    ["alpha", "f32", "scalar operand (scale)"],
    ["y_bf16", "i32", "gelu_forward, silu_forward: 1: y written as packed bf16 (nearest even)"],
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
    ["y_bf16", "i32", "layernorm_forward: 1: y written as packed bf16 (rounded to nearest even)"],
  ],
};

export const LN_BACKWARD_PARAMS: ParamStruct = {
  name: "ln_backward",
  fields: [
    ["rows", "i32", "rows of the whole call (a split part sees all of them, from its chunk0 on)"],
    ["cols", "i32", "length of the normalised last axis"],
    ["ld", "i32", "row stride of x, dy and dx in elements (>= cols)"],
    ["accumulate", "i32", "1: dx += its gradient (the bits of a separate add), 0: dx ="],
    ["chunk_rows", "i32", "rows per partial sum of the parameter gradients (a multiple of 8)"],
    ["chunks", "i32", "chunks handled by this call: ceil(rows / chunk_rows) for the whole call"],
    ["chunk0", "i32", "the first chunk of this call within the whole call"],
  ],
};

export const SCAN_PARAMS: ParamStruct = {
  name: "scan",
  fields: [
    ["batch", "i32", "sequences"],
    ["seqlen", "i32", "time steps T"],
    ["channels", "i32", "inner channels Di handled by this call"],
    ["dstate", "i32", "state size Ns (16)"],
    ["ld_u", "i32", "row stride of u, delta, out and their gradients (>= channels)"],
    ["ld_bc", "i32", "row stride of B and C and of dB, dC (they are columns of x_proj's output)"],
    ["ld_z", "i32", "row stride of z and dz (the second half of in_proj's output)"],
    ["delta_softplus", "i32", "1: delta = softplus(delta + delta_bias), identity above 20"],
    ["chunk", "i32", "time steps between saved states (the backward recomputes inside a chunk)"],
    ["nchunks", "i32", "ceil(seqlen / chunk)"],
    [
      "ld_state",
      "i32",
      "elements between saved states of one sequence: Di of the whole call * dstate",
    ],
    ["reverse", "i32", "1: step t reads and writes row T-1-t (the bits of flip, scan, flip)"],
    ["accumulate_dz", "i32", "1: dz += its gradient (the bits of a separate add), 0: dz ="],
    [
      "half",
      "i32",
      "1: out = 0.5 y (+ other), and the backward reads 0.5 dout: BiMamba's halves (exact)",
    ],
    ["out_bf16", "i32", "forward: 1: out written as packed bf16 (nearest even; out_proj's input)"],
  ],
};

export const CONV1D_PARAMS: ParamStruct = {
  name: "conv1d",
  fields: [
    ["batch", "i32", "sequences"],
    ["seqlen", "i32", "time steps T (the output has as many)"],
    ["channels", "i32", "channels handled by this call (depthwise: one filter each)"],
    ["kernel", "i32", "taps K"],
    ["pad_left", "i32", "zeros before t = 0: K - 1 causal, (K - 1) / 2 'same'"],
    ["ld_x", "i32", "row stride of x and dx (>= channels)"],
    ["ld_y", "i32", "row stride of y, dy and dpre (>= channels)"],
    ["activation", "i32", "0: none, 1: SiLU fused after the bias"],
    ["reverse", "i32", "1: time t is row T-1-t of every tensor (the bits of flip, conv, flip)"],
    ["accumulate_dx", "i32", "1: dx += its gradient (the bits of a separate add), 0: dx ="],
  ],
};

export const SEQ_PARAMS: ParamStruct = {
  name: "seq",
  fields: [
    ["batch", "i32", "sequences"],
    ["seqlen", "i32", "time steps T"],
    ["width", "i32", "features per time step"],
  ],
};

export const MASK_PARAMS: ParamStruct = {
  name: "mask",
  fields: [
    ["batch", "i32", "sequences"],
    ["seqlen", "i32", "time steps T"],
    ["width", "i32", "features per time step"],
    ["value", "f32", "what frames t >= length become"],
  ],
};

export const IM2COL_PARAMS: ParamStruct = {
  name: "im2col",
  fields: [
    ["batch", "i32", "images handled by this call"],
    ["time", "i32", "input frames T (the convolution's W axis)"],
    ["freq", "i32", "input frequency bins F (the convolution's H axis)"],
    ["channels", "i32", "input channels Cin"],
    ["time_out", "i32", "output frames"],
    ["freq_out", "i32", "output bins"],
    ["ksize", "i32", "kernel size along both axes (3)"],
    ["stride", "i32", "stride along both axes (2)"],
    ["pad", "i32", "reflect padding on each side of both axes (1)"],
  ],
};

export const DROPOUT_PARAMS: ParamStruct = {
  name: "dropout",
  fields: [
    ["n", "i32", "elements handled by this call"],
    ["p", "f32", "drop probability in [0, 1)"],
    ["seed", "i32", "run seed"],
    ["stream", "i32", "which mask of the run (e.g. step * 4096 + call site)"],
    ["index0", "i32", "global index of this call's first element (set by the thread split)"],
    ["y_bf16", "i32", "dropout, gelu_dropout_forward: 1: y written as packed bf16 (nearest even)"],
  ],
};

export const CHUNKED_ROWS_PARAMS: ParamStruct = {
  name: "chunked_rows",
  fields: [
    ["rows", "i32", "rows of the whole call (a split part sees all of them, from its chunk0 on)"],
    ["cols", "i32", "columns of the op's narrow side (GLU: its output's)"],
    ["chunk_rows", "i32", "rows per partial column sum (a multiple of 8)"],
    ["chunks", "i32", "chunks handled by this call: ceil(rows / chunk_rows) for the whole call"],
    ["chunk0", "i32", "the first chunk of this call within the whole call"],
    ["out_bf16", "i32", "1: dx written as packed bf16 (the column sums from its float32 values)"],
  ],
};

export const DROPOUT_ROWS_PARAMS: ParamStruct = {
  name: "dropout_rows",
  fields: [
    ["rows", "i32", "rows of the whole call (a split part sees all of them, from its chunk0 on)"],
    ["cols", "i32", "elements per row (rows are contiguous)"],
    ["p", "f32", "drop probability in [0, 1)"],
    ["alpha", "f32", "scale_dropout's factor (gelu_dropout_backward does not read it)"],
    ["seed", "i32", "run seed"],
    ["stream", "i32", "which mask of the run (e.g. step * 4096 + call site)"],
    ["chunk_rows", "i32", "rows per partial column sum (a multiple of 8)"],
    ["chunks", "i32", "chunks handled by this call: ceil(rows / chunk_rows) for the whole call"],
    ["chunk0", "i32", "the first chunk of this call within the whole call"],
    ["out_bf16", "i32", "1: dx / y written as packed bf16 (the sums from its float32 values)"],
  ],
};

export const DROPOUT_ADD_PARAMS: ParamStruct = {
  name: "dropout_add",
  fields: [
    ["n", "i32", "elements handled by this call"],
    ["p", "f32", "drop probability in [0, 1)"],
    ["alpha", "f32", "scale of the dropped-out branch (0.5: the macaron FFN's half step)"],
    ["seed", "i32", "run seed"],
    ["stream", "i32", "which mask of the run (e.g. step * 4096 + call site)"],
    ["index0", "i32", "global index of this call's first element (set by the thread split)"],
  ],
};

export const ADD_LN_PARAMS: ParamStruct = {
  name: "add_ln",
  fields: [
    ["rows", "i32", "rows handled by this call"],
    ["cols", "i32", "the normalised last axis"],
    ["ld", "i32", "row stride of x, y, s and ln (= cols)"],
    ["eps", "f32", "LayerNorm epsilon"],
    ["p", "f32", "drop probability of y in [0, 1) (0: none)"],
    ["alpha", "f32", "scale of the dropped-out y (1 with p 0: a plain add)"],
    ["seed", "i32", "run seed"],
    ["stream", "i32", "which mask of the run"],
    [
      "row0",
      "i32",
      "global row of this call's first row (thread split): mask index (row0 + r) cols + j",
    ],
    ["y_bf16", "i32", "1: ln written as packed bf16 (nearest even)"],
  ],
};

export const CTC_PARAMS: ParamStruct = {
  name: "ctc",
  fields: [
    ["batch", "i32", "utterances handled by this call"],
    ["time", "i32", "padded frames T"],
    ["vocab", "i32", "classes V"],
    ["max_target", "i32", "padded target length S"],
    ["lattice", "i32", "2 S + 1"],
    ["blank", "i32", "blank id (0)"],
    ["zero_infinity", "i32", "1: an infeasible utterance gets loss 0 and gradient 0"],
    [
      "grad_scale",
      "f32",
      "factor of the gradient (1 / batch times the loss weight), applied to each state's " +
      "occupancy in float64 before it is rounded",
    ],
  ],
};

export const LOSS_PARAMS: ParamStruct = {
  name: "loss",
  fields: [
    ["rows", "i32", "positions handled by this call"],
    ["vocab", "i32", "classes V"],
    ["smoothing", "f32", "label smoothing eps (0: NLL)"],
    ["grad_scale", "f32", "factor of the gradient, applied in float64 before it is rounded"],
  ],
};

export const ADAM_PARAMS: ParamStruct = {
  name: "adam",
  fields: [
    ["n", "i32", "elements"],
    ["beta1", "f32", "first-moment decay"],
    ["beta2", "f32", "second-moment decay"],
    ["eps", "f32", "added to the root of the bias-corrected second moment"],
    ["weight_decay", "f32", "Adam's L2 term (g += wd p) when not decoupled"],
    ["decoupled", "i32", "1: AdamW, p *= decay_factor first; 0: Adam"],
    ["decay_factor", "f32", "1 - lr wd (computed in float64 by the caller, as PyTorch does)"],
    ["step_size", "f32", "lr / (1 - beta1^step)"],
    ["bc2_sqrt", "f32", "sqrt(1 - beta2^step)"],
    ["grad_scale", "f32", "multiplies the gradient first (the clipping coefficient, or 1)"],
  ],
};

export const BLOCKS_PARAMS: ParamStruct = {
  name: "blocks",
  fields: [
    ["blocks", "i32", "blocks handled by this call"],
    ["block", "i32", "elements per block (the last one may be shorter)"],
    ["n", "i32", "elements of the whole vector"],
    ["first_block", "i32", "index of this call's first block (set by the thread split)"],
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

export const RESAMPLE_PARAMS: ParamStruct = {
  name: "resample",
  fields: [
    ["rows", "i32", "output blocks computed by this call (one per `orig` input samples)"],
    ["cols", "i32", "output samples per block (the new rate's factor)"],
    ["ld", "i32", "row stride of the output"],
    ["row0", "i32", "index of this call's first block"],
    ["n_in", "i32", "input samples"],
    ["taps", "i32", "kernel length per phase (2 width + orig)"],
    ["orig", "i32", "input samples per block (the old rate's factor)"],
    ["width", "i32", "taps before the block start"],
  ],
};

export const GATHER_PARAMS: ParamStruct = {
  name: "gather",
  fields: [
    ["rows", "i32", "ids handled by this call"],
    ["cols", "i32", "columns handled by this call"],
    ["ld", "i32", "row stride of the table and of y, dy (the embedding width)"],
    ["vocab", "i32", "rows of the table"],
  ],
};

export const TIME_COPY_PARAMS: ParamStruct = {
  name: "time_copy",
  fields: [
    ["batch", "i32", "sequences handled by this call"],
    ["len", "i32", "time steps copied"],
    ["width", "i32", "features per time step"],
    ["x_seqlen", "i32", "time steps of x"],
    ["x_t0", "i32", "first time step read from x"],
    ["y_seqlen", "i32", "time steps of y"],
    ["y_t0", "i32", "first time step written in y"],
  ],
};

export const SWAP_PARAMS: ParamStruct = {
  name: "swap",
  fields: [
    ["batch", "i32", "leading blocks handled by this call"],
    ["d1", "i32", "first swapped axis of x"],
    ["d2", "i32", "second swapped axis of x"],
    ["inner", "i32", "contiguous elements moved together (1: a plain transpose)"],
    ["y_bf16", "i32", "1: y written as packed bf16 (nearest even; for a matmul alone)"],
  ],
};

export const ATTN_PARAMS: ParamStruct = {
  name: "attn",
  fields: [
    ["rows", "i32", "score rows handled by this call (of batch * heads * tq)"],
    ["cols", "i32", "keys S"],
    ["tq", "i32", "queries per (batch, head)"],
    ["heads", "i32", "heads H"],
    ["causal", "i32", "1: key j > query i is masked (self-attention, tq == S)"],
    ["row0", "i32", "global index of this call's first row (set by the thread split)"],
    ["scale", "f32", "multiplies the raw scores before the mask and the softmax"],
  ],
};

export const AXIS_PARAMS: ParamStruct = {
  name: "axis",
  fields: [
    ["outer", "i32", "blocks before the reduced axis handled by this call"],
    ["n", "i32", "length of the reduced axis"],
    ["inner", "i32", "elements after the reduced axis"],
    ["divisor", "f32", "the sum is divided by this (1: sum, n: mean)"],
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
/** An argument of an axis-split op: it moves by `move` elements per unit of the split axis. */
const ax = (name: string, dir: OpArg["dir"], shape: string, move: string): OpArg => ({
  name,
  dir,
  shape,
  move,
});

export const OPS: readonly OpSpec[] = [
  {
    name: "matmul",
    params: MATMUL_PARAMS,
    split: "matmul_rows",
    splitBase: "row0",
    args: [
      { ...fin("a", "(batch, m, k) or (batch, k, m)"), packedIf: "a_bf16" },
      { ...fin("b", "(batch, k, n) or (batch, n, k)"), packedIf: "b_bf16" },
      { name: "bias", dir: "in", optional: true, shape: "(n)" },
      finout("c", "(batch, m, n)"),
      { name: "y", dir: "out", optional: true, shape: "(m, n)", packedIf: "y_bf16" },
    ],
    doc: "C = op(A) op(B) (+ C when accumulate) (+ bias per column). Each C element is a " +
      "sequential float32 sum over k in order, whatever the blocking or thread split. A packed " +
      "bf16 operand (a_bf16 / b_bf16, bf16 mode only) holds element e at bf16 index e from its " +
      "pointer (two per float32 slot, bf16_pack's layout); lda, ldb and strides count elements " +
      "either way, so it gives the same C as its float32 widening. With epilogue 1, also " +
      "y = dropout(gelu(C)) element by element, the bits of gelu_dropout_forward on C with " +
      "index0 = row0 n (the FFN's first Linear, GELU and dropout: y without a pass re-reading C).",
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
    args: [fin("x", "(n)"), { ...fout("y", "(n)"), packedIf: "y_bf16" }],
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
    args: [fin("x", "(n)"), { ...fout("y", "(n)"), packedIf: "y_bf16" }],
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
      { ...fout("y", "(rows, ld)", M), packedIf: "y_bf16" },
      fout("mean", "(rows)", R),
      fout("rstd", "(rows)", R),
    ],
    doc:
      "LayerNorm over the last axis (CONMAMBA_SPEC.md 4.16): y = (x - mean) rstd gamma + beta, " +
      "rstd = 1 / sqrt(biased var + eps); saves mean and rstd for the backward. With y_bf16, y " +
      "is the float32 value rounded to packed bf16 (an input only matmuls read, in bf16 mode).",
  },
  {
    name: "dropout_add_layernorm",
    params: ADD_LN_PARAMS,
    split: "rows",
    splitBase: "row0",
    args: [
      fin("x", "(rows, ld)", M),
      fin("y", "(rows, ld)", M),
      fin("gamma", "(cols)", C),
      fin("beta", "(cols)", C),
      fout("s", "(rows, ld)", M),
      { ...fout("ln", "(rows, ld)", M), packedIf: "y_bf16" },
      fout("mean", "(rows)", R),
      fout("rstd", "(rows)", R),
    ],
    doc: "A residual sum and the LayerNorm after it in one pass: s = x + alpha dropout(y), " +
      "dropout_add's bits with mask index (row0 + r) cols + j (p 0, alpha 1: the bits of add), " +
      "then ln, mean, rstd = layernorm_forward of s (its bits; ln packed bf16 with y_bf16). " +
      "The LayerNorm reads s from the pass that wrote it, not from memory again.",
  },
  {
    name: "layernorm_backward",
    params: LN_BACKWARD_PARAMS,
    split: { axis: "chunks", unit: 1, work: "chunk_rows*cols" },
    splitBase: "chunk0",
    args: [
      ax("x", "in", "(rows, ld)", "chunk_rows*ld"),
      ax("gamma", "in", "(cols)", "0"),
      ax("mean", "in", "(rows)", "chunk_rows"),
      ax("rstd", "in", "(rows)", "chunk_rows"),
      ax("dy", "in", "(rows, ld)", "chunk_rows*ld"),
      ax("dx", "inout", "(rows, ld)", "chunk_rows*ld"),
      ax("part", "out", "(chunks, 2, cols): per chunk, sum dy xhat then sum dy", "2*cols"),
    ],
    doc: "One pass over x and dy: dx (+)= rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma, " +
      "per row; and the parameter gradients' partial sums per chunk of chunk_rows rows, in a " +
      "fixed order: the chunk's 8 groups of chunk_rows / 8 consecutive rows are each summed in " +
      "row order from 0, then added from 0 in group order (terms dy * ((x - mean) * rstd) and " +
      "dy, each rounded). dgamma and dbeta are sum_rows over the chunks (layerNormBackward).",
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
  // ---- model ops (issue 3): Mamba core, convolutions, dropout, losses, optimiser ----
  {
    name: "exp_forward",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("x", "(n)"), fout("y", "(n)")],
    doc: "y = exp(x) (A = -exp(A_log)); its backward is dy * y (mul).",
  },
  {
    name: "leaky_relu_forward",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("x", "(n)"), fout("y", "(n)")],
    doc: "y = x > 0 ? x : alpha x (CNN front end, alpha 0.01, CONMAMBA_SPEC.md 4.2).",
  },
  {
    name: "leaky_relu_backward",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fin("x", "(n)"), fin("dy", "(n)"), fout("dx", "(n)")],
    doc: "dx = x > 0 ? dy : alpha dy.",
  },
  {
    name: "glu_forward",
    params: ROWS_PARAMS,
    split: { axis: "rows", work: "cols" },
    args: [ax("x", "in", "(rows, 2 cols)", "2*cols"), ax("y", "out", "(rows, cols)", "cols")],
    doc: "y = x[:, :cols] sigmoid(x[:, cols:]) (GLU over channels, CONMAMBA_SPEC.md 4.6).",
  },
  {
    name: "glu_backward",
    params: CHUNKED_ROWS_PARAMS,
    split: { axis: "chunks", unit: 1, work: "chunk_rows*cols" },
    splitBase: "chunk0",
    args: [
      ax("x", "in", "(rows, 2 cols)", "chunk_rows*2*cols"),
      ax("dy", "in", "(rows, cols)", "chunk_rows*cols"),
      { ...ax("dx", "out", "(rows, 2 cols)", "chunk_rows*2*cols"), packedIf: "out_bf16" },
      {
        ...ax("part", "out", "(chunks, 2 cols): per chunk, the column sums of dx", "2*cols"),
        optional: true,
      },
    ],
    doc: "dx[:, :cols] = dy s, dx[:, cols:] = dy a s (1 - s), a = x[:, :cols], " +
      "s = sigmoid(x[:, cols:]). With part, also dx's column sums per chunk in " +
      "gelu_dropout_backward's order (the bias gradient of the pointwise conv before the GLU).",
  },
  {
    name: "dropout",
    params: DROPOUT_PARAMS,
    split: { axis: "n", unit: 4, work: "1" },
    splitBase: "index0",
    args: [ax("x", "in", "(n)", "1"), { ...ax("y", "out", "(n)", "1"), packedIf: "y_bf16" }],
    doc:
      "y = keep ? x / (1 - p) : 0, keep = hash(seed, stream, index0 + i) >= p (a counter-based " +
      "draw: the mask depends on neither threads nor call order). The backward is this same op " +
      "on dy with the same seed and stream. With y_bf16, y rounded to packed bf16 (attention " +
      "probabilities that only the product with V reads, in bf16 mode).",
  },
  {
    name: "leaky_relu_dropout_forward",
    params: DROPOUT_ADD_PARAMS,
    split: { axis: "n", unit: 4, work: "1" },
    splitBase: "index0",
    args: [ax("x", "in", "(n)", "1"), ax("y", "out", "(n)", "1")],
    doc: "y = dropout(leaky_relu(x)) in one pass, alpha the slope: leaky_relu_forward's value, " +
      "then dropout's mask and product, the bits of the two ops in sequence (the CNN front end).",
  },
  {
    name: "leaky_relu_dropout_backward",
    params: DROPOUT_ADD_PARAMS,
    split: { axis: "n", unit: 4, work: "1" },
    splitBase: "index0",
    args: [ax("x", "in", "(n)", "1"), ax("dy", "in", "(n)", "1"), ax("dx", "out", "(n)", "1")],
    doc: "dx = leaky_relu_backward(x, dropout(dy)) in one pass, the bits of the two ops in " +
      "sequence; x is the LeakyReLU's input.",
  },
  {
    name: "gelu_dropout_forward",
    params: DROPOUT_PARAMS,
    split: { axis: "n", unit: 4, work: "1" },
    splitBase: "index0",
    args: [ax("x", "in", "(n)", "1"), { ...ax("y", "out", "(n)", "1"), packedIf: "y_bf16" }],
    doc:
      "y = dropout(gelu(x)) in one pass: gelu_forward's float32 value, then dropout's mask and " +
      "product, the bits of the two ops in sequence (the FFN's inner activation). With y_bf16, " +
      "y is that value rounded to packed bf16 (the next Linear's input, in bf16 mode).",
  },
  {
    name: "gelu_dropout_backward",
    params: DROPOUT_ROWS_PARAMS,
    split: { axis: "chunks", unit: 1, work: "chunk_rows*cols" },
    splitBase: "chunk0",
    args: [
      ax("x", "in", "(rows, cols)", "chunk_rows*cols"),
      ax("dy", "in", "(rows, cols)", "chunk_rows*cols"),
      { ...ax("dx", "out", "(rows, cols)", "chunk_rows*cols"), packedIf: "out_bf16" },
      {
        ...ax("part", "out", "(chunks, cols): per chunk, the column sums of dx", "cols"),
        optional: true,
      },
    ],
    doc:
      "dx = gelu_backward(x, dropout(dy)) in one pass, the bits of the two ops in sequence (the " +
      "mask of element (r, j) is dropout's at index r cols + j); x is the GELU's input. With " +
      "part, also dx's column sums per chunk of chunk_rows rows in layernorm_backward's order " +
      "(the bias gradient of the Linear before the GELU, src/tensor/chunk_sums.ts).",
  },
  {
    name: "dropout_add",
    params: DROPOUT_ADD_PARAMS,
    split: { axis: "n", unit: 4, work: "1" },
    splitBase: "index0",
    args: [ax("x", "in", "(n)", "1"), ax("y", "in", "(n)", "1"), ax("s", "out", "(n)", "1")],
    doc:
      "s = x + alpha dropout(y) in one pass (a residual around a dropped-out branch): dropout's " +
      "mask and product, then alpha times it, then the sum, each rounded as the three ops in " +
      "sequence. The backward is dx = ds and dy = scale_dropout(ds).",
  },
  {
    name: "scale_dropout",
    params: DROPOUT_ROWS_PARAMS,
    split: { axis: "chunks", unit: 1, work: "chunk_rows*cols" },
    splitBase: "chunk0",
    args: [
      ax("x", "in", "(rows, cols)", "chunk_rows*cols"),
      { ...ax("y", "out", "(rows, cols)", "chunk_rows*cols"), packedIf: "out_bf16" },
      {
        ...ax("part", "out", "(chunks, cols): per chunk, the column sums of y", "cols"),
        optional: true,
      },
    ],
    doc: "y = dropout(alpha x) in one pass (dropout_add's backward for its branch): the bits of " +
      "scale then dropout, the mask of element (r, j) at index r cols + j. With part, also y's " +
      "column sums per chunk in gelu_dropout_backward's order (the bias gradient of the Linear " +
      "that ends the branch).",
  },
  {
    name: "bf16_pack",
    params: BF16_PARAMS,
    split: { axis: "pairs", work: "2" },
    args: [ax("x", "in", "(2 pairs)", "2"), ax("y", "out", "(pairs) as (2 pairs) bf16", "1")],
    doc:
      "y = x rounded to bf16, nearest even (NaN stays NaN), two per float32 slot, element 2i in " +
      "the low half: a saved matmul operand kept at half the memory in bf16 matmul mode.",
  },
  {
    name: "bf16_unpack",
    params: BF16_PARAMS,
    split: { axis: "pairs", work: "2" },
    args: [ax("x", "in", "(pairs) as (2 pairs) bf16", "1"), ax("y", "out", "(2 pairs)", "2")],
    doc: "y = x widened to float32 (exact): the inverse of bf16_pack up to its rounding.",
  },
  {
    name: "flip_time",
    params: SEQ_PARAMS,
    split: { axis: "batch", work: "seqlen*width" },
    args: [
      ax("x", "in", "(batch, seqlen, width)", "seqlen*width"),
      ax("y", "out", "(batch, seqlen, width)", "seqlen*width"),
    ],
    doc: "y[b, t] = x[b, T - 1 - t] (BiMamba's backward direction, CONMAMBA_SPEC.md 4.9); its " +
      "own backward. y must not alias x.",
  },
  {
    name: "masked_fill_time",
    params: MASK_PARAMS,
    split: { axis: "batch", work: "seqlen*width" },
    args: [
      ax("x", "in", "(batch, seqlen, width)", "seqlen*width"),
      ax("lengths", "in", "(batch): valid frames per sequence, exact floats", "1"),
      ax("y", "out", "(batch, seqlen, width)", "seqlen*width"),
    ],
    doc: "y[b, t] = x[b, t] for t < lengths[b], else value (the Conformer's conv-module output " +
      "at padded frames, CONMAMBA_SPEC.md 4.6); the backward is this op on dy with value 0. " +
      "y may alias x.",
  },
  {
    name: "conv1d_depthwise_forward",
    params: CONV1D_PARAMS,
    split: { axis: "channels", unit: 4, work: "batch*seqlen*kernel" },
    args: [
      ax("x", "in", "(batch, seqlen, ld_x)", "1"),
      ax("w", "in", "(channels, kernel)", "kernel"),
      { ...ax("bias", "in", "(channels)", "1"), optional: true },
      ax("y", "out", "(batch, seqlen, channels)", "1"),
    ],
    doc: "y[b, t, c] = act(bias[c] + sum_j w[c, j] x[b, t - pad_left + j, c]), x = 0 outside " +
      "[0, T): Mamba's causal conv (K 4, SiLU, CONMAMBA_SPEC.md 4.7) and the conv module's " +
      "'same' conv (K 31, no activation, 4.6). y has row stride channels of the whole call.",
  },
  {
    name: "conv1d_depthwise_backward",
    params: CONV1D_PARAMS,
    split: { axis: "channels", unit: 4, work: "batch*seqlen*kernel" },
    args: [
      ax("x", "in", "(batch, seqlen, ld_x)", "1"),
      ax("w", "in", "(channels, kernel)", "kernel"),
      { ...ax("bias", "in", "(channels)", "1"), optional: true },
      ax("dy", "in", "(batch, seqlen, channels)", "1"),
      ax("dpre", "out", "(batch, seqlen, channels): scratch, dL/d(pre-activation)", "1"),
      ax("dx", "out", "(batch, seqlen, ld_x)", "1"),
      ax("dw", "out", "(channels, kernel)", "kernel"),
      ax("dbias", "out", "(channels)", "1"),
    ],
    doc: "Gradients of conv1d_depthwise_forward (the activation's input is recomputed); dw and " +
      "dbias sum over batch then time, in order.",
  },
  {
    name: "selective_scan_forward",
    params: SCAN_PARAMS,
    split: { axis: "channels", unit: 4, work: "batch*seqlen*dstate" },
    args: [
      ax("u", "in", "(batch, seqlen, ld_u)", "1"),
      ax("delta", "in", "(batch, seqlen, ld_u)", "1"),
      ax("A", "in", "(channels, dstate)", "dstate"),
      ax("B", "in", "(batch, seqlen, ld_bc)", "0"),
      ax("C", "in", "(batch, seqlen, ld_bc)", "0"),
      { ...ax("D", "in", "(channels)", "1"), optional: true },
      { ...ax("z", "in", "(batch, seqlen, ld_z)", "1"), optional: true },
      { ...ax("delta_bias", "in", "(channels)", "1"), optional: true },
      { ...ax("out", "out", "(batch, seqlen, ld_u)", "1"), packedIf: "out_bf16" },
      ax("states", "out", "(batch, nchunks, channels of the call, dstate)", "dstate"),
      { ...ax("other", "in", "(batch, seqlen, ld_u)", "1"), optional: true },
    ],
    doc: "The Mamba recurrence (CONMAMBA_SPEC.md 4.7): d = softplus(delta + delta_bias), " +
      "h_t = exp(d A) h_(t-1) + d B_t u_t, y_t = C_t . h_t + D u_t, out = y silu(z). Saves " +
      "h at the start of every chunk for the backward. states' row stride is the whole call's " +
      "channels * dstate. With half, out = 0.5 y silu(z), then + other when given: BiMamba's " +
      "average of its two directions, each scan writing its half and the second adding the " +
      "first's (for finite normal values the bits of (o_f + o_b) 0.5, a power-of-two scaling " +
      "commuting with rounding). With out_bf16, out is that value rounded to packed bf16.",
  },
  {
    name: "selective_scan_backward",
    params: SCAN_PARAMS,
    split: { axis: "batch", work: "seqlen*channels*dstate" },
    args: [
      ax("u", "in", "(batch, seqlen, ld_u)", "seqlen*ld_u"),
      ax("delta", "in", "(batch, seqlen, ld_u)", "seqlen*ld_u"),
      ax("A", "in", "(channels, dstate)", "0"),
      ax("B", "in", "(batch, seqlen, ld_bc)", "seqlen*ld_bc"),
      ax("C", "in", "(batch, seqlen, ld_bc)", "seqlen*ld_bc"),
      { ...ax("D", "in", "(channels)", "0"), optional: true },
      { ...ax("z", "in", "(batch, seqlen, ld_z)", "seqlen*ld_z"), optional: true },
      { ...ax("delta_bias", "in", "(channels)", "0"), optional: true },
      ax("states", "in", "(batch, nchunks, channels, dstate)", "nchunks*channels*dstate"),
      ax("dout", "in", "(batch, seqlen, ld_u)", "seqlen*ld_u"),
      ax("du", "out", "(batch, seqlen, ld_u)", "seqlen*ld_u"),
      ax("ddelta", "out", "(batch, seqlen, ld_u)", "seqlen*ld_u"),
      ax("dA", "out", "(batch, channels, dstate): per-sequence partial sums", "channels*dstate"),
      ax("dB", "out", "(batch, seqlen, ld_bc)", "seqlen*ld_bc"),
      ax("dC", "out", "(batch, seqlen, ld_bc)", "seqlen*ld_bc"),
      {
        ...ax("dD", "out", "(batch, channels): per-sequence partial sums", "channels"),
        optional: true,
      },
      { ...ax("dz", "out", "(batch, seqlen, ld_z)", "seqlen*ld_z"), optional: true },
      {
        ...ax("ddelta_bias", "out", "(batch, channels): per-sequence partial sums", "channels"),
        optional: true,
      },
    ],
    doc: "Gradients of selective_scan_forward: states are recomputed chunk by chunk from the " +
      "saved ones (no (T, Ns) state per channel is stored). Parameter gradients come out per " +
      "sequence; the caller sums them over the batch (sum_rows), so no two threads add into one " +
      "value.",
  },
  {
    name: "im2col_reflect",
    params: IM2COL_PARAMS,
    split: { axis: "batch", work: "time_out*freq_out*channels*ksize*ksize" },
    args: [
      ax("x", "in", "(batch, time, freq, channels)", "time*freq*channels"),
      ax(
        "cols",
        "out",
        "(batch, time_out, freq_out, channels*ksize*ksize)",
        "time_out*freq_out*channels*ksize*ksize",
      ),
    ],
    doc:
      "cols[b, t, f, (ci kf + kf') k + kt] = x[b, r(s t - pad + kt), r(s f - pad + kf), ci], r " +
      "reflecting at both ends (CONMAMBA_SPEC.md 4.2: H = freq, W = time, weight (out, in, " +
      "k_freq, k_time)); a conv2d is then cols . W^T + bias.",
  },
  {
    name: "col2im_reflect",
    params: IM2COL_PARAMS,
    split: { axis: "batch", work: "time_out*freq_out*channels*ksize*ksize" },
    args: [
      ax(
        "cols",
        "in",
        "(batch, time_out, freq_out, channels*ksize*ksize)",
        "time_out*freq_out*channels*ksize*ksize",
      ),
      ax("x", "out", "(batch, time, freq, channels)", "time*freq*channels"),
    ],
    doc:
      "The adjoint of im2col_reflect: x = sum of the cols entries that read it, in a fixed order.",
  },
  {
    name: "ctc_loss",
    params: CTC_PARAMS,
    split: { axis: "batch", work: "time*lattice" },
    args: [
      ax("log_probs", "in", "(batch, time, vocab)", "time*vocab"),
      ax("targets", "in", "(batch, max_target): ids as floats", "max_target"),
      ax("input_lengths", "in", "(batch)", "1"),
      ax("target_lengths", "in", "(batch)", "1"),
      ax("loss", "out", "(batch)", "1"),
      ax("grad", "out", "(batch, time, vocab): d loss_b / d log_probs", "time*vocab"),
      ax("scratch", "out", "(batch, 4 time lattice): alpha and beta in float64", "4*time*lattice"),
    ],
    doc: "Per-utterance CTC negative log-likelihood (CONMAMBA_SPEC.md 7.1) by the log-space " +
      "forward-backward in float64, and grad_scale times its gradient with respect to " +
      "log_probs taken as free inputs (minus the state occupancy; 0 past the input length).",
  },
  {
    name: "smoothed_nll",
    params: LOSS_PARAMS,
    split: { axis: "rows", work: "vocab" },
    args: [
      ax("log_probs", "in", "(rows, vocab)", "vocab"),
      ax("targets", "in", "(rows): ids as floats", "1"),
      ax("weights", "in", "(rows): 1 to count the position, 0 to skip it", "1"),
      ax("loss", "out", "(rows)", "1"),
      ax("grad", "out", "(rows, vocab): d loss_r / d log_probs", "vocab"),
    ],
    doc: "loss_r = w_r sum_k q(k) (log q(k) - log_probs[r, k]), q = 1 - eps at the target and " +
      "eps / (V - 1) elsewhere (CONMAMBA_SPEC.md 7.2, 13 G17: the KL with its entropy term); " +
      "eps = 0 gives the NLL.",
  },
  {
    name: "adam_step",
    params: ADAM_PARAMS,
    split: "elements",
    args: [finout("param", "(n)"), fin("grad", "(n)"), finout("m", "(n)"), finout("v", "(n)")],
    doc: "One Adam/AdamW update as PyTorch 2.0.1 (CONMAMBA_SPEC.md 8.1): g = grad_scale grad " +
      "(+ wd p for Adam); p *= decay_factor (AdamW); m += (1 - beta1) (g - m); v = beta2 v + " +
      "(1 - beta2) g g; p += -step_size m / (sqrt(v) / bc2_sqrt + eps).",
  },
  {
    name: "sum_squares_blocks",
    params: BLOCKS_PARAMS,
    split: { axis: "blocks", work: "block" },
    splitBase: "first_block",
    args: [ax("x", "in", "(n)", "block"), ax("partial", "out", "(blocks)", "1")],
    doc:
      "partial[j] = sum of x^2 over block j, in order (the caller adds the partials in float64: " +
      "gradient-norm clipping without atomics).",
  },
  // ---- layout, embedding, attention, reductions (issue 3) ----
  {
    name: "embedding_forward",
    params: GATHER_PARAMS,
    split: { axis: "rows", work: "cols" },
    args: [
      ax("table", "in", "(vocab, ld)", "0"),
      ax("ids", "in", "(rows): ids as floats", "1"),
      ax("y", "out", "(rows, ld)", "ld"),
    ],
    doc: "y[r] = table[ids[r]] (CONMAMBA_SPEC.md 4.13, nn.Embedding without padding_idx); a row " +
      "whose id is not an integer in [0, vocab) is zeros (the caller rejects such ids first).",
  },
  {
    name: "embedding_backward",
    params: GATHER_PARAMS,
    split: { axis: "cols", unit: 4, work: "rows" },
    args: [
      ax("ids", "in", "(rows): ids as floats", "0"),
      ax("dy", "in", "(rows, ld)", "1"),
      ax("dtable", "out", "(vocab, ld)", "1"),
    ],
    doc: "dtable = 0, then dtable[ids[r]] += dy[r] for r in order: a thread owns a range of " +
      "columns of every table row, so no two threads add into one value and repeated ids are " +
      "summed in the same order for any thread count.",
  },
  {
    name: "copy_time",
    params: TIME_COPY_PARAMS,
    split: { axis: "batch", work: "len*width" },
    args: [
      ax("x", "in", "(batch, x_seqlen, width)", "x_seqlen*width"),
      ax("y", "inout", "(batch, y_seqlen, width)", "y_seqlen*width"),
    ],
    doc: "y[b, y_t0 + t] = x[b, x_t0 + t] for t < len; the rest of y is left as it is. Slicing " +
      "and concatenation along time (the Mamba decoder's [memory; LN(target)], CONMAMBA_SPEC.md " +
      "4.12) and their backward.",
  },
  {
    name: "fill",
    params: ELEMENTWISE_PARAMS,
    split: "elements",
    args: [fout("y", "(n)")],
    doc: "y = alpha.",
  },
  {
    name: "swap_axes",
    params: SWAP_PARAMS,
    split: { axis: "batch", work: "d1*d2*inner" },
    args: [
      ax("x", "in", "(batch, d1, d2, inner)", "d1*d2*inner"),
      { ...ax("y", "out", "(batch, d2, d1, inner)", "d1*d2*inner"), packedIf: "y_bf16" },
    ],
    doc: "y[n, j, i] = x[n, i, j]: heads out of and back into the feature axis ((B, T, H, dh) " +
      "<-> (B, H, T, dh)) and, with inner 1, a transpose of the last two axes. Its backward is " +
      "itself with d1 and d2 exchanged. y must not alias x. With y_bf16, y rounded to packed bf16 " +
      "(attention's heads, which only matmuls read, in bf16 mode).",
  },
  {
    name: "attn_softmax_forward",
    params: ATTN_PARAMS,
    split: { axis: "rows", work: "cols" },
    splitBase: "row0",
    args: [
      ax("x", "in", "(batch, heads, tq, cols): raw scores", "cols"),
      { ...ax("key_lengths", "in", "(batch): keys j >= length are masked", "0"), optional: true },
      { ...ax("key_mask", "in", "(batch, cols): added to the scaled scores", "0"), optional: true },
      ax("y", "out", "(batch, heads, tq, cols)", "cols"),
    ],
    doc: "y = softmax over keys of scale x + key_mask, masked keys (causal, past the length, or " +
      "a key_mask of -inf) excluded, in fp32 (CONMAMBA_SPEC.md 4.10-4.11, 4.14). A row with " +
      "every key masked is zeros (PyTorch gives NaN there).",
  },
  {
    name: "attn_softmax_backward",
    params: ATTN_PARAMS,
    split: { axis: "rows", work: "cols" },
    splitBase: "row0",
    args: [
      ax("y", "in", "(rows, cols)", "cols"),
      ax("dy", "in", "(rows, cols)", "cols"),
      ax("dx", "out", "(rows, cols): gradient of the raw scores", "cols"),
    ],
    doc: "dx = scale y (dy - sum(dy y)), per row; masked keys have y = 0 and get 0.",
  },
  {
    name: "rel_shift_forward",
    params: SEQ_PARAMS,
    split: { axis: "batch", work: "seqlen*seqlen" },
    args: [
      ax("x", "in", "(batch, seqlen, width = 2 seqlen - 1): BD_raw", "seqlen*width"),
      ax("y", "out", "(batch, seqlen, seqlen)", "seqlen*seqlen"),
    ],
    doc: "RelPosMHAXL's relative shift (CONMAMBA_SPEC.md 4.10): y[n, i, j] = x[n, i, S - 1 - i + " +
      "j], S = seqlen, n over batch * heads.",
  },
  {
    name: "rel_shift_backward",
    params: SEQ_PARAMS,
    split: { axis: "batch", work: "seqlen*width" },
    args: [
      ax("dy", "in", "(batch, seqlen, seqlen)", "seqlen*seqlen"),
      ax("dx", "out", "(batch, seqlen, width = 2 seqlen - 1)", "seqlen*width"),
    ],
    doc: "dx[n, i, S - 1 - i + j] = dy[n, i, j], 0 at the positions the shift does not read.",
  },
  {
    name: "sum_axis",
    params: AXIS_PARAMS,
    split: { axis: "outer", work: "n*inner" },
    args: [
      ax("x", "in", "(outer, n, inner)", "n*inner"),
      ax("y", "out", "(outer, inner)", "inner"),
    ],
    doc: "y[o, k] = (sum_i x[o, i, k], i in order) / divisor: sum (divisor 1) or mean (n).",
  },
  {
    name: "broadcast_axis",
    params: AXIS_PARAMS,
    split: { axis: "outer", work: "n*inner" },
    args: [
      ax("x", "in", "(outer, inner)", "inner"),
      ax("y", "out", "(outer, n, inner)", "n*inner"),
    ],
    doc: "y[o, i, k] = x[o, k] / divisor: the backward of sum_axis.",
  },
  {
    name: "max_last",
    params: ROWS_PARAMS,
    split: "rows",
    args: [fin("x", "(rows, ld)", M), fout("y", "(rows)", R), fout("index", "(rows)", R)],
    doc: "y[r] = max_j x[r, j], index[r] = the first j that attains it (as a float).",
  },
  // ---- filterbank features (src/audio/fbank.ts) ----
  {
    name: "fbank_forward",
    params: FBANK_PARAMS,
    split: "rows",
    splitBase: "row0",
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
  {
    name: "resample_forward",
    params: RESAMPLE_PARAMS,
    split: "rows",
    splitBase: "row0",
    args: [
      fin("x", "(n_in)"),
      fin("kernels", "(cols, taps)"),
      fout("y", "(rows, ld)", M),
    ],
    doc: "Polyphase resampling (torchaudio Resample, CONMAMBA_SPEC.md 8.7): y[b, j] = sum_t " +
      "kernels[j, t] x[(row0 + b) orig + t - width], zero outside the input; double sums.",
  },
];

export const PARAM_STRUCTS: readonly ParamStruct[] = [
  MATMUL_PARAMS,
  ELEMENTWISE_PARAMS,
  ROWS_PARAMS,
  LN_BACKWARD_PARAMS,
  SCAN_PARAMS,
  CONV1D_PARAMS,
  SEQ_PARAMS,
  IM2COL_PARAMS,
  MASK_PARAMS,
  DROPOUT_PARAMS,
  CHUNKED_ROWS_PARAMS,
  DROPOUT_ROWS_PARAMS,
  DROPOUT_ADD_PARAMS,
  ADD_LN_PARAMS,
  BF16_PARAMS,
  CTC_PARAMS,
  LOSS_PARAMS,
  ADAM_PARAMS,
  BLOCKS_PARAMS,
  FBANK_PARAMS,
  RESAMPLE_PARAMS,
  GATHER_PARAMS,
  TIME_COPY_PARAMS,
  SWAP_PARAMS,
  ATTN_PARAMS,
  AXIS_PARAMS,
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
