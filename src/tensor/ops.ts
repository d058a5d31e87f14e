/**
 * Ops on Tensors: shapes are checked here, once, and each op becomes one kernel call with its
 * parameter struct (ffi/ops.ts). Outputs are "step" tensors unless `out` is given. Backward
 * functions take the saved forward values and the upstream gradient and return input gradients.
 */
import { runChunked } from "./chunk_sums.ts";
import { tensorArg } from "./col_view.ts";
import { checkDropout } from "./dropout.ts";
import { type DType, ShapeError, Tensor } from "./tensor.ts";

function sameShape(name: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`${name}: shapes [${a.shape}] and [${b.shape}] differ`);
  }
}

function lastDim(name: string, x: Tensor): { rows: number; cols: number } {
  if (x.shape.length === 0) throw new ShapeError(`${name}: needs at least one axis`);
  const cols = x.shape[x.shape.length - 1];
  return { rows: cols === 0 ? 0 : x.size / cols, cols };
}

function outOr(out: Tensor | undefined, like: Tensor, shape = like.shape): Tensor {
  if (out) {
    if (out.size !== like.size && shape === like.shape) {
      throw new ShapeError(`out has ${out.size} elements, expected ${like.size}`);
    }
    return out;
  }
  return Tensor.empty(like.backend, shape);
}

const arg = tensorArg;

// ---- matmul --------------------------------------------------------------------------------

export interface MatmulOptions {
  /** a is stored (..., K, M) and used transposed. */
  transA?: boolean;
  /** b is stored (..., N, K) and used transposed (e.g. a weight (out, in) as nn.Linear keeps it). */
  transB?: boolean;
  /** (N) added to every row. */
  bias?: Tensor | null;
  /** C += ...: `out` must be given. */
  accumulate?: boolean;
  out?: Tensor;
  /**
   * Also y = dropout(gelu(C)) in the product's epilogue (the matmul's epilogue 1: the bits of
   * gelu_dropout_forward on C, without a pass re-reading C): 2-D operands only; y shaped like C,
   * float32 or packed bf16.
   */
  geluDropout?: { dropout: { p: number; seed: number; stream: number }; y: Tensor };
}

/**
 * op(a) op(b) (+ bias). a: (..., M, K) (or (..., K, M) with transA), b: (..., K, N) (or
 * (..., N, K) with transB); a 2-D operand is shared by every batch of the other; batched operands
 * must have equal leading dims. Result (..., M, N). In bf16 matmul mode a or b may be packed bf16
 * (dtype "bf16", src/tensor/bf16.ts): read as such, the same result as its float32 widening.
 */
export function matmul(a: Tensor, b: Tensor, o: MatmulOptions = {}): Tensor {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new ShapeError(`matmul: operands need 2 or more axes, got [${a.shape}] and [${b.shape}]`);
  }
  const [ra, ca] = a.shape.slice(-2), [rb, cb] = b.shape.slice(-2);
  const [m, k] = o.transA ? [ca, ra] : [ra, ca];
  const [kb, n] = o.transB ? [cb, rb] : [rb, cb];
  if (k !== kb) throw new ShapeError(`matmul: inner dims differ, [${a.shape}] and [${b.shape}]`);
  const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
  if (batchA.length > 0 && batchB.length > 0 && batchA.join() !== batchB.join()) {
    throw new ShapeError(`matmul: batch dims differ, [${a.shape}] and [${b.shape}]`);
  }
  const batchDims = batchA.length > 0 ? batchA : batchB;
  const batch = batchDims.reduce((x, y) => x * y, 1);
  if (o.bias && (o.bias.shape.length !== 1 || o.bias.shape[0] !== n)) {
    throw new ShapeError(`matmul: bias must be (${n}), got [${o.bias.shape}]`);
  }
  const shape = [...batchDims, m, n];
  if (o.accumulate && !o.out) throw new ShapeError("matmul: accumulate needs `out`");
  for (const t of [a, b]) {
    if (t.dtype === "bf16" && t.backend.matmulPrecision !== "bf16") {
      throw new ShapeError(`matmul: a packed bf16 operand [${t.shape}] needs bf16 matmul mode`);
    }
  }
  const c = o.out ?? Tensor.empty(a.backend, shape);
  if (c.size !== batch * m * n) throw new ShapeError(`matmul: out must be [${shape}]`);
  const epi = o.geluDropout;
  if (epi) {
    if (batch !== 1 || batchA.length + batchB.length > 0) {
      throw new ShapeError(
        `matmul: the GELU + dropout epilogue takes 2-D operands, got [${a.shape}]`,
      );
    }
    if (epi.y.size !== m * n) throw new ShapeError(`matmul: epilogue y must be [${shape}]`);
    checkDropout(epi.dropout);
  }
  a.backend.run("matmul", {
    batch,
    m,
    n,
    k,
    lda: ca,
    ldb: cb,
    ldc: n,
    stride_a: batchA.length > 0 ? ra * ca : 0,
    stride_b: batchB.length > 0 ? rb * cb : 0,
    stride_c: m * n,
    trans_a: o.transA ? 1 : 0,
    trans_b: o.transB ? 1 : 0,
    accumulate: o.accumulate ? 1 : 0,
    a_bf16: a.dtype === "bf16" ? 1 : 0,
    b_bf16: b.dtype === "bf16" ? 1 : 0,
    epilogue: epi ? 1 : 0,
    p: epi?.dropout.p ?? 0,
    seed: (epi?.dropout.seed ?? 0) | 0,
    stream: (epi?.dropout.stream ?? 0) | 0,
    y_bf16: epi?.y.dtype === "bf16" ? 1 : 0,
  }, [
    { storage: a.storage },
    { storage: b.storage },
    arg(o.bias),
    arg(c),
    epi ? { storage: epi.y.storage } : null,
  ]);
  return c.shape.length === shape.length ? c : c.reshape(shape);
}

/** Column sums over all leading axes: x (..., N) -> (N). */
export function sumRows(x: Tensor, out?: Tensor, accumulate = false): Tensor {
  const { rows, cols } = lastDim("sumRows", x);
  const y = out ?? Tensor.empty(x.backend, [cols]);
  x.backend.run("sum_rows", { rows, cols, ld: cols, accumulate: accumulate ? 1 : 0 }, [
    arg(x),
    arg(y),
  ]);
  return y;
}

export interface MatmulGrads {
  da: Tensor;
  db: Tensor;
  dbias: Tensor | null;
}

/**
 * Gradients of c = op(a) op(b) + bias for upstream dc (..., M, N), as matmuls:
 * dop(A) = dC op(B)^T and dop(B) = op(A)^T dC, transposed back where the operand was stored
 * transposed. A 2-D operand shared across batches gets the sum over batches.
 *
 * The common case, activations a (..., M, K) times a shared weight b (a Linear), takes the weight
 * gradient as one product over all B M rows, (B M, N)^T (B M, K): the batched form would write B
 * weight-sized partial gradients and read them back to sum them (on conmamba_large, 28 of a
 * step's 200 GB of minimum traffic).
 *
 * `into.da` / `into.db` / `into.dbias`: tensors the gradient is added to in place (the tape's
 * gradient so far, autograd.ts), used where one product yields the gradient whole; the result is
 * then that tensor. Elsewhere a fresh gradient is returned and the caller adds it.
 */
export function matmulBackward(
  dc: Tensor,
  a: Tensor,
  b: Tensor,
  o: { transA?: boolean; transB?: boolean; bias?: Tensor | null } = {},
  into: { da?: Tensor | null; db?: Tensor | null; dbias?: Tensor | null } = {},
): MatmulGrads {
  const tA = !!o.transA, tB = !!o.transB;
  // A gradient accumulates into its `into` tensor where one product yields it whole (no sum
  // over batches): the matmul's accumulate flag, C += op(A) op(B).
  const product = (
    x: Tensor,
    y: Tensor,
    mo: MatmulOptions,
    target: Tensor,
    acc?: Tensor | null,
  ) => {
    const whole = x.shape.length === 2 && y.shape.length === 2 || target.shape.length > 2;
    if (acc && whole) return matmul(x, y, { ...mo, accumulate: true, out: acc });
    return sumToShape(matmul(x, y, mo), target);
  };
  const da = tA
    ? product(b, dc, { transA: tB, transB: true }, a, into.da)
    : product(dc, b, { transB: !tB }, a, into.da);
  let db: Tensor;
  if (!tA && a.shape.length > 2 && b.shape.length === 2) {
    const k = a.shape[a.shape.length - 1], n = dc.shape[dc.shape.length - 1];
    const rows = a.shape.slice(0, -1).reduce((x, y) => x * y, 1); // B M
    const a2 = a.reshape([rows, k]), dc2 = dc.reshape([rows, n]);
    db = tB
      ? product(dc2, a2, { transA: true }, b, into.db)
      : product(a2, dc2, { transA: true }, b, into.db);
  } else {
    db = tB
      ? product(dc, a, { transA: true, transB: tA }, b, into.db)
      : product(a, dc, { transA: !tA }, b, into.db);
  }
  const dbias = o.bias ? sumRows(dc, into.dbias ?? undefined, !!into.dbias) : null;
  return { da, db, dbias };
}

/**
 * `grad` shaped like `target`: a 2-D operand shared across batches receives the sum of its
 * per-batch gradients (batch, R, C), summed over batches in order.
 */
function sumToShape(grad: Tensor, target: Tensor): Tensor {
  if (grad.size === target.size) return grad.reshape(target.shape);
  const per = target.size;
  return sumRows(grad.reshape([grad.size / per, per])).reshape(target.shape);
}

// ---- elementwise ---------------------------------------------------------------------------

function binary(name: "add" | "mul", a: Tensor, b: Tensor, out?: Tensor): Tensor {
  sameShape(name, a, b);
  const y = outOr(out, a);
  a.backend.run(name, { n: a.size }, [arg(a), arg(b), arg(y)]);
  return y;
}

/** a + b (same shapes). Backward: da = db = dy. */
export const add = (a: Tensor, b: Tensor, out?: Tensor) => binary("add", a, b, out);
/** a * b (same shapes). Backward: da = dy * b, db = dy * a (this same op). */
export const mul = (a: Tensor, b: Tensor, out?: Tensor) => binary("mul", a, b, out);

/** alpha * x. Backward: dx = alpha * dy (this same op). */
export function scale(x: Tensor, alpha: number, out?: Tensor): Tensor {
  const y = outOr(out, x);
  x.backend.run("scale", { n: x.size, alpha }, [arg(x), arg(y)]);
  return y;
}

function unary(name: string, x: Tensor, out?: Tensor, dtype: DType = "f32"): Tensor {
  const y = dtype === "f32" ? outOr(out, x) : Tensor.empty(x.backend, x.shape, "step", dtype);
  x.backend.run(name, { n: x.size, y_bf16: dtype === "bf16" ? 1 : 0 }, [arg(x), {
    storage: y.storage,
  }]);
  return y;
}

function unaryBackward(name: string, x: Tensor, dy: Tensor, out?: Tensor): Tensor {
  sameShape(name, x, dy);
  const dx = outOr(out, x);
  x.backend.run(name, { n: x.size }, [arg(x), arg(dy), arg(dx)]);
  return dx;
}

/** Exact GELU, x Phi(x); dtype "bf16": rounded to packed bf16 (for a matmul alone, bf16 mode). */
export const gelu = (x: Tensor, out?: Tensor, dtype: DType = "f32") =>
  unary("gelu_forward", x, out, dtype);
export const geluBackward = (x: Tensor, dy: Tensor, out?: Tensor) =>
  unaryBackward("gelu_backward", x, dy, out);
/** SiLU (Swish), x sigmoid(x); dtype as gelu's. */
export const silu = (x: Tensor, out?: Tensor, dtype: DType = "f32") =>
  unary("silu_forward", x, out, dtype);
export const siluBackward = (x: Tensor, dy: Tensor, out?: Tensor) =>
  unaryBackward("silu_backward", x, dy, out);

// ---- per-row ops over the last axis --------------------------------------------------------

export interface LayerNormSaved {
  y: Tensor; // (..., D)
  mean: Tensor; // (rows)
  rstd: Tensor; // (rows)
}

/** Rows and columns of a LayerNorm's x, its parameters and output dtype checked. */
function normShape(name: string, x: Tensor, gamma: Tensor, beta: Tensor, dtype: DType) {
  const { rows, cols } = lastDim(name, x);
  if (gamma.size !== cols || beta.size !== cols) {
    throw new ShapeError(`${name}: gamma and beta must be (${cols}) for x [${x.shape}]`);
  }
  // A packed row must start on a float32 slot for the thread split (split.ts): even cols.
  if (dtype === "bf16" && cols % 2 !== 0) {
    throw new ShapeError(`${name}: a bf16 output needs an even row length, got ${cols}`);
  }
  return { rows, cols };
}

/**
 * LayerNorm over the last axis. x (..., D), gamma (D), beta (D). With dtype "bf16" y is rounded to
 * packed bf16 (an input that only matmuls read, in bf16 mode); mean and rstd stay float32.
 */
export function layerNorm(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
  dtype: DType = "f32",
): LayerNormSaved {
  const { rows, cols } = normShape("layerNorm", x, gamma, beta, dtype);
  const y = Tensor.empty(x.backend, x.shape, "step", dtype);
  const mean = Tensor.empty(x.backend, [rows]), rstd = Tensor.empty(x.backend, [rows]);
  x.backend.run("layernorm_forward", {
    rows,
    cols,
    ld: cols,
    eps,
    y_bf16: dtype === "bf16" ? 1 : 0,
  }, [
    arg(x),
    arg(gamma),
    arg(beta),
    { storage: y.storage },
    arg(mean),
    arg(rstd),
  ]);
  return { y, mean, rstd };
}

/**
 * s = x + alpha dropout(y) and LayerNorm(s) in one pass (a residual sum and the norm after it):
 * s has dropout_add's bits (mask index: the element's flat index; no dropout and alpha 1: the bits
 * of add), the norm layerNorm's bits on s (dtype as layerNorm's), without reading s again.
 */
export function addLayerNorm(
  x: Tensor,
  y: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
  o: {
    alpha?: number;
    dropout?: { p: number; seed: number; stream: number } | null;
    dtype?: DType;
  },
): { s: Tensor; ln: LayerNormSaved } {
  sameShape("addLayerNorm", x, y);
  const dtype = o.dtype ?? "f32", d = o.dropout;
  const { rows, cols } = normShape("addLayerNorm", x, gamma, beta, dtype);
  if (d) checkDropout(d);
  const s = Tensor.empty(x.backend, x.shape), ln = Tensor.empty(x.backend, x.shape, "step", dtype);
  const mean = Tensor.empty(x.backend, [rows]), rstd = Tensor.empty(x.backend, [rows]);
  x.backend.run("dropout_add_layernorm", {
    rows,
    cols,
    ld: cols,
    eps,
    p: d?.p ?? 0,
    alpha: o.alpha ?? 1,
    seed: (d?.seed ?? 0) | 0,
    stream: (d?.stream ?? 0) | 0,
    y_bf16: dtype === "bf16" ? 1 : 0,
  }, [
    arg(x),
    arg(y),
    arg(gamma),
    arg(beta),
    arg(s),
    { storage: ln.storage },
    arg(mean),
    arg(rstd),
  ]);
  return { s, ln: { y: ln, mean, rstd } };
}

/**
 * Gradients of layerNorm: dx (..., D), dgamma (D), dbeta (D). `into.dx` (x's shape): dx is added
 * to it (dx = into.dx + the gradient, the same bits as a separate add) and it is returned;
 * `into.params` (dgamma and dbeta, both (D)): the parameter gradients are accumulated into them.
 */
export function layerNormBackward(
  dy: Tensor,
  x: Tensor,
  gamma: Tensor,
  saved: { mean: Tensor; rstd: Tensor },
  into: { dx?: Tensor | null; params?: { dgamma: Tensor; dbeta: Tensor } | null } = {},
): { dx: Tensor; dgamma: Tensor; dbeta: Tensor } {
  sameShape("layerNormBackward", dy, x);
  const { rows, cols } = lastDim("layerNormBackward", x);
  if (into.dx && into.dx.size !== x.size) throw new ShapeError("layerNormBackward: into.dx size");
  const dx = into.dx ?? Tensor.empty(x.backend, x.shape);
  const dgamma = into.params?.dgamma ?? Tensor.empty(x.backend, [cols]);
  const dbeta = into.params?.dbeta ?? Tensor.empty(x.backend, [cols]);
  if (dgamma.size !== cols || dbeta.size !== cols) {
    throw new ShapeError(`layerNormBackward: into.params must be (${cols})`);
  }
  // One pass writes dx and the parameter gradients' partial sums per chunk of rows
  // (chunk_sums.ts); the chunks are then added in order onto dgamma and dbeta.
  const acc = !!into.params;
  const targets = [
    { col0: 0, out: dgamma, accumulate: acc },
    { col0: cols, out: dbeta, accumulate: acc },
  ];
  runChunked(x.backend, rows, 2 * cols, targets, (chunk, part) => {
    x.backend.run("layernorm_backward", {
      rows,
      cols,
      ld: cols,
      accumulate: into.dx ? 1 : 0,
      ...chunk,
    }, [
      arg(x),
      arg(gamma),
      arg(saved.mean),
      arg(saved.rstd),
      arg(dy),
      arg(dx),
      arg(part),
    ]);
  });
  return { dx, dgamma, dbeta };
}

function rowwise(name: string, x: Tensor): Tensor {
  const { rows, cols } = lastDim(name, x);
  const y = Tensor.empty(x.backend, x.shape);
  x.backend.run(name, { rows, cols, ld: cols }, [arg(x), arg(y)]);
  return y;
}

function rowwiseBackward(name: string, y: Tensor, dy: Tensor): Tensor {
  sameShape(name, y, dy);
  const { rows, cols } = lastDim(name, y);
  const dx = Tensor.empty(y.backend, y.shape);
  y.backend.run(name, { rows, cols, ld: cols }, [arg(y), arg(dy), arg(dx)]);
  return dx;
}

/** Softmax over the last axis. */
export const softmax = (x: Tensor) => rowwise("softmax_forward", x);
/** From the forward output y and upstream dy. */
export const softmaxBackward = (y: Tensor, dy: Tensor) =>
  rowwiseBackward("softmax_backward", y, dy);
/** Log-softmax over the last axis. */
export const logSoftmax = (x: Tensor) => rowwise("log_softmax_forward", x);
export const logSoftmaxBackward = (y: Tensor, dy: Tensor) =>
  rowwiseBackward("log_softmax_backward", y, dy);
