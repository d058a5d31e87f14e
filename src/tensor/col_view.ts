/**
 * Column views: columns [col0, col0 + cols) of a tensor's last axis, read and written in place by
 * kernels that take a row stride (Mamba's z is the second half of in_proj's output, B and C are
 * columns of x_proj's output): no copies.
 */
import type { BufferArg } from "./backend.ts";
import { ShapeError, Tensor } from "./tensor.ts";

export interface ColView {
  readonly tensor: Tensor; // (..., width)
  readonly col0: number;
  readonly cols: number;
}

export function colView(tensor: Tensor, col0: number, cols: number): ColView {
  const width = tensor.shape[tensor.shape.length - 1];
  if (col0 < 0 || cols < 0 || col0 + cols > width) {
    throw new ShapeError(`columns [${col0}, ${col0 + cols}) of [${tensor.shape}] are out of range`);
  }
  return { tensor, col0, cols };
}

export const asView = (x: Tensor | ColView): ColView =>
  x instanceof Tensor ? { tensor: x, col0: 0, cols: x.shape[x.shape.length - 1] } : x;

/** Row stride of a view. */
export const ldOf = (v: ColView) => v.tensor.shape[v.tensor.shape.length - 1];

/** Rows (the product of the leading axes). */
export const rowsOf = (v: ColView) => v.tensor.size / ldOf(v);

/** Only the matmul and bf16_unpack read packed bf16 (tensor.ts); every other kernel reads f32. */
function float32(t: Tensor): Tensor {
  if (t.dtype !== "f32") {
    throw new ShapeError(`a ${t.dtype} tensor [${t.shape}] given to a kernel that reads float32`);
  }
  return t;
}

export const viewArg = (v: ColView | null | undefined): BufferArg =>
  v ? { storage: float32(v.tensor).storage, offset: v.col0 } : null;

export const tensorArg = (t: Tensor | null | undefined): BufferArg =>
  t ? { storage: float32(t).storage } : null;

export function expectShape(name: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${name} must be [${shape}], got [${t.shape}]`);
  }
}

/** A view must have `rows` rows of `cols` columns. */
export function expectView(name: string, v: ColView, rows: number, cols: number): void {
  if (v.cols !== cols || rowsOf(v) !== rows) {
    throw new ShapeError(
      `${name} must have ${rows} rows of ${cols} columns, got ${rowsOf(v)} x ${v.cols} ` +
        `(of [${v.tensor.shape}])`,
    );
  }
}
