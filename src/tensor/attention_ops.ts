/**
 * Attention pieces on Tensors (CONMAMBA_SPEC.md 4.10-4.11, 4.14): the masked, scaled softmax of
 * raw scores and its backward, and RelPosMHAXL's relative shift. Scores come from batched matmuls
 * (ops.matmul); src/tensor/attention.ts composes the whole multi-head attention on the tape.
 */
import { expectShape, tensorArg } from "./col_view.ts";
import { ShapeError, Tensor } from "./tensor.ts";

export interface AttnMask {
  /** Multiplies the raw scores first (1 / sqrt(dh) for nn.MultiheadAttention). Default 1. */
  scale?: number;
  /** Key j > query i is masked (self-attention; needs Tq == S). */
  causal?: boolean;
  /** (B): keys j >= keyLengths[b] are masked (key padding at the end). */
  keyLengths?: Tensor | null;
  /** (B, S): added to the scaled scores (0 or -Infinity for a key padding mask). */
  keyMask?: Tensor | null;
}

function attnParams(name: string, x: Tensor, o: AttnMask) {
  if (x.shape.length !== 4) {
    throw new ShapeError(`${name}: scores must be (B, H, Tq, S), got [${x.shape}]`);
  }
  const [batch, heads, tq, cols] = x.shape;
  if (o.causal && tq !== cols) {
    throw new ShapeError(`${name}: a causal mask needs Tq == S, got [${x.shape}]`);
  }
  if (o.keyLengths) expectShape(`${name} keyLengths`, o.keyLengths, [batch]);
  if (o.keyMask) expectShape(`${name} keyMask`, o.keyMask, [batch, cols]);
  return {
    rows: batch * heads * tq,
    cols,
    tq,
    heads,
    causal: o.causal ? 1 : 0,
    scale: o.scale ?? 1,
  };
}

/** softmax over keys of scale x + keyMask with masked keys excluded; x (B, H, Tq, S). */
export function attnSoftmax(x: Tensor, o: AttnMask = {}): Tensor {
  const p = attnParams("attnSoftmax", x, o);
  const y = Tensor.empty(x.backend, x.shape);
  x.backend.run("attn_softmax_forward", p, [
    tensorArg(x),
    tensorArg(o.keyLengths),
    tensorArg(o.keyMask),
    tensorArg(y),
  ]);
  return y;
}

/** The gradient of the raw scores from the probabilities y and upstream dy (B, H, Tq, S). */
export function attnSoftmaxBackward(y: Tensor, dy: Tensor, o: { scale?: number } = {}): Tensor {
  expectShape("attnSoftmaxBackward dy", dy, y.shape);
  const p = attnParams("attnSoftmaxBackward", y, {});
  const dx = Tensor.empty(y.backend, y.shape);
  y.backend.run("attn_softmax_backward", { ...p, scale: o.scale ?? 1 }, [
    tensorArg(y),
    tensorArg(dy),
    tensorArg(dx),
  ]);
  return dx;
}

/** BD[n, i, j] = BD_raw[n, i, S - 1 - i + j]; x (..., S, 2S - 1) -> (..., S, S). */
export function relShift(x: Tensor): Tensor {
  const r = x.shape.length, s = x.shape[r - 2], w = x.shape[r - 1];
  if (r < 2 || w !== 2 * s - 1) {
    throw new ShapeError(`relShift: x must be (..., S, 2S - 1), got [${x.shape}]`);
  }
  const y = Tensor.empty(x.backend, [...x.shape.slice(0, -1), s]);
  x.backend.run("rel_shift_forward", { batch: x.size / (s * w), seqlen: s, width: w }, [
    tensorArg(x),
    tensorArg(y),
  ]);
  return y;
}

/** The gradient of relShift: dy (..., S, S) -> (..., S, 2S - 1), zeros where nothing was read. */
export function relShiftBackward(dy: Tensor): Tensor {
  const r = dy.shape.length, s = dy.shape[r - 1];
  if (r < 2 || dy.shape[r - 2] !== s) {
    throw new ShapeError(`relShiftBackward: dy must be (..., S, S), got [${dy.shape}]`);
  }
  const w = 2 * s - 1;
  const dx = Tensor.empty(dy.backend, [...dy.shape.slice(0, -1), w]);
  dy.backend.run("rel_shift_backward", { batch: dy.size / (s * s), seqlen: s, width: w }, [
    tensorArg(dy),
    tensorArg(dx),
  ]);
  return dx;
}
