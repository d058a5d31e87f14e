/**
 * Tracked ops that src/tensor/autograd_ops.ts does not (yet) have, composed here from the plain
 * ops and their backward functions: reshape, LeakyReLU (and with dropout, one kernel), log-softmax,
 * LayerNorm over trailing axes, and dropout that is the identity in eval mode.
 */
import * as ag from "../tensor/autograd_ops.ts";
import type { Tape } from "../tensor/autograd.ts";
import {
  layerNormAxes as lnAxesOp,
  layerNormAxesBackward,
  leakyRelu as leakyOp,
  leakyReluBackward,
} from "../tensor/conv_ops.ts";
import {
  leakyReluDropout as leakyReluDropoutOp,
  leakyReluDropoutBackward,
} from "../tensor/dropout.ts";
import { logSoftmax as lsmOp, logSoftmaxBackward } from "../tensor/ops.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { ForwardContext } from "./module.ts";

/** The same storage with another shape, on the tape (so parameters keep their gradient path). */
export function reshape(tape: Tape, x: Tensor, shape: readonly number[]): Tensor {
  const y = x.reshape(shape);
  tape.record([x], [y], ([dy]) => [dy!.reshape(x.shape)], []);
  return y;
}

export function leakyRelu(tape: Tape, x: Tensor, alpha = 0.01): Tensor {
  const y = leakyOp(x, alpha);
  tape.record([x], [y], ([dy]) => [leakyReluBackward(x, dy!, alpha)], [x]);
  return y;
}

/** log_softmax over the last axis. */
export function logSoftmax(tape: Tape, x: Tensor): Tensor {
  const y = lsmOp(x);
  tape.record([x], [y], ([dy]) => [logSoftmaxBackward(y, dy!)], [y]);
  return y;
}

/** LayerNorm over the last `axes` axes jointly; gamma and beta have those axes' shape. */
export function layerNormAxes(
  tape: Tape,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
  axes: number,
): Tensor {
  const s = lnAxesOp(x, gamma, beta, eps, axes);
  tape.record([x, gamma, beta], [s.y], ([dy]) => {
    const g = layerNormAxesBackward(dy!, x, gamma, s);
    return [g.dx, g.dgamma, g.dbeta];
  }, [x, gamma]);
  return s.y;
}

/**
 * dropout(leakyRelu(x)) (the CNN front end): in training one kernel each way (the bits of the two
 * ops in sequence and the same dropout stream); in eval mode (or p = 0) LeakyReLU alone.
 */
export function leakyReluDropout(ctx: ForwardContext, x: Tensor, alpha: number, p: number): Tensor {
  const stream = ctx.stream++;
  if (!ctx.training || p === 0) return leakyRelu(ctx.tape, x, alpha);
  const o = { p, seed: ctx.seed, stream };
  const y = leakyReluDropoutOp(x, alpha, o);
  ctx.tape.record([x], [y], ([dy]) => [leakyReluDropoutBackward(x, dy!, alpha, o)], [x]);
  return y;
}

/** Dropout(p) in train mode, the identity in eval mode (or p = 0). */
export function dropout(ctx: ForwardContext, x: Tensor, p: number): Tensor {
  const stream = ctx.stream++;
  if (!ctx.training || p === 0) return x;
  return ag.dropout(ctx.tape, x, { p, seed: ctx.seed, stream });
}
