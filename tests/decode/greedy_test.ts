/**
 * "Beam search with beam 1 equals greedy" (issue 8) where the search has a CTC side and where a
 * model drives it: the joint CTC/attention search at beam 1 against a hand-written greedy loop
 * (argmax of (1 - w) attention + w CTC prefix score, blank barred, until eos or max steps, last
 * token dropped), on tables and on a tiny initialised S2S model; the CTC beam search at beam 1
 * against argmax-collapse greedy on a tiny initialised CTC model's posteriors. (The decode stage's
 * and `transcribe`'s test_search greedy is these two; tests/cli/transcribe_test.ts runs it.)
 */
import assert from "node:assert/strict";
import { loadExperiment } from "../../src/config/load.ts";
import { ctcBeamSearch } from "../../src/decode/ctc_beam_search.ts";
import { ctcGreedy } from "../../src/decode/ctc_greedy.ts";
import { CtcPrefixScorer } from "../../src/decode/ctc_prefix_score.ts";
import { jointBeamSearch } from "../../src/decode/joint_beam_search.ts";
import { logSoftmaxRow, searchUtterance } from "../../src/decode/s2s_search.ts";
import type { AsrModel } from "../../src/nn/asr_model.ts";
import { initialize } from "../../src/nn/init.ts";
import { buildModel } from "../../src/nn/model_config.ts";
import { evalContext } from "../../src/nn/module.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";

const BOS = 1, EOS = 2, BLANK = 0;

function rng(seed: number) {
  let a = seed >>> 0;
  return () => ((a = (a * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function logSoftmaxRows(T: number, V: number, seed: number, sharp = 3): Float32Array {
  const r = rng(seed), out = new Float32Array(T * V);
  for (let t = 0; t < T; t++) {
    const row = logSoftmaxRow(Array.from({ length: V }, () => sharp * 2 * r()), 1);
    out.set(row, t * V);
  }
  return out;
}

/** The greedy loop the joint search at beam 1 must reproduce. */
function jointGreedy(
  attention: (history: number[]) => ArrayLike<number>,
  ctc: CtcPrefixScorer,
  V: number,
  w: number,
  maxSteps: number,
): number[] {
  const h = [BOS];
  let state = ctc.initial(BOS);
  for (let t = 0; t < maxSteps; t++) {
    const att = attention(h);
    let best = -1, bestScore = -Infinity, bestState = state;
    for (let v = 0; v < V; v++) {
      if (v === BLANK) continue;
      const r = ctc.extend(state, v);
      const s = (1 - w) * att[v] + w * r.score;
      if (s > bestScore) (best = v, bestScore = s, bestState = r.state);
    }
    h.push(best);
    state = bestState;
    if (best === EOS) break;
  }
  return h.slice(1, -1); // without bos; the last token (eos, or the forced one) dropped (§9.2)
}

Deno.test("joint search with CTC weight at beam 1 equals the attention+CTC greedy loop (tables)", () => {
  const V = 7, T = 24;
  for (let seed = 1; seed <= 30; seed++) {
    const att = (h: number[]) => {
      let x = seed;
      for (const t of h) x = (x * 31 + t * 7919) >>> 0;
      const r = rng(x);
      return logSoftmaxRow(
        Array.from({ length: V }, (_, v) => 4 * r() + (v === EOS ? h.length * 0.3 : 0)),
        1,
      );
    };
    const X = logSoftmaxRows(T, V, 100 + seed);
    const valid = seed % 2 ? T : 17;
    const w = [0.4, 0.3, 1, 0.7][seed % 4];
    const maxSteps = seed % 3 ? T : 5; // some hit max steps before eos
    const r = jointBeamSearch(
      {
        attention: (hs) => hs.map(att),
        ctc: new CtcPrefixScorer(X, T, V, valid, BLANK, EOS),
        V,
      },
      { beamSize: 1, ctcWeight: w, lmWeight: 0, maxSteps, bos: BOS, eos: EOS, blank: BLANK },
    );
    const want = jointGreedy(att, new CtcPrefixScorer(X, T, V, valid, BLANK, EOS), V, w, maxSteps);
    assert.deepEqual(r.best, want, `seed ${seed}`);
    assert.equal(r.finished.length, 1);
  }
});

/** Eval-mode encoder outputs of random features on an initialised model. */
function encode(model: AsrModel, frames: number, seed: number) {
  const be = model.backend, F = model.options.nMels ?? 80;
  const r = rng(seed);
  const x = Float32Array.from({ length: frames * F }, () => 3 * (r() - 0.5));
  const ctx = evalContext(new Tape());
  const out = ctx.tape.noGrad(() => model.forward(ctx, Tensor.from(be, [1, frames, F], x)));
  const res = {
    ctx,
    enc: out.encOut.toArray(),
    lp: out.logProbs.toArray(),
    T: out.logProbs.shape[1],
    V: out.logProbs.shape[2],
  };
  be.resetStep();
  return res;
}

Deno.test("tiny S2S model: the joint search at beam 1 equals the hand-written greedy", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const c = loadExperiment("tiny");
    const model = buildModel(be, c);
    const d = model.options.dModel;
    for (const seed of [1, 2, 3]) {
      initialize(model, seed);
      const { ctx, enc, lp, T, V } = encode(model, 60 + 20 * seed, seed);
      const w = c.ctc_weight_decode!;
      const res = ctx.tape.noGrad(() =>
        searchUtterance(model, ctx, enc, lp, T, {
          beamSize: 1,
          ctcWeight: w,
          temperature: 1,
          maxDecodeRatio: c.max_decode_ratio!,
          bos: BOS,
          eos: EOS,
          blank: BLANK,
        })
      );
      const attention = (h: number[]) => {
        try {
          const dec = ctx.tape.noGrad(() =>
            model.decode(ctx, h, [1, h.length], Tensor.from(be, [1, T, d], enc), [T])
          );
          const logits = dec.seqLogits.toArray();
          return logSoftmaxRow(logits.subarray((h.length - 1) * V, h.length * V), 1);
        } finally {
          be.resetStep();
        }
      };
      const ctc = new CtcPrefixScorer(lp, T, V, T, BLANK, EOS);
      const want = jointGreedy(attention, ctc, V, w, Math.floor(c.max_decode_ratio! * T));
      assert.deepEqual(res.best, want, `seed ${seed}`);
      assert.ok(want.length > 0, `seed ${seed}: an empty hypothesis tests little`);
    }
    model.free();
  } finally {
    be.close();
  }
});

Deno.test("tiny CTC model: the CTC beam search at beam 1 equals argmax-collapse greedy", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const c = loadExperiment("tiny_ctc");
    const model = buildModel(be, c);
    const V = c.output_neurons;
    // A char-like vocabulary: blank, two control pieces, "▁", letters, some word-initial ones.
    // Control pieces decode to nothing (SentencePiece), so the beam search gets "" for them.
    const pieces = Array.from(
      { length: V },
      (_, v) => v === 0 ? "<unk>" : v < 3 ? "" : v === 3 ? "▁" : v % 5 === 0 ? `▁${v}` : `${v}`,
    );
    let distinct = 0;
    for (const seed of [1, 2, 3, 4]) {
      initialize(model, seed);
      const { lp, T } = encode(model, 80 + 30 * seed, seed);
      const ids = ctcGreedy(lp, V, T, BLANK);
      distinct = Math.max(distinct, new Set(ids).size);
      const words = ids.map((i) => pieces[i]).join("").replaceAll("▁", " ").trim().split(/\s+/)
        .filter((x) => x);
      for (const tokenPruneMinLogp of [-1.2, 0]) {
        const beam = ctcBeamSearch(lp, V, T, pieces, {
          beamSize: 1,
          beamPruneLogp: -12,
          tokenPruneMinLogp,
          blank: BLANK,
        });
        assert.deepEqual(beam, words.length ? words : [""], `seed ${seed}`);
      }
    }
    assert.ok(distinct >= 2, "the posteriors should not be one token everywhere");
    model.free();
  } finally {
    be.close();
  }
});
