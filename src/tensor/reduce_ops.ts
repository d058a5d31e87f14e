/**
 * Reductions on Tensors: sum and mean over one axis (with their broadcast backward) and the max
 * over the last axis (forward only: greedy decoding, argmax). Sums run in order over the reduced
 * axis, so results are bitwise independent of the thread count. Kernels in wasm/reduce.c.
 */
import { tensorArg } from "./col_view.ts";
import { ShapeError, sizeOf, Tensor } from "./tensor.ts";

function axisParams(name: string, shape: readonly number[], axis: number, mean: boolean) {
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
    throw new ShapeError(`${name}: axis ${axis} is not an axis of [${shape}]`);
  }
  const n = shape[axis];
  return {
    outer: sizeOf(shape.slice(0, axis)),
    n,
    inner: sizeOf(shape.slice(axis + 1)),
    divisor: mean ? n : 1,
  };
}

function reduce(x: Tensor, axis: number, mean: boolean): Tensor {
  const p = axisParams(mean ? "meanAxis" : "sumAxis", x.shape, axis, mean);
  const y = Tensor.empty(x.backend, x.shape.filter((_, i) => i !== axis));
  x.backend.run("sum_axis", p, [tensorArg(x), tensorArg(y)]);
  return y;
}

/** Sum over `axis` (removed from the shape). */
export const sumAxis = (x: Tensor, axis: number) => reduce(x, axis, false);
/** Mean over `axis` (the sum divided by its length, as torch.mean). */
export const meanAxis = (x: Tensor, axis: number) => reduce(x, axis, true);

/** The gradient of sumAxis / meanAxis: dy broadcast along `axis` of `shape` (/ n for mean). */
export function sumAxisBackward(
  dy: Tensor,
  shape: readonly number[],
  axis: number,
  mean = false,
): Tensor {
  const p = axisParams("sumAxisBackward", shape, axis, mean);
  if (dy.size !== p.outer * p.inner) {
    throw new ShapeError(
      `sumAxisBackward: dy [${dy.shape}] does not match [${shape}] less ${axis}`,
    );
  }
  const dx = Tensor.empty(dy.backend, shape);
  dy.backend.run("broadcast_axis", p, [tensorArg(dy), tensorArg(dx)]);
  return dx;
}

/** Max over the last axis and the first index that attains it (as floats); x (..., N). */
export function maxLast(x: Tensor): { values: Tensor; indices: Tensor } {
  const cols = x.shape[x.shape.length - 1];
  if (!(cols > 0)) throw new ShapeError(`maxLast: the last axis of [${x.shape}] is empty`);
  const shape = x.shape.slice(0, -1), rows = x.size / cols;
  const values = Tensor.empty(x.backend, shape), indices = Tensor.empty(x.backend, shape);
  x.backend.run("max_last", { rows, cols, ld: cols }, [
    tensorArg(x),
    tensorArg(values),
    tensorArg(indices),
  ]);
  return { values, indices };
}
