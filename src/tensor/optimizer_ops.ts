/**
 * Adam / AdamW (PyTorch 2.0.1 semantics, CONMAMBA_SPEC.md 8.1) and global-norm gradient clipping
 * (8.3, max_norm 5). The norm is a sum of per-block float64 partials (blocks fixed, so the same
 * for any thread count) added on the host in order: no atomics anywhere.
 */
import { tensorArg } from "./col_view.ts";
import { Tensor } from "./tensor.ts";

/** Elements per partial sum of squares. */
export const NORM_BLOCK = 4096;

/** The partials of one buffer of `size` elements from block `first` on, added in order (float64). */
function blockSum(partial: Float32Array, first: number, size: number): number {
  let s = 0;
  for (let j = first; j < first + Math.ceil(size / NORM_BLOCK); j++) s += partial[j];
  return s;
}

/** ||g||^2 of one buffer, as float64. */
export function sumSquares(g: Tensor): number {
  return sumSquaresEach([g])[0];
}

/**
 * ||g||^2 of each buffer, as float64: every buffer's block partials go into one step buffer and
 * come back in one download (one host synchronisation per update on a GPU, not one per
 * parameter). Each buffer's partials are added in block order, as `sumSquares` of it alone.
 */
export function sumSquaresEach(grads: readonly Tensor[]): number[] {
  const first: number[] = [];
  let total = 0;
  for (const g of grads) {
    first.push(total);
    total += Math.ceil(g.size / NORM_BLOCK);
  }
  if (total === 0) return grads.map(() => 0);
  const partial = Tensor.empty(grads[0].backend, [total]); // (sum of blocks)
  grads.forEach((g, i) => {
    const blocks = Math.ceil(g.size / NORM_BLOCK);
    if (blocks === 0) return;
    g.backend.run("sum_squares_blocks", { blocks, block: NORM_BLOCK, n: g.size, first_block: 0 }, [
      tensorArg(g),
      { storage: partial.storage, offset: first[i] },
    ]);
  });
  const p = partial.toArray();
  partial.free();
  return grads.map((g, i) => blockSum(p, first[i], g.size));
}

/**
 * ||g||^2 of each range { offset, size } of one flat buffer whose ranges start at multiples of
 * NORM_BLOCK (gaps zero): one kernel call and one download for all of them. A range's blocks are
 * the blocks `sumSquares` of it alone would form (a block reaching into the zero gap adds +0
 * exactly), and they are added in the same order: the same bits.
 */
export function sumSquaresFlat(
  flat: Tensor,
  ranges: readonly { offset: number; size: number }[],
): number[] {
  const blocks = Math.ceil(flat.size / NORM_BLOCK);
  for (const r of ranges) {
    if (r.offset % NORM_BLOCK !== 0 || r.offset + r.size > flat.size) {
      throw new RangeError(`range [${r.offset}, ${r.offset + r.size}) of a flat ${flat.size}`);
    }
  }
  if (blocks === 0) return ranges.map(() => 0);
  const partial = Tensor.empty(flat.backend, [blocks]);
  flat.backend.run("sum_squares_blocks", {
    blocks,
    block: NORM_BLOCK,
    n: flat.size,
    first_block: 0,
  }, [
    tensorArg(flat),
    tensorArg(partial),
  ]);
  const p = partial.toArray();
  partial.free();
  return ranges.map((r) => blockSum(p, r.offset / NORM_BLOCK, r.size));
}

/**
 * torch.nn.utils.clip_grad_norm_: total = sqrt(sum of ||g||^2), coefficient
 * min(1, maxNorm / (total + 1e-6)). Returns both; pass `coef` to adamStep as gradScale.
 */
export function clipCoefficient(
  grads: readonly Tensor[],
  maxNorm: number,
): { total: number; coef: number } {
  return clipFromSquares(sumSquaresEach(grads), maxNorm);
}

/** clipCoefficient from each gradient's ||g||^2 (float64), added in order. */
export function clipFromSquares(
  squares: readonly number[],
  maxNorm: number,
): { total: number; coef: number } {
  const total = Math.sqrt(squares.reduce((s, v) => s + v, 0));
  return { total, coef: Math.min(1, maxNorm / (total + 1e-6)) };
}

export interface AdamOptions {
  lr: number;
  beta1: number; // 0.9
  beta2: number; // 0.98
  eps: number; // 1e-9
  weightDecay: number;
  /** AdamW (decoupled decay) rather than Adam's L2 term. */
  decoupled: boolean;
  /** 1-based count of this update (bias correction). */
  step: number;
  /** Multiplies the gradient (the clipping coefficient). Default 1. */
  gradScale?: number;
}

/** One update of param (in place) from grad with the moment buffers m and v (all the same shape). */
export function adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, o: AdamOptions): void {
  for (const t of [grad, m, v]) {
    if (t.size !== param.size) {
      throw new RangeError(`adamStep: ${t.size} elements, param has ${param.size}`);
    }
  }
  param.backend.run("adam_step", {
    n: param.size,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weight_decay: o.weightDecay,
    decoupled: o.decoupled ? 1 : 0,
    decay_factor: 1 - o.lr * o.weightDecay,
    step_size: o.lr / (1 - o.beta1 ** o.step),
    bc2_sqrt: Math.sqrt(1 - o.beta2 ** o.step),
    grad_scale: o.gradScale ?? 1,
  }, [tensorArg(param), tensorArg(grad), tensorArg(m), tensorArg(v)]);
}
