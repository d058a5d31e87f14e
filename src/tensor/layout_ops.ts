/**
 * Data movement on Tensors: embedding lookup (CONMAMBA_SPEC.md 4.13) and its scatter-add backward,
 * slices and concatenation along time (the Mamba decoder's [memory; LN(target)], 4.12), swapping
 * two adjacent axes (attention heads, transposes), and constant fills. Kernels in wasm/embedding.c
 * and wasm/layout.c; every one is exact.
 */
import { expectShape, tensorArg } from "./col_view.ts";
import { type DType, ShapeError, sizeOf, Tensor } from "./tensor.ts";

/** A step tensor filled with `value`. */
export function full(like: Tensor, shape: readonly number[], value: number): Tensor {
  const y = Tensor.empty(like.backend, shape);
  fill(y, value);
  return y;
}

/** Sets every element of y to `value`, on the device (zeroing gradients, flat buffers). */
export function fill(y: Tensor, value: number): void {
  y.backend.run("fill", { n: y.size, alpha: value }, [tensorArg(y)]);
}

// ---- embedding -----------------------------------------------------------------------------

/** Fails unless every id is an integer in [0, vocab). */
function checkIdValues(v: ArrayLike<number>, vocab: number): void {
  for (let i = 0; i < v.length; i++) {
    if (!(Number.isInteger(v[i]) && v[i] >= 0 && v[i] < vocab)) {
      throw new ShapeError(`embedding: id ${i} is ${v[i]}, not an integer in [0, ${vocab})`);
    }
  }
}

/**
 * y[..., :] = table[ids[...]]; table (V, D), ids (...) as exact floats. Returns (..., D). The ids
 * are checked against V: `hostIds`, the values ids was uploaded from, when the caller has them
 * (on a GPU a download of ids would synchronise the stream in the middle of the forward), else a
 * download of ids (they are few).
 */
export function embedding(table: Tensor, ids: Tensor, hostIds?: ArrayLike<number>): Tensor {
  if (table.shape.length !== 2) {
    throw new ShapeError(`embedding: table must be (V, D), got [${table.shape}]`);
  }
  const [vocab, d] = table.shape;
  if (hostIds !== undefined && hostIds.length !== ids.size) {
    throw new ShapeError(`embedding: ${hostIds.length} host ids for ids of [${ids.shape}]`);
  }
  checkIdValues(hostIds ?? ids.toArray(), vocab);
  const y = Tensor.empty(table.backend, [...ids.shape, d]);
  table.backend.run("embedding_forward", { rows: ids.size, cols: d, ld: d, vocab }, [
    tensorArg(table),
    tensorArg(ids),
    tensorArg(y),
  ]);
  return y;
}

/** dtable (V, D): the rows of dy (..., D) summed per id, ids in order (deterministic). */
export function embeddingBackward(dy: Tensor, ids: Tensor, vocab: number): Tensor {
  const d = dy.shape[dy.shape.length - 1];
  expectShape("embedding dy", dy, [...ids.shape, d]);
  const dtable = Tensor.empty(dy.backend, [vocab, d]);
  dy.backend.run("embedding_backward", { rows: ids.size, cols: d, ld: d, vocab }, [
    tensorArg(ids),
    tensorArg(dy),
    tensorArg(dtable),
  ]);
  return dtable;
}

// ---- time ranges ---------------------------------------------------------------------------

function seq3(name: string, x: Tensor): [number, number, number] {
  if (x.shape.length !== 3) throw new ShapeError(`${name}: x must be (B, T, W), got [${x.shape}]`);
  return [x.shape[0], x.shape[1], x.shape[2]];
}

/** y[b, yT0 + t] = x[b, xT0 + t] for t < len, in place in y. x (B, Tx, W), y (B, Ty, W). */
export function copyTime(x: Tensor, xT0: number, y: Tensor, yT0: number, len: number): void {
  const [batch, xs, width] = seq3("copyTime", x), [yb, ys, yw] = seq3("copyTime", y);
  if (yb !== batch || yw !== width) {
    throw new ShapeError(`copyTime: [${x.shape}] and [${y.shape}] differ in batch or width`);
  }
  if (len < 0 || xT0 < 0 || yT0 < 0 || xT0 + len > xs || yT0 + len > ys) {
    throw new ShapeError(
      `copyTime: ${len} steps from ${xT0} of [${x.shape}] to ${yT0} of [${y.shape}] overrun`,
    );
  }
  x.backend.run("copy_time", {
    batch,
    len,
    width,
    x_seqlen: xs,
    x_t0: xT0,
    y_seqlen: ys,
    y_t0: yT0,
  }, [tensorArg(x), tensorArg(y)]);
}

/** x[:, t0 : t0 + len]; x (B, T, W) -> (B, len, W). */
export function sliceTime(x: Tensor, t0: number, len: number): Tensor {
  const [b, , w] = seq3("sliceTime", x);
  const y = Tensor.empty(x.backend, [b, len, w]);
  copyTime(x, t0, y, 0, len);
  return y;
}

/** The gradient of sliceTime: dy (B, len, W) placed at t0 of zeros (B, T, W). */
export function sliceTimeBackward(dy: Tensor, t0: number, seqlen: number): Tensor {
  const [b, len, w] = seq3("sliceTimeBackward", dy);
  const dx = full(dy, [b, seqlen, w], 0);
  copyTime(dy, 0, dx, t0, len);
  return dx;
}

/** Concatenation along time: (B, T_k, W) for each k -> (B, sum T_k, W). */
export function concatTime(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new ShapeError("concatTime: nothing to concatenate");
  const [b, , w] = seq3("concatTime", xs[0]);
  const total = xs.reduce((s, x) => s + seq3("concatTime", x)[1], 0);
  const y = Tensor.empty(xs[0].backend, [b, total, w]);
  let t = 0;
  for (const x of xs) {
    copyTime(x, 0, y, t, x.shape[1]);
    t += x.shape[1];
  }
  return y;
}

/** The gradients of concatTime: dy (B, sum T_k, W) cut back into (B, T_k, W). */
export function concatTimeBackward(dy: Tensor, lengths: readonly number[]): Tensor[] {
  let t = 0;
  return lengths.map((len) => {
    const d = sliceTime(dy, t, len);
    t += len;
    return d;
  });
}

// ---- axes ----------------------------------------------------------------------------------

/**
 * Swaps axes `axis` and `axis + 1` of x: (..., d1, d2, ...) -> (..., d2, d1, ...). Heads:
 * (B, T, H, dh) with axis 1 gives (B, H, T, dh); the last two axes: axis = rank - 2. Its backward
 * is the same swap on dy. dtype "bf16": y rounded to packed bf16 (for matmuls alone, bf16 mode).
 */
export function swapAxes(x: Tensor, axis: number, dtype: DType = "f32"): Tensor {
  const s = x.shape;
  if (!Number.isInteger(axis) || axis < 0 || axis + 1 >= s.length) {
    throw new ShapeError(`swapAxes: axis ${axis} and ${axis + 1} are not both axes of [${s}]`);
  }
  const shape = [...s];
  [shape[axis], shape[axis + 1]] = [s[axis + 1], s[axis]];
  const block = sizeOf(s.slice(axis)); // the thread split's unit: packed, it must fill whole slots
  if (dtype === "bf16" && block % 2 !== 0) {
    throw new ShapeError(`swapAxes: a bf16 output needs an even block, got ${block} of [${s}]`);
  }
  const y = Tensor.empty(x.backend, shape, "step", dtype);
  x.backend.run("swap_axes", {
    batch: sizeOf(s.slice(0, axis)),
    d1: s[axis],
    d2: s[axis + 1],
    inner: sizeOf(s.slice(axis + 2)),
    y_bf16: dtype === "bf16" ? 1 : 0,
  }, [tensorArg(x), { storage: y.storage }]);
  return y;
}

// ---- masked fill along time ----------------------------------------------------------------

/** y[b, t] = x[b, t] for t < lengths[b], else value; x (B, T, W), lengths (B) exact floats. */
export function maskedFillTime(x: Tensor, lengths: Tensor, value = 0): Tensor {
  if (x.shape.length !== 3) {
    throw new ShapeError(`maskedFillTime: x must be (B, T, W), got [${x.shape}]`);
  }
  const [batch, seqlen, width] = x.shape;
  expectShape("maskedFillTime lengths", lengths, [batch]);
  const y = Tensor.empty(x.backend, x.shape);
  x.backend.run("masked_fill_time", { batch, seqlen, width, value }, [
    tensorArg(x),
    tensorArg(lengths),
    tensorArg(y),
  ]);
  return y;
}
