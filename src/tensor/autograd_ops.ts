/**
 * Differentiable ops: each runs its forward kernel and records its backward on a Tape
 * (src/tensor/autograd.ts). Model code uses these; the plain ops (ops.ts, mamba_ops.ts, ...) are
 * the untracked building blocks. Inputs here are whole tensors; strided column views (Mamba's z,
 * B, C) are for fused layers that call the plain ops and record one node themselves.
 */
import * as attn from "./attention_ops.ts";
import type { ColumnSums } from "./chunk_sums.ts";
import { paramGrad, Tape } from "./autograd.ts";
import { type Backend, viewStorage } from "./backend.ts";
import { conv2d as conv2dOp, conv2dBackward, glu as gluOp, gluBackward } from "./conv_ops.ts";
import {
  dropout as dropoutOp,
  dropoutAdd as dropoutAddOp,
  type DropoutOptions,
  geluDropout as geluDropoutOp,
  geluDropoutBackward,
  scaleDropout,
} from "./dropout.ts";
import {
  conv1dDepthwise as conv1dOp,
  conv1dDepthwiseBackward,
  type Conv1dOptions,
  flipTime as flipOp,
  type ScanInputs,
  selectiveScan as scanOp,
  selectiveScanBackward,
} from "./mamba_ops.ts";
import * as layout from "./layout_ops.ts";
import * as ops from "./ops.ts";
import * as reduce from "./reduce_ops.ts";
import { type DType, ShapeError, sizeOf, Tensor } from "./tensor.ts";

/**
 * op(a) op(b) + bias, a (..., M, K), b (..., K, N) (see ops.matmul). In bf16 matmul mode the
 * operands that are activations are saved packed in bf16 (half the memory, the same gradients:
 * the backward's products read them packed and round to bf16 anyway); the float32 originals are
 * then free to go when nothing else saved them (Tape.scope, backward reference counts).
 */
export function matmul(
  tape: Tape,
  a: Tensor,
  b: Tensor,
  o: { transA?: boolean; transB?: boolean; bias?: Tensor | null } = {},
): Tensor {
  const y = ops.matmul(a, b, o);
  const inputs = [a, b, o.bias ?? null];
  if (!tape.enabled || !inputs.some(Tape.tracked)) return y;
  const pa = packable(tape, a) ? tape.savePacked(a) : null;
  const pb = packable(tape, b) ? tape.savePacked(b) : null;
  tape.record(inputs, [y], ([dy], [da, db, dbias]) => {
    const g = ops.matmulBackward(dy!, pa ?? a, pb ?? b, o, { da, db, dbias });
    if (pa) tape.releasePacked(a);
    if (pb) tape.releasePacked(b);
    return [g.da, g.db, g.dbias];
  }, [pa ? null : a, pb ? null : b]);
  return y;
}

/** A float32 step tensor (an activation, not a parameter) worth keeping packed for matmul's backward. */
function packable(tape: Tape, t: Tensor): boolean {
  return tape.packSaved && t.dtype === "f32" && t.backend.matmulPrecision === "bf16" &&
    t.storage.lifetime === "step" && t.size > 0 && t.size % 2 === 0;
}

/**
 * The dtype to store an activation in when only matmuls read it (a LayerNorm before Linears, the
 * FFN's inner activation): packed bf16 in bf16 matmul mode, where the products round their inputs
 * to bf16 anyway (the same bits, half the bytes, and no bf16_pack for the backward), else float32.
 * Off with the tape's packSaved, so tests can compare the two ways.
 */
export function matmulInputDtype(tape: Tape, be: Backend): DType {
  return tape.packSaved && be.matmulPrecision === "bf16" ? "bf16" : "f32";
}

export function add(tape: Tape, a: Tensor, b: Tensor): Tensor {
  const y = ops.add(a, b);
  tape.record([a, b], [y], ([dy]) => [dy, dy], []);
  return y;
}

export function mul(tape: Tape, a: Tensor, b: Tensor): Tensor {
  const y = ops.mul(a, b);
  tape.record([a, b], [y], ([dy]) => [ops.mul(dy!, b), ops.mul(dy!, a)], [a, b]);
  return y;
}

export function scale(tape: Tape, x: Tensor, alpha: number): Tensor {
  const y = ops.scale(x, alpha);
  tape.record([x], [y], ([dy]) => [ops.scale(dy!, alpha)], []);
  return y;
}

/** GELU; `dtype` "bf16" for an output matmuls alone read (matmulInputDtype). */
export function gelu(tape: Tape, x: Tensor, dtype: DType = "f32"): Tensor {
  const y = ops.gelu(x, undefined, dtype);
  tape.record([x], [y], ([dy]) => [ops.geluBackward(x, dy!)], [x]);
  return y;
}

/** SiLU; `dtype` as gelu's. */
export function silu(tape: Tape, x: Tensor, dtype: DType = "f32"): Tensor {
  const y = ops.silu(x, undefined, dtype);
  tape.record([x], [y], ([dy]) => [ops.siluBackward(x, dy!)], [x]);
  return y;
}

/**
 * LayerNorm over the last axis; x (..., D), gamma and beta (D). `dtype` "bf16": the output packed
 * (ops.layerNorm; only for an output that matmuls alone read: see matmulInputDtype).
 */
export function layerNorm(
  tape: Tape,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
  dtype: DType = "f32",
): Tensor {
  return recordLayerNorm(tape, x, gamma, beta, ops.layerNorm(x, gamma, beta, eps, dtype));
}

/** The tape node of a LayerNorm of x whose forward `s` has been computed (by any kernel). */
function recordLayerNorm(
  tape: Tape,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  s: ops.LayerNormSaved,
): Tensor {
  tape.record([x, gamma, beta], [s.y], ([dy], [dx, dgamma, dbeta]) => {
    const params = dgamma && dbeta ? { dgamma, dbeta } : null;
    const g = ops.layerNormBackward(dy!, x, gamma, s, { dx, params });
    return [g.dx, g.dgamma, g.dbeta];
  }, [x, gamma]);
  return s.y;
}

/** A LayerNorm to apply after a residual sum, for the fused kernel (ops.addLayerNorm). */
export interface NormSpec {
  gamma: Tensor;
  beta: Tensor;
  eps: number;
  dtype: DType;
}

/**
 * a + b and LayerNorm(a + b) in one kernel (ops.addLayerNorm): the bits of add then layerNorm,
 * two tape nodes as those ops record (the norm's backward reads the sum).
 */
export function addLayerNorm(
  tape: Tape,
  a: Tensor,
  b: Tensor,
  n: NormSpec,
): { sum: Tensor; normed: Tensor } {
  const r = ops.addLayerNorm(a, b, n.gamma, n.beta, n.eps, { dtype: n.dtype });
  tape.record([a, b], [r.s], ([dy]) => [dy, dy], []);
  return { sum: r.s, normed: recordLayerNorm(tape, r.s, n.gamma, n.beta, r.ln) };
}

export function glu(tape: Tape, x: Tensor): Tensor {
  const y = gluOp(x);
  tape.record([x], [y], ([dy]) => [gluBackward(x, dy!)], [x]);
  return y;
}

export function flipTime(tape: Tape, x: Tensor): Tensor {
  const y = flipOp(x);
  tape.record([x], [y], ([dy]) => [flipOp(dy!)], []);
  return y;
}

/** Dropout; `dtype` "bf16" for an output a matmul alone reads (matmulInputDtype). */
export function dropout(tape: Tape, x: Tensor, o: DropoutOptions, dtype: DType = "f32"): Tensor {
  const y = dropoutOp(x, o, dtype);
  tape.record([x], [y], ([dy]) => [dropoutOp(dy!, o)], []); // the mask is recomputed
  return y;
}

/**
 * A Linear (x W^T + b) and the op after it as one tape node, when that op's backward kernel can
 * also write the column sums of the gradient it produces (chunk_sums.ts): those sums are the
 * bias gradient, so the Linear's (..., out) gradient is not read again by a sum_rows. The forward
 * is matmul then `after`, the same bits as the two ops. `after(pre)` returns the node's output
 * (or, with `o.fused`, one call returns pre and the output: the matmul's epilogue);
 * `back(dOut, pre, sums, dtype)` returns d(pre) in `dtype` and adds its column sums (of its
 * float32 values) to `sums`: only the Linear's backward products read d(pre), so in bf16 mode it
 * is stored packed (matmulInputDtype; the same bits, half the bytes). With `keepPre` the
 * backward reads pre (private to the node, freed by it); without, pre is freed once `after` has
 * run and `back` must not read it. `residual`: an input of `after` whose gradient is dOut itself
 * (a residual add).
 */
function linearThen(
  tape: Tape,
  x: Tensor,
  w: Tensor,
  b: Tensor,
  after: (pre: Tensor) => Tensor,
  back: (dOut: Tensor, pre: Tensor, sums: ColumnSums, dtype: DType) => Tensor,
  o: {
    keepPre: boolean;
    residual?: Tensor;
    fused?: (x: Tensor, w: Tensor, b: Tensor) => { pre: Tensor; y: Tensor };
  },
): Tensor {
  let pre: Tensor, y: Tensor;
  if (o.fused) ({ pre, y } = o.fused(x, w, b));
  else {
    pre = ops.matmul(x, w, { transB: true, bias: b }); // (..., out)
    y = after(pre);
  }
  const inputs = o.residual ? [o.residual, x, w, b] : [x, w, b];
  const tracked = tape.enabled && inputs.some(Tape.tracked);
  if (!tracked || !o.keepPre) pre.free();
  if (!tracked) return y;
  const px = packable(tape, x) ? tape.savePacked(x) : null;
  tape.record(inputs, [y], ([dOut], into) => {
    const be = dOut!.backend;
    const [dx, dw, db] = o.residual ? into.slice(1) : into;
    const dbias = db ?? Tensor.empty(be, b.shape);
    const sums = { out: dbias, accumulate: db !== null };
    const dpre = back(dOut!, pre, sums, matmulInputDtype(tape, be));
    if (o.keepPre) pre.free();
    const g = ops.matmulBackward(dpre, px ?? x, w, { transB: true }, { da: dx, db: dw });
    if (px) tape.releasePacked(x);
    return o.residual ? [dOut, g.da, g.db, dbias] : [g.da, g.db, dbias];
  }, [px ? null : x, w]);
  return y;
}

/** glu(x W^T + b): the convolution module's pointwise conv and GLU (x (..., in), w (2d, in)). */
export const linearGlu = (tape: Tape, x: Tensor, w: Tensor, b: Tensor) =>
  linearThen(tape, x, w, b, gluOp, (dy, v, sums, dt) => gluBackward(v, dy, sums, dt), {
    keepPre: true,
  });

/**
 * dropout(gelu(x W^T + b)): the FFN's first Linear, GELU and dropout in training, as one matmul
 * whose epilogue writes the GELU + dropout (the bits of gelu_dropout_forward on x W^T + b: the
 * product over all rows as one 2-D product, each element the same dot product as the batched
 * form's); the output in `dtype` (packed bf16 when only the next Linear reads it, see
 * matmulInputDtype).
 */
export const linearGeluDropout = (
  tape: Tape,
  x: Tensor,
  w: Tensor,
  b: Tensor,
  o: DropoutOptions,
  dtype: DType = "f32",
) =>
  linearThen(
    tape,
    x,
    w,
    b,
    (pre) => geluDropoutOp(pre, o, dtype),
    (dy, pre, sums, dt) => geluDropoutBackward(pre, dy, o, sums, dt),
    {
      keepPre: true,
      fused: (x, w, b) => {
        const k = x.shape[x.shape.length - 1], n = w.shape[0];
        const shape = [...x.shape.slice(0, -1), n]; // (..., out)
        const y = Tensor.empty(x.backend, shape, "step", dtype);
        const pre = ops.matmul(x.reshape([x.size / k, k]), w, {
          transB: true,
          bias: b,
          geluDropout: { dropout: o, y },
        });
        return { pre: pre.reshape(shape), y };
      },
    },
  );

/**
 * x + alpha dropout(h W^T + b): the Linear ending a residual branch, its dropout, the scale and
 * the add, in training (dropout_add forward; scale_dropout gives the branch gradient and its sums).
 * With `n`, also the LayerNorm n of the sum, written by the same kernel (ops.addLayerNorm): the
 * bits of the sum then layerNorm, their tape nodes as those record; `normed` is null without `n`.
 */
export function linearDropoutAdd(
  tape: Tape,
  x: Tensor,
  h: Tensor,
  w: Tensor,
  b: Tensor,
  alpha: number,
  o: DropoutOptions,
  n: NormSpec | null = null,
): { sum: Tensor; normed: Tensor | null } {
  let ln: ops.LayerNormSaved | null = null;
  const after = (y: Tensor) => {
    if (!n) return dropoutAddOp(x, y, alpha, o);
    const r = ops.addLayerNorm(x, y, n.gamma, n.beta, n.eps, { alpha, dropout: o, dtype: n.dtype });
    ln = r.ln;
    return r.s;
  };
  const sum = linearThen(
    tape,
    h,
    w,
    b,
    after,
    (ds, _y, sums, dt) => scaleDropout(ds, alpha, o, sums, dt),
    { keepPre: false, residual: x },
  );
  return { sum, normed: n ? recordLayerNorm(tape, sum, n.gamma, n.beta, ln!) : null };
}

/** Depthwise conv over time; x (B, T, C), w (C, K), bias (C). */
export function conv1dDepthwise(
  tape: Tape,
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  o: Conv1dOptions,
): Tensor {
  const y = conv1dOp(x, w, bias, o);
  tape.record([x, w, bias], [y], ([dy]) => {
    const g = conv1dDepthwiseBackward(dy!, x, w, bias, o);
    return [g.dx.tensor, g.dw, bias ? g.dbias : null];
  }, [x, w]);
  return y;
}

/** The selective scan with whole-tensor B, C and z (see mamba_ops.selectiveScan). */
export function selectiveScan(
  tape: Tape,
  q: ScanInputs & { B: Tensor; C: Tensor; z?: Tensor | null },
): Tensor {
  const saved = scanOp(q);
  const inputs = [q.u, q.delta, q.A, q.B, q.C, q.D ?? null, q.z ?? null, q.deltaBias ?? null];
  tape.record(inputs, [saved.out], ([dy]) => {
    const g = selectiveScanBackward(dy!, q, saved);
    return [
      g.du,
      g.ddelta,
      g.dA,
      g.dB.tensor,
      g.dC.tensor,
      g.dD,
      g.dz?.tensor ?? null,
      g.ddeltaBias,
    ];
  });
  return saved.out;
}

/** Conv2d 3x3 stride 2 reflect 1; x (B, T, F, Cin), w (Cout, Cin, 3, 3), bias (Cout). */
export function conv2d(tape: Tape, x: Tensor, w: Tensor, bias: Tensor | null): Tensor {
  const s = conv2dOp(x, w, bias);
  tape.record([x, w, bias], [s.y], ([dy]) => {
    const g = conv2dBackward(dy!, x, w, bias, s);
    return [g.dx, g.dw, g.dbias];
  });
  return s.y;
}

/** Sum of all elements, shape (1). Backward: the upstream scalar broadcast. */
export function sum(tape: Tape, x: Tensor): Tensor {
  const y = ops.sumRows(x.reshape([x.size, 1]));
  tape.record([x], [y], ([dy]) => {
    // One number crosses to the host and back: cheap on Wasm, and only at the loss.
    const v = dy!.toArray()[0];
    const g = Tensor.empty(x.backend, x.shape);
    x.backend.upload(g.storage, new Float32Array(x.size).fill(v));
    return [g];
  }, []);
  return y;
}

/** Same storage, another shape of the same size; the gradient is reshaped back. */
export function reshape(tape: Tape, x: Tensor, shape: readonly number[]): Tensor {
  const y = x.reshape(shape);
  tape.record([x], [y], ([dy]) => [dy!.reshape(x.shape)], []);
  return y;
}

/**
 * Embedding lookup; table (V, D), ids (...) as exact floats (untracked), hostIds the values they
 * were uploaded from when known (checked on the host then). Returns (..., D).
 */
export function embedding(
  tape: Tape,
  table: Tensor,
  ids: Tensor,
  hostIds?: ArrayLike<number>,
): Tensor {
  const y = layout.embedding(table, ids, hostIds);
  tape.record([table], [y], ([dy]) => [layout.embeddingBackward(dy!, ids, table.shape[0])], []);
  return y;
}

/**
 * Rows [r0, r0 + n) of a parameter (R, ...) as a parameter of its own, no copy: e.g. W_k of
 * in_proj_weight (3d, d). Its values are a view of those rows of w, and when the tape records, its
 * gradient a view of those rows of w's gradient, so the backward of whatever reads it (a matmul,
 * a bias sum) accumulates straight into them: no tape node, no zero-padded gradient, no add.
 * Only for parameters: a view of a step buffer could outlive it.
 */
export function paramRows(tape: Tape, w: Tensor, r0: number, n: number): Tensor {
  const rows = w.shape[0], per = w.size / rows;
  if (w.storage.lifetime !== "param") throw new ShapeError("paramRows: w must be a parameter");
  if (!(Number.isInteger(r0) && Number.isInteger(n) && r0 >= 0 && n >= 0 && r0 + n <= rows)) {
    throw new ShapeError(`paramRows: rows [${r0}, ${r0 + n}) of [${w.shape}]`);
  }
  const shape = [n, ...w.shape.slice(1)];
  const y = new Tensor(w.backend, shape, viewStorage(w.storage, r0 * per, n * per));
  if (tape.enabled && w.requiresGrad) {
    const g = paramGrad(w);
    y.requiresGrad = true;
    y.grad = new Tensor(w.backend, shape, viewStorage(g.storage, r0 * per, n * per));
  }
  return y;
}

/** x[:, t0 : t0 + len]; x (B, T, W). */
export function sliceTime(tape: Tape, x: Tensor, t0: number, len: number): Tensor {
  const y = layout.sliceTime(x, t0, len);
  tape.record([x], [y], ([dy]) => [layout.sliceTimeBackward(dy!, t0, x.shape[1])], []);
  return y;
}

/** Concatenation along time of (B, T_k, W) tensors. */
export function concatTime(tape: Tape, xs: readonly Tensor[]): Tensor {
  const y = layout.concatTime(xs);
  tape.record(xs, [y], ([dy]) => layout.concatTimeBackward(dy!, xs.map((x) => x.shape[1])), []);
  return y;
}

/** Frames t >= lengths[b] of x (B, T, W) set to `value` (lengths untracked). */
export function maskedFillTime(tape: Tape, x: Tensor, lengths: Tensor, value = 0): Tensor {
  const y = layout.maskedFillTime(x, lengths, value);
  tape.record([x], [y], ([dy]) => [layout.maskedFillTime(dy!, lengths, 0)], []);
  return y;
}

/** Swaps axes `axis` and `axis + 1`. */
/**
 * layout.swapAxes on the tape; `dtype` "bf16" (for matmuls alone: matmulInputDtype) is taken when
 * the swapped block fills whole float32 slots, else the output stays float32.
 */
export function swapAxes(tape: Tape, x: Tensor, axis: number, dtype: DType = "f32"): Tensor {
  const even = sizeOf(x.shape.slice(axis)) % 2 === 0;
  const y = layout.swapAxes(x, axis, even ? dtype : "f32");
  tape.record([x], [y], ([dy]) => [layout.swapAxes(dy!, axis)], []);
  return y;
}

/** Masked, scaled softmax of raw scores (B, H, Tq, S); the mask tensors are untracked. */
export function attnSoftmax(tape: Tape, x: Tensor, o: attn.AttnMask = {}): Tensor {
  const y = attn.attnSoftmax(x, o);
  tape.record([x], [y], ([dy]) => [attn.attnSoftmaxBackward(y, dy!, o)], [y]);
  return y;
}

/** RelPosMHAXL's relative shift, (..., S, 2S - 1) -> (..., S, S). */
export function relShift(tape: Tape, x: Tensor): Tensor {
  const y = attn.relShift(x);
  tape.record([x], [y], ([dy]) => [attn.relShiftBackward(dy!)], []);
  return y;
}

/** Sum over `axis`. */
export function sumAxis(tape: Tape, x: Tensor, axis: number): Tensor {
  const y = reduce.sumAxis(x, axis);
  tape.record([x], [y], ([dy]) => [reduce.sumAxisBackward(dy!, x.shape, axis)], []);
  return y;
}

/** Mean over `axis`. */
export function meanAxis(tape: Tape, x: Tensor, axis: number): Tensor {
  const y = reduce.meanAxis(x, axis);
  tape.record([x], [y], ([dy]) => [reduce.sumAxisBackward(dy!, x.shape, axis, true)], []);
  return y;
}
