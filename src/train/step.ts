/**
 * One training micro-batch (CONMAMBA_SPEC.md §7, §8.1-8.3, §8.8): InputNormalization (training
 * mode) -> SpecAugment (time drop, freq drop, and time warp in the S2S recipes) -> forward with
 * dropout (encoder + CTC head; S2S: the decoder under teacher forcing) -> the recipe's objective
 * (src/train/objectives.ts) / grad_accumulation_factor -> one backward from both heads; on an
 * accumulation boundary: global-norm clipping, Adam / AdamW at the Noam rate (G7), zero grads,
 * update counter + 1.
 *
 * Every random draw of a micro-batch (SpecAugment, dropout masks) comes from streams seeded by
 * (run seed, global micro-batch number), so the trainer's whole state is its tensors plus a few
 * counters: a run resumed from `state()` repeats the uninterrupted one bit for bit.
 */
import { InputNormalization, type NormalizerState } from "../audio/input_normalization.ts";
import type { SpecAugmentSettings } from "../audio/spec_augment.ts";
import type { SafeTensor } from "../io/safetensors.ts";
import type { Experiment } from "../config/experiment.ts";
import type { AsrModel } from "../nn/asr_model.ts";
import { setGradSlot, Tape, zeroGrad } from "../tensor/autograd.ts";
import { viewStorage } from "../tensor/backend.ts";
import { fill } from "../tensor/layout_ops.ts";
import {
  adamStep,
  clipCoefficient,
  clipFromSquares,
  NORM_BLOCK,
  sumSquaresFlat,
} from "../tensor/optimizer_ops.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { Batch } from "./batches.ts";
import { prepareFeatures } from "./batch_prep.ts";
import { lrForUpdate } from "./noam.ts";
import { objectives } from "./objectives.ts";

export interface StepSettings {
  seed: number;
  gradAccumulation: number; // grad_accumulation_factor (G)
  maxGradNorm: number; // max_grad_norm
  optimizer: "Adam" | "AdamW";
  lr: number; // peak lr
  betas: readonly [number, number];
  eps: number; // adam_eps
  weightDecay: number;
  warmup: number; // n_warmup_steps
  blank: number;
  /** ctc_weight of the joint S2S loss; null: CTC only. */
  ctcWeight: number | null;
  labelSmoothing: number;
  specAugment: SpecAugmentSettings;
  /** More non-finite losses than this in one epoch stop training (the recipe: 3). */
  maxNonFinite?: number;
}

/** The config keys a trainer's settings come from (a stage building one declares them). */
export const STEP_KEYS = [
  "seed",
  "grad_accumulation_factor",
  "max_grad_norm",
  "optimizer",
  "lr",
  "betas",
  "adam_eps",
  "weight_decay",
  "n_warmup_steps",
  "blank_index",
  "decoder_module",
  "ctc_weight",
  "label_smoothing",
  "time_drop_length_low",
  "time_drop_length_high",
  "time_drop_count_low",
  "time_drop_count_high",
  "freq_drop_length_low",
  "freq_drop_length_high",
  "freq_drop_count_low",
  "freq_drop_count_high",
  "time_warp_window",
] as const;

/** The recipe's step settings from an experiment's config (§7, §8.1-8.3, §8.8). */
export function stepSettings(
  c: Readonly<Partial<Pick<Experiment, (typeof STEP_KEYS)[number]>>>,
): StepSettings {
  const drop = (p: "time" | "freq") => ({
    lengthLow: c[`${p}_drop_length_low`]!,
    lengthHigh: c[`${p}_drop_length_high`]!,
    countLow: c[`${p}_drop_count_low`]!,
    countHigh: c[`${p}_drop_count_high`]!,
  });
  return {
    seed: c.seed!,
    gradAccumulation: c.grad_accumulation_factor!,
    maxGradNorm: c.max_grad_norm!,
    optimizer: c.optimizer!,
    lr: c.lr!,
    betas: c.betas!,
    eps: c.adam_eps!,
    weightDecay: c.weight_decay!,
    warmup: c.n_warmup_steps!,
    blank: c.blank_index!,
    ctcWeight: c.decoder_module === null ? null : c.ctc_weight!,
    labelSmoothing: c.label_smoothing!,
    specAugment: {
      timeDrop: drop("time"),
      freqDrop: drop("freq"),
      timeWarpWindow: c.time_warp_window ?? null,
    },
  };
}

/** Counters of the trainer, JSON-serialisable (checkpointed with the tensors). */
export interface TrainerCounters {
  /** Optimiser updates taken (the Noam scheduler's n). */
  updates: number;
  /** Micro-batches seen over the whole run: the position of every random stream. */
  micro: number;
  /** Micro-batches in the current epoch (s of §8.3, reset each epoch). */
  epochMicro: number;
  /** Non-finite losses in the current epoch. */
  nonFinite: number;
}

export interface StepLog {
  loss: number; // the recipe's loss (before / G)
  lossCtc: number;
  lossSeq: number | null; // S2S: the attention loss
  /** S2S: teacher-forced token accuracy counts of the batch. */
  acc: { correct: number; total: number } | null;
  finite: boolean;
  /** Set on micro-batches that ended with an optimiser update. */
  update?: { n: number; lr: number; gradNorm: number };
  audioSeconds: number;
}

export class NonFiniteLossError extends Error {}

import { mixSeed } from "./seeds.ts";
export { mixSeed };

export class AsrTrainer {
  readonly params: [string, Tensor][];
  /** Adam moments per parameter ("param" lifetime): exp_avg, exp_avg_sq. */
  readonly m: Tensor[];
  readonly v: Tensor[];
  readonly tape = new Tape();
  counters: TrainerCounters = { updates: 0, micro: 0, epochMicro: 0, nonFinite: 0 };

  /**
   * Every parameter, its gradient and both Adam moments in four flat buffers, each parameter's
   * range starting at a multiple of NORM_BLOCK (gaps zero): the gradient norm's partials are one
   * kernel call, zeroing the gradients one fill and Adam one update, instead of one of each per
   * parameter (3 x 631 calls a step for conmamba_large), with the same bits (sumSquaresFlat; the
   * others are elementwise). null: per-parameter buffers (`flatState: false`, or a parameter that
   * already had a gradient).
   */
  #flat: {
    p: Tensor;
    g: Tensor;
    m: Tensor;
    v: Tensor;
    ranges: { offset: number; size: number }[];
  } | null = null;

  constructor(
    readonly model: AsrModel,
    readonly normalizer: InputNormalization,
    readonly s: StepSettings,
    o: { flatState?: boolean } = {},
  ) {
    this.params = [...model.namedParameters()];
    const be = model.backend;
    if ((o.flatState ?? true) && this.params.every(([, p]) => p.grad === null)) {
      const ranges: { offset: number; size: number }[] = [];
      let n = 0;
      for (const [, p] of this.params) {
        ranges.push({ offset: n, size: p.size });
        n += Math.ceil(p.size / NORM_BLOCK) * NORM_BLOCK;
      }
      const buffer = () => {
        const t = Tensor.empty(be, [n], "param"); // (n): every range, zero between
        fill(t, 0);
        return t;
      };
      const pf = buffer(), g = buffer(), m = buffer(), v = buffer();
      const view = (flat: Tensor, i: number) =>
        new Tensor(
          be,
          this.params[i][1].shape,
          viewStorage(flat.storage, ranges[i].offset, ranges[i].size),
        );
      // The parameters move into their ranges of pf, which the model then owns (model.free()).
      this.params.forEach(([, p], i) => p.rehome(view(pf, i).storage));
      model.adopt(pf.storage);
      this.params.forEach(([, p], i) => setGradSlot(p, view(g, i).storage));
      this.m = this.params.map((_, i) => view(m, i));
      this.v = this.params.map((_, i) => view(v, i));
      this.#flat = { p: pf, g, m, v, ranges };
    } else {
      const zeros = (p: Tensor) => Tensor.from(be, p.shape, new Float32Array(p.size), "param");
      this.m = this.params.map(([, p]) => zeros(p));
      this.v = this.params.map(([, p]) => zeros(p));
    }
  }

  /** Zeroes every gradient (one fill over the flat buffer when there is one). */
  #zeroGrads(): void {
    const f = this.#flat;
    if (f) fill(f.g, 0);
    else zeroGrad(this.params.map(([, p]) => p));
  }

  /**
   * One micro-batch; `epoch` numbered from 1. batch.feats is modified in place (normalised and
   * augmented), unless `prepared` says BatchPrep did that already: then it is the normaliser's
   * state after this batch, which the trainer adopts. Throws NonFiniteLossError when the epoch's
   * non-finite count passes the limit.
   */
  step(batch: Batch, epoch: number, prepared?: NormalizerState): StepLog {
    const be = this.model.backend, s = this.s, c = this.counters;
    const micro = c.micro;
    c.micro++;
    c.epochMicro++;
    const { B, T, F } = batch;
    if (prepared) this.normalizer.load(prepared); // BatchPrep did this batch's part already
    else prepareFeatures(this.normalizer, { feats: batch.feats, shape: batch, epoch, micro }, s);
    const audioSeconds = batch.frames.reduce((a, n) => a + n, 0) / 100; // 10 ms hop
    let r: ReturnType<typeof objectives>;
    try {
      const feats = Tensor.from(be, [B, T, F], batch.feats); // (B, T, F)
      const ctx = {
        tape: this.tape,
        training: true,
        seed: mixSeed(s.seed, micro, 2) | 0,
        stream: 0,
      };
      const rel = batch.frames.map((n) => Math.fround(n / T));
      const enc = this.model.encode(ctx, feats, rel);
      const U = batch.tokensBos.length / B; // ids + 1
      const dec = this.model.isS2S
        ? this.model.decode(ctx, batch.tokensBos, [B, U], enc.encOut, enc.encLengths)
        : null;
      r = objectives(enc, dec, batch, {
        blank: s.blank,
        ctcWeight: s.ctcWeight,
        labelSmoothing: s.labelSmoothing,
        gradAccumulation: s.gradAccumulation,
      });
      if (Number.isFinite(r.loss)) this.tape.backwardFrom(r.seeds);
    } finally {
      this.tape.reset();
      be.resetStep();
    }
    const loss = r.loss, finite = Number.isFinite(loss);
    if (!finite) {
      c.nonFinite++;
      if (c.nonFinite > (s.maxNonFinite ?? 3)) {
        throw new NonFiniteLossError(
          `epoch ${epoch}: ${c.nonFinite} non-finite losses (batch of ${B} utterances, ` +
            `${batch.ids[0]}...): training stopped; lower lr or check the features`,
        );
      }
    }
    const log: StepLog = {
      loss,
      lossCtc: r.lossCtc,
      lossSeq: r.lossSeq,
      acc: r.acc,
      finite,
      audioSeconds,
    };
    if (c.epochMicro % s.gradAccumulation === 0) log.update = this.update();
    return log;
  }

  /** Clip, Adam(W) step at the Noam rate, zero grads (§8.3). */
  private update(): { n: number; lr: number; gradNorm: number } {
    const s = this.s, c = this.counters;
    const withGrad = this.params.map(([, p], i) => [p, i] as const).filter(([p]) => p.grad);
    // With the flat buffer a parameter without a gradient adds its range's zeros: +0, exactly.
    const { total, coef } = this.#flat
      ? clipFromSquares(sumSquaresFlat(this.#flat.g, this.#flat.ranges), s.maxGradNorm)
      : clipCoefficient(withGrad.map(([p]) => p.grad!), s.maxGradNorm);
    const n = c.updates + 1;
    const lr = lrForUpdate(s.lr, s.warmup, n);
    const adam = {
      lr,
      beta1: s.betas[0],
      beta2: s.betas[1],
      eps: s.eps,
      weightDecay: s.weightDecay,
      decoupled: s.optimizer === "AdamW",
      step: n,
      gradScale: coef,
    };
    const f = this.#flat;
    if (f && withGrad.length === this.params.length) {
      // Every parameter has a gradient: one update over the flat buffers (elementwise, so the
      // bits of one call per parameter; the zero gaps stay zero).
      adamStep(f.p, f.g, f.m, f.v, adam);
    } else {
      for (const [p, i] of withGrad) adamStep(p, p.grad!, this.m[i], this.v[i], adam);
    }
    this.#zeroGrads();
    c.updates = n;
    this.model.backend.resetStep();
    return { n, lr, gradNorm: total };
  }

  /** End of an epoch: an incomplete accumulation cycle is discarded; per-epoch counters reset. */
  endEpoch(): void {
    this.#zeroGrads();
    this.counters.epochMicro = 0;
    this.counters.nonFinite = 0;
  }

  /** Optimiser state as safetensors tensors: `<param>.exp_avg`, `<param>.exp_avg_sq`. */
  optimizerTensors(): Map<string, SafeTensor> {
    const out = new Map<string, SafeTensor>();
    this.params.forEach(([name, p], i) => {
      out.set(`${name}.exp_avg`, { dtype: "F32", shape: [...p.shape], data: this.m[i].toArray() });
      out.set(`${name}.exp_avg_sq`, {
        dtype: "F32",
        shape: [...p.shape],
        data: this.v[i].toArray(),
      });
    });
    return out;
  }

  loadOptimizer(tensors: ReadonlyMap<string, SafeTensor>, file: string): void {
    const be = this.model.backend;
    this.params.forEach(([name, p], i) => {
      for (const [suffix, t] of [["exp_avg", this.m[i]], ["exp_avg_sq", this.v[i]]] as const) {
        const st = tensors.get(`${name}.${suffix}`);
        if (!st || st.dtype !== "F32" || st.data.length !== p.size) {
          throw new Error(`${file}: optimiser state "${name}.${suffix}" missing or mis-shaped`);
        }
        be.upload(t.storage, st.data as Float32Array);
      }
    });
  }

  normalizerState(): NormalizerState {
    return this.normalizer.state();
  }

  /** Frees the moments (and, with flat buffers, the gradients: the parameters have none after). */
  free(): void {
    for (const t of [...this.m, ...this.v]) t.free();
    const f = this.#flat;
    if (!f) return;
    for (const [, p] of this.params) {
      setGradSlot(p, null);
      p.grad?.free();
      p.grad = null;
    }
    for (const t of [f.g, f.m, f.v]) t.free(); // f.p: the model's now, freed with it
    this.#flat = null;
  }
}
