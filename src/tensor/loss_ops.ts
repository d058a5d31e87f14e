/**
 * Losses (CONMAMBA_SPEC.md 7.1-7.2, 13 G17): CTC and the label-smoothed KL / NLL, each returning
 * the batchmean loss (sum over utterances / B; no length normalisation) and its gradient with
 * respect to the log-probabilities. Per-utterance values are summed in float64 on the host in
 * order (B numbers), so the loss has the same bits for any thread count.
 */
import { tensorArg } from "./col_view.ts";
import { ShapeError, Tensor } from "./tensor.ts";

export interface LossResult {
  loss: number; // batchmean
  perUtterance: Float32Array; // (B) CTC, or (B U) per position for the seq loss
  grad: Tensor; // gradScale d loss / d log_probs, shaped like log_probs (divided by B)
}

/**
 * CTC with blank 0 (configurable), zero_infinity, reduction batchmean. logProbs (B, T, V) from
 * log_softmax; targets (B, S) ids without blanks, zero padded; lengths in frames and tokens.
 * The gradient treats logProbs as free inputs (minus the occupancy / B); chain it through
 * logSoftmaxBackward to reach the logits. `gradScale` (default 1, e.g. the loss's weight in a
 * joint objective) multiplies it inside the kernel, each occupancy in float64 before rounding:
 * no pass over the (B, T, V) gradient to scale it.
 */
export function ctcLoss(
  logProbs: Tensor,
  targets: ArrayLike<number>,
  inputLengths: ArrayLike<number>,
  targetLengths: ArrayLike<number>,
  o: { blank?: number; zeroInfinity?: boolean; gradScale?: number } = {},
): LossResult {
  if (logProbs.shape.length !== 3) {
    throw new ShapeError(`ctcLoss: log_probs must be (B, T, V), got [${logProbs.shape}]`);
  }
  const [batch, time, vocab] = logProbs.shape, be = logProbs.backend;
  const maxTarget = targets.length / batch;
  if (
    !Number.isInteger(maxTarget) || inputLengths.length !== batch || targetLengths.length !== batch
  ) {
    throw new ShapeError(`ctcLoss: targets (B, S) and lengths (B) must match batch ${batch}`);
  }
  for (let b = 0; b < batch; b++) {
    if (!(inputLengths[b] >= 0 && inputLengths[b] <= time)) {
      throw new ShapeError(
        `ctcLoss: input length ${inputLengths[b]} of utterance ${b} not in [0, ${time}]`,
      );
    }
    if (!(targetLengths[b] >= 0 && targetLengths[b] <= maxTarget)) {
      throw new ShapeError(
        `ctcLoss: target length ${targetLengths[b]} of utterance ${b} not in [0, ${maxTarget}]`,
      );
    }
  }
  const blank = o.blank ?? 0;
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < targetLengths[b]; s++) {
      const id = targets[b * maxTarget + s];
      if (!(Number.isInteger(id) && id >= 0 && id < vocab && id !== blank)) {
        throw new ShapeError(
          `ctcLoss: target ${s} of utterance ${b} is ${id}, not a label id in [0, ${vocab}) other than the blank`,
        );
      }
    }
  }
  const lattice = 2 * maxTarget + 1;
  const t = (data: ArrayLike<number>, shape: number[]) =>
    Tensor.from(be, shape, Float32Array.from(data));
  const loss = Tensor.empty(be, [batch]), grad = Tensor.empty(be, logProbs.shape);
  const scratch = Tensor.empty(be, [batch, 4 * time * lattice]);
  be.run("ctc_loss", {
    batch,
    time,
    vocab,
    max_target: maxTarget,
    lattice,
    blank,
    zero_infinity: o.zeroInfinity === false ? 0 : 1,
    grad_scale: (o.gradScale ?? 1) / batch,
  }, [
    tensorArg(logProbs),
    tensorArg(t(targets, [batch, Math.max(maxTarget, 1)])),
    tensorArg(t(inputLengths, [batch])),
    tensorArg(t(targetLengths, [batch])),
    tensorArg(loss),
    tensorArg(grad),
    tensorArg(scratch),
  ]);
  const per = loss.toArray();
  return {
    loss: per.reduce((s, v) => s + v, 0) / batch,
    perUtterance: per,
    grad,
  };
}

/**
 * The attention loss: KL to a label-smoothed target (smoothing > 0) or NLL (0), summed over the
 * positions with weight 1 and divided by B. logProbs (B, U, V); targets (B, U); weights (B, U):
 * 1 for counted positions (target != 0 with smoothing; u < length without, CONMAMBA_SPEC.md 7.2).
 * `gradScale` (default 1) multiplies the gradient inside the kernel, as ctcLoss's.
 */
export function smoothedNll(
  logProbs: Tensor,
  targets: ArrayLike<number>,
  weights: ArrayLike<number>,
  smoothing: number,
  gradScale = 1,
): LossResult {
  if (logProbs.shape.length !== 3) {
    throw new ShapeError(`smoothedNll: log_probs must be (B, U, V), got [${logProbs.shape}]`);
  }
  const [batch, len, vocab] = logProbs.shape, rows = batch * len, be = logProbs.backend;
  if (targets.length !== rows || weights.length !== rows) {
    throw new ShapeError(`smoothedNll: targets and weights must be (${batch}, ${len})`);
  }
  if (smoothing > 0 && vocab < 2) throw new ShapeError("smoothedNll: smoothing needs V >= 2");
  for (let i = 0; i < rows; i++) {
    if (!(Number.isInteger(targets[i]) && targets[i] >= 0 && targets[i] < vocab)) {
      throw new ShapeError(`smoothedNll: target ${i} is ${targets[i]}, not an id in [0, ${vocab})`);
    }
  }
  const loss = Tensor.empty(be, [rows]), grad = Tensor.empty(be, logProbs.shape);
  be.run("smoothed_nll", { rows, vocab, smoothing, grad_scale: gradScale / batch }, [
    tensorArg(logProbs),
    tensorArg(Tensor.from(be, [rows], Float32Array.from(targets))),
    tensorArg(Tensor.from(be, [rows], Float32Array.from(weights))),
    tensorArg(loss),
    tensorArg(grad),
  ]);
  const per = loss.toArray();
  return {
    loss: per.reduce((s, v) => s + v, 0) / batch,
    perUtterance: per,
    grad,
  };
}
