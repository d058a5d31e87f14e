/**
 * The joint CTC/attention beam search of the S2S recipes (CONMAMBA_SPEC.md §9.2-9.4) on a model:
 * one utterance's encoder output drives `jointBeamSearch`, whose attention scorer re-runs the
 * decoder over every alive hypothesis at once (a batch of beams, memory repeated per beam; no
 * cache, as the original, G23: a cache would change only speed; the sequence head runs on the last
 * position only, which changes no bit: AsrModel.nextTokenLogits). Temperature divides the logits
 * before log_softmax (τ_d: 1.0 validation / "no LM", 1.15 test with an LM; G4).
 */
import type { AsrModel } from "../nn/asr_model.ts";
import type { ForwardContext } from "../nn/module.ts";
import { Tensor } from "../tensor/tensor.ts";
import { CtcPrefixScorer } from "./ctc_prefix_score.ts";
import {
  jointBeamSearch,
  type JointSearchOptions,
  JointSearchState,
  type SearchResult,
} from "./joint_beam_search.ts";

export interface S2SSearchOptions {
  beamSize: number;
  ctcWeight: number; // ctc_weight_decode (0.4)
  temperature: number; // decoder temperature
  maxDecodeRatio: number; // max steps = floor(ratio * T')
  bos: number;
  eos: number;
  blank: number;
  /** Shallow fusion (lm_weight x LM log-probs); null without an LM. */
  lm?: { weight: number; scores(histories: number[][]): ArrayLike<number>[] } | null;
}

/** log_softmax(x / tau) of one row, in float64. */
export function logSoftmaxRow(x: ArrayLike<number>, tau: number): Float64Array {
  const out = new Float64Array(x.length);
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i] / tau);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] / tau - m);
  const lse = m + Math.log(s);
  for (let i = 0; i < x.length; i++) out[i] = x[i] / tau - lse;
  return out;
}

/**
 * Searches one utterance. enc (T', d) and ctcLogProbs (T', V) are host copies of the encoder's
 * outputs for this utterance alone, `frames` its valid length round(l T'). The context must not
 * record (evaluation); the step buffers are reset after every decoder call, so callers keep nothing
 * on the backend across this call.
 */
export function searchUtterance(
  model: AsrModel,
  ctx: ForwardContext,
  enc: Float32Array,
  ctcLogProbs: Float32Array,
  frames: number,
  o: S2SSearchOptions,
): SearchResult {
  const be = model.backend, d = model.options.dModel, V = model.options.vocab;
  const T = enc.length / d;
  const attention = (histories: number[][]) => {
    const n = histories.length, u = histories[0].length;
    const mem = new Float32Array(n * T * d);
    for (let i = 0; i < n; i++) mem.set(enc, i * T * d);
    try {
      const logits = model.nextTokenLogits(
        ctx,
        histories.flat(),
        [n, u],
        Tensor.from(be, [n, T, d], mem),
        new Array(n).fill(frames),
      ).toArray(); // (n, V): the last position only
      return histories.map((_, i) =>
        logSoftmaxRow(logits.subarray(i * V, (i + 1) * V), o.temperature)
      );
    } finally {
      be.resetStep();
    }
  };
  const ctc = o.ctcWeight > 0
    ? new CtcPrefixScorer(ctcLogProbs, T, V, frames, o.blank, o.eos)
    : null;
  return jointBeamSearch({ attention, lm: o.lm?.scores, ctc, V }, jointOptions(o, T));
}

function jointOptions(o: S2SSearchOptions, T: number): JointSearchOptions {
  return {
    beamSize: o.beamSize,
    ctcWeight: o.ctcWeight,
    lmWeight: o.lm ? o.lm.weight : 0,
    maxSteps: Math.floor(o.maxDecodeRatio * T),
    bos: o.bos,
    eos: o.eos,
    blank: o.blank,
  };
}

/**
 * Searches the B utterances of a padded batch in lockstep: enc (B, T', d) and ctcLogProbs
 * (B, T', V) host copies, frames[b] the valid length of utterance b. Every step makes one decoder
 * call over the alive hypotheses of all unfinished utterances (each row's memory its utterance's
 * T' padded rows, memory length frames[b]); each utterance then does its own top-k / eos / finish
 * bookkeeping and stops on its own (k finished or floor(ratio T') steps). The decoder's rows are
 * independent, so every result is bit for bit searchUtterance's on that utterance's rows alone.
 * The LM, when given, is called per utterance. Same context and step-buffer rules as searchUtterance.
 */
export function searchBatch(
  model: AsrModel,
  ctx: ForwardContext,
  enc: Float32Array,
  ctcLogProbs: Float32Array,
  frames: readonly number[],
  o: S2SSearchOptions,
): SearchResult[] {
  const be = model.backend, d = model.options.dModel, V = model.options.vocab;
  const B = frames.length, T = enc.length / (B * d);
  const states = frames.map((f, b) => {
    const ctc = o.ctcWeight > 0
      ? new CtcPrefixScorer(
        ctcLogProbs.subarray(b * T * V, (b + 1) * T * V),
        T,
        V,
        f,
        o.blank,
        o.eos,
      )
      : null;
    return new JointSearchState(ctc, V, jointOptions(o, T));
  });
  for (;;) {
    const live = states.flatMap((s, b) => s.done ? [] : [{ s, b, hs: s.histories() }]);
    if (live.length === 0) break;
    const n = live.reduce((a, l) => a + l.hs.length, 0), u = live[0].hs[0].length;
    const mem = new Float32Array(n * T * d), tokens: number[] = [], lens: number[] = [];
    let i = 0;
    for (const { b, hs } of live) {
      const rows = enc.subarray(b * T * d, (b + 1) * T * d);
      for (const h of hs) {
        mem.set(rows, i++ * T * d);
        tokens.push(...h);
        lens.push(frames[b]);
      }
    }
    let logits: Float32Array;
    try {
      logits = model.nextTokenLogits(ctx, tokens, [n, u], Tensor.from(be, [n, T, d], mem), lens)
        .toArray(); // (n, V): the last position only
    } finally {
      be.resetStep();
    }
    let row = 0;
    for (const { s, hs } of live) {
      const att = hs.map((_, h) =>
        logSoftmaxRow(logits.subarray((row + h) * V, (row + h + 1) * V), o.temperature)
      );
      row += hs.length;
      const lm = o.lm && o.lm.weight !== 0 ? o.lm.scores(hs) : null;
      s.advance(att, lm);
    }
  }
  return states.map((s) => s.result());
}
