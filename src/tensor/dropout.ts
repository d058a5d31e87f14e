/**
 * Dropout from a counter-based draw (wasm/dropout.c): the mask is a function of (seed, stream,
 * element index) only, so it repeats exactly for any thread count, and the backward recomputes it
 * instead of storing it. Give every dropout call of a step its own stream (e.g.
 * step * 4096 + call site) so that masks differ between sites and steps.
 */
import { type ColumnSums, runChunked } from "./chunk_sums.ts";
import { tensorArg } from "./col_view.ts";
import { type DType, Tensor } from "./tensor.ts";

export interface DropoutOptions {
  p: number; // drop probability in [0, 1)
  seed: number; // the run's seed (32 bits)
  stream: number; // which mask (32 bits)
}

/** A drop probability must lie in [0, 1) (1 would scale by infinity). */
export function checkDropout(o: { p: number }): void {
  if (!(o.p >= 0 && o.p < 1)) throw new RangeError(`dropout p must lie in [0, 1), got ${o.p}`);
}

/**
 * One of the elementwise dropout ops ("dropout", "gelu_dropout_forward", "dropout_add",
 * "leaky_relu_dropout_*"): every input has x's size, the output too; alpha is the op's scalar
 * (dropout_add's scale, the LeakyReLU's slope; the others do not read it).
 */
function flat(
  name: string,
  inputs: readonly Tensor[],
  o: DropoutOptions,
  alpha = 0,
  dtype: DType = "f32",
): Tensor {
  checkDropout(o);
  const x = inputs[0];
  for (const t of inputs) {
    if (t.size !== x.size) throw new RangeError(`${name}: ${t.size} vs ${x.size} elements`);
  }
  const y = Tensor.empty(x.backend, x.shape, "step", dtype);
  x.backend.run(
    name,
    {
      n: x.size,
      p: o.p,
      alpha,
      seed: o.seed | 0,
      stream: o.stream | 0,
      y_bf16: dtype === "bf16" ? 1 : 0,
    },
    [...inputs.map(tensorArg), { storage: y.storage }],
  );
  return y;
}

/** dropout(x); dtype "bf16": y rounded to packed bf16 (for a matmul alone, in bf16 mode). */
export const dropout = (x: Tensor, o: DropoutOptions, dtype: DType = "f32") =>
  flat("dropout", [x], o, 0, dtype);

/** dx = dy masked and scaled exactly as the forward did (the same op, same seed and stream). */
export const dropoutBackward = (dy: Tensor, o: DropoutOptions) => dropout(dy, o);

/**
 * dropout(gelu(x)) in one pass (the FFN's inner activation): the bits of gelu then dropout; with
 * dtype "bf16" those values rounded to packed bf16 (for a matmul in bf16 mode: the same product).
 */
export const geluDropout = (x: Tensor, o: DropoutOptions, dtype: DType = "f32") =>
  flat("gelu_dropout_forward", [x], o, 0, dtype);

/**
 * One of the row-wise dropout ops with optional column sums of its output ("gelu_dropout_backward",
 * "scale_dropout"): x (..., cols) as rows; the sums come from the kernel's per-chunk partials
 * (chunk_sums.ts).
 */
function rowsWithSums(
  name: string,
  inputs: readonly Tensor[],
  o: DropoutOptions,
  alpha: number,
  sums?: ColumnSums,
  dtype: DType = "f32",
): Tensor {
  checkDropout(o);
  const x = inputs[0];
  const cols = x.shape.length ? x.shape[x.shape.length - 1] : 1;
  const rows = cols === 0 ? 0 : x.size / cols;
  if (sums && sums.out.size !== cols) {
    throw new RangeError(`${name}: column sums must be (${cols}), got ${sums.out.size}`);
  }
  const y = Tensor.empty(x.backend, x.shape, "step", dtype);
  const out_bf16 = dtype === "bf16" ? 1 : 0; // the sums are of the float32 values either way
  runChunked(x.backend, rows, cols, sums ? [{ ...sums, col0: 0 }] : [], (chunk, part) => {
    x.backend.run(
      name,
      { rows, cols, p: o.p, alpha, seed: o.seed | 0, stream: o.stream | 0, ...chunk, out_bf16 },
      [...inputs.map(tensorArg), { storage: y.storage }, part && tensorArg(part)],
    );
  });
  return y;
}

/**
 * dx = GELU'(x) dropout(dy), one pass; x is the GELU's input (..., F). With `sums` (F): also the
 * column sums of dx over all rows (the bias gradient of the Linear before the GELU). `dtype`
 * "bf16": dx packed (when only the Linear's backward products read it), the sums of its float32
 * values.
 */
export function geluDropoutBackward(
  x: Tensor,
  dy: Tensor,
  o: DropoutOptions,
  sums?: ColumnSums,
  dtype: DType = "f32",
): Tensor {
  if (dy.size !== x.size) throw new RangeError(`geluDropoutBackward: ${dy.size} vs ${x.size}`);
  return rowsWithSums("gelu_dropout_backward", [x, dy], o, 0, sums, dtype);
}

/** s = x + alpha dropout(y) in one pass (a residual around a dropped-out branch): the bits of
 * dropout, scale and add in sequence. Backward: dx = ds, dy = scaleDropout(ds, alpha). */
export const dropoutAdd = (x: Tensor, y: Tensor, alpha: number, o: DropoutOptions) =>
  flat("dropout_add", [x, y], o, alpha);

/**
 * dropout(alpha x) in one pass: the bits of scale then dropout (dropoutAdd's branch gradient).
 * With `sums` (cols): also its column sums (the bias gradient of the Linear ending the branch).
 * `dtype` as geluDropoutBackward's.
 */
export function scaleDropout(
  x: Tensor,
  alpha: number,
  o: DropoutOptions,
  sums?: ColumnSums,
  dtype: DType = "f32",
): Tensor {
  return rowsWithSums("scale_dropout", [x], o, alpha, sums, dtype);
}

/** dropout(leaky_relu(x)) in one pass, alpha the slope (the CNN front end): the bits of the two. */
export const leakyReluDropout = (x: Tensor, alpha: number, o: DropoutOptions) =>
  flat("leaky_relu_dropout_forward", [x], o, alpha);

/** dx = leaky_relu_backward(x, dropout(dy)) in one pass; x is the LeakyReLU's input. */
export const leakyReluDropoutBackward = (x: Tensor, dy: Tensor, alpha: number, o: DropoutOptions) =>
  flat("leaky_relu_dropout_backward", [x, dy], o, alpha);
