/**
 * Residual connections and the LayerNorm that follows them (the encoder layers' macaron skeleton,
 * the decoders' sublayers): x + alpha Drop(Linear(h)) and a + b, each optionally with the next
 * module's LayerNorm of the sum. In training the fused kernels do both in one pass
 * (ag.linearDropoutAdd, ag.addLayerNorm); elsewhere, and under probes, the ops run in sequence.
 * The bits are the same either way, but a fused branch's bias gradient sums in chunk order.
 */
import * as ag from "../tensor/autograd_ops.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { dropout } from "./_ops.ts";
import type { LayerNorm } from "./layer_norm.ts";
import type { Linear } from "./linear.ts";
import type { ForwardContext } from "./module.ts";

/** The LayerNorm to apply to a residual's output, and whether only matmuls read it. */
export interface NextNorm {
  norm: LayerNorm;
  forMatmul: boolean;
}

/** A residual's output and, when a NextNorm was given, its norm. */
export interface ResidualOut {
  out: Tensor;
  normed: Tensor | null;
}

/** next's norm of a residual's output, computed apart (the paths without a fused kernel). */
function normAfter(ctx: ForwardContext, out: Tensor, next?: NextNorm): ResidualOut {
  return { out, normed: next ? next.norm.forward(ctx, out, next.forMatmul) : null };
}

/**
 * x + alpha Drop(lin(h)) with dropout p, the branch's last Linear `lin` applied here, and `next`'s
 * norm of the sum. In training with dropout (no probe, a Linear with a bias) one node whose kernel
 * also writes the norm (ag.linearDropoutAdd: the bits and dropout stream of the ops in sequence,
 * the bias gradient from the dropout's backward sums); else the ops in sequence, and `probe` sees
 * Drop(lin(h)).
 */
export function linearResidual(
  ctx: ForwardContext,
  x: Tensor,
  h: Tensor,
  lin: Linear,
  o: { alpha: number; p: number; next?: NextNorm; probe?: (f: Tensor) => void },
): ResidualOut {
  if (ctx.training && o.p > 0 && !ctx.capture && lin.bias) {
    const drop = { p: o.p, seed: ctx.seed, stream: ctx.stream++ };
    const n = o.next?.norm.spec(ctx, x, o.next.forMatmul) ?? null;
    const r = ag.linearDropoutAdd(ctx.tape, x, h, lin.weight, lin.bias, o.alpha, drop, n);
    return r.normed || !o.next ? { out: r.sum, normed: r.normed } : normAfter(ctx, r.sum, o.next);
  }
  const f = dropout(ctx, lin.forward(ctx, h), o.p);
  o.probe?.(f);
  const out = ag.add(ctx.tape, x, o.alpha === 1 ? f : ag.scale(ctx.tape, f, o.alpha));
  return normAfter(ctx, out, o.next);
}

/**
 * a + b and next's norm of it: one kernel (ag.addLayerNorm, the bits of add then the norm) for a
 * norm over the last axis.
 */
export function addThenNorm(
  ctx: ForwardContext,
  a: Tensor,
  b: Tensor,
  next: NextNorm,
): ResidualOut {
  const n = next.norm.spec(ctx, a, next.forMatmul);
  if (!n) return normAfter(ctx, ag.add(ctx.tape, a, b), next);
  const r = ag.addLayerNorm(ctx.tape, a, b, n);
  return { out: r.sum, normed: r.normed };
}
