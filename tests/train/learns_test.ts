/**
 * The S2S training step learns: a small ConMamba + Transformer decoder model trained by
 * AsrTrainer (dropout on, the joint CTC/attention objective, Adam at a Noam rate) on four
 * synthetic utterances - each token a fixed random spectral pattern held for a few frames, with
 * noise - drives its loss far below the start, and greedy decoding (CTC argmax collapse, and the
 * joint search with beam 1) of a training utterance returns its tokens. Synthetic features keep
 * the test fast and independent of the corpus generator; the stage-level tests use real audio.
 */
import assert from "node:assert/strict";
import { InputNormalization } from "../../src/audio/input_normalization.ts";
import { ctcGreedy } from "../../src/decode/ctc_greedy.ts";
import { searchUtterance } from "../../src/decode/s2s_search.ts";
import { AsrModel } from "../../src/nn/asr_model.ts";
import { initialize } from "../../src/nn/init.ts";
import { evalContext } from "../../src/nn/module.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { AsrTrainer } from "../../src/train/step.ts";
import { patternedBatch, tokenPatterns } from "../fixtures/patterned_batch.ts";
import { Rng } from "../../src/nn/init.ts";

const F = 40, V = 12, HOLD = 8; // features, vocabulary (0 blank/pad, 1 bos, 2 eos), frames per token
const UTTS = [[3, 4, 5, 6], [7, 8, 3, 9, 10], [11, 5, 8], [6, 9, 4, 7, 11]];

Deno.test("training step: the S2S loss falls far below its start and greedy decoding becomes right", async () => {
  const be = await WasmBackend.create({ threads: 2 });
  try {
    const model = new AsrModel(be, {
      encoder: "conmamba",
      decoder: "transformer",
      dModel: 32,
      dFfn: 64,
      numEncoderLayers: 1,
      numDecoderLayers: 1,
      heads: 2,
      vocab: V,
      nMels: F,
      kernelSize: 7,
      cnnChannels: [8, 8],
    });
    initialize(model, 11);
    const rng = new Rng(5);
    const patterns = tokenPatterns(V, F, rng);
    const none = { lengthLow: 1, lengthHigh: 2, countLow: 0, countHigh: 0 };
    const norm = new InputNormalization(F, 1000);
    const tr = new AsrTrainer(model, norm, {
      seed: 3,
      gradAccumulation: 1,
      maxGradNorm: 5,
      optimizer: "Adam",
      lr: 3e-3,
      betas: [0.9, 0.98],
      eps: 1e-9,
      weightDecay: 0,
      warmup: 20,
      blank: 0,
      ctcWeight: 0.3,
      labelSmoothing: 0,
      specAugment: { timeDrop: none, freqDrop: none, timeWarpWindow: null },
    });
    const losses: number[] = [];
    for (let i = 0; i < 150; i++) {
      losses.push(tr.step(patternedBatch(UTTS, patterns, rng, HOLD), 1).loss);
    }
    const first = losses[0], last = losses.slice(-10).reduce((a, x) => a + x, 0) / 10;
    console.log(`loss ${first.toFixed(2)} -> ${last.toFixed(3)} (mean of the last 10 steps)`);
    assert.ok(last < first / 10, `loss ${first} -> ${last}`);

    // Greedy decoding of training utterance 1, alone, eval mode, the normaliser frozen.
    const batch = patternedBatch(UTTS, patterns, rng, HOLD);
    const T1 = batch.frames[1];
    const x = batch.feats.slice(batch.T * F, batch.T * F + T1 * F);
    norm.apply(x, 1, T1, [T1], 2, false);
    const ctx = evalContext(new Tape());
    const { lp, enc, frames } = ctx.tape.noGrad(() => {
      const e = model.encode(ctx, Tensor.from(be, [1, T1, F], x));
      return { lp: e.logProbs.toArray(), enc: e.encOut.toArray(), frames: e.logProbs.shape[1] };
    });
    assert.deepEqual(ctcGreedy(lp, V, frames, 0), UTTS[1]);
    const res = ctx.tape.noGrad(() =>
      searchUtterance(model, ctx, enc, lp, frames, {
        beamSize: 1,
        ctcWeight: 0,
        temperature: 1,
        maxDecodeRatio: 1,
        bos: 1,
        eos: 2,
        blank: 0,
      })
    );
    assert.deepEqual(res.best, UTTS[1]);
    tr.free();
    model.free();
  } finally {
    be.close();
  }
});
