/**
 * searchBatch (the validation search over a padded batch, all utterances' beams in one decoder
 * call per step) gives every utterance bit for bit what searchUtterance gives on its rows alone:
 * best tokens and every finished score, on a tiny initialised S2S model with either decoder, three
 * utterances of different valid lengths (so they finish at different steps), with and without
 * the CTC side.
 */
import assert from "node:assert/strict";
import { loadExperiment } from "../../src/config/load.ts";
import { logSoftmaxRow, searchBatch, searchUtterance } from "../../src/decode/s2s_search.ts";
import { initialize } from "../../src/nn/init.ts";
import { buildModel } from "../../src/nn/model_config.ts";
import { evalContext } from "../../src/nn/module.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";

function rng(seed: number) {
  let a = seed >>> 0;
  return () => ((a = (a * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

Deno.test("searchBatch equals searchUtterance per utterance, bit for bit (both decoders)", async () => {
  const be = await WasmBackend.create({ threads: 2 });
  try {
    for (const decoder_module of ["transformer", "mamba"]) {
      const model = buildModel(be, loadExperiment("tiny", { decoder_module }));
      initialize(model, 11);
      const d = model.options.dModel, V = model.options.vocab;
      const B = 3, T = 12, frames = [T, 7, 4];
      const r = rng(5);
      // Padded rows carry values too (as a real encoder's do); the search must ignore them.
      const enc = Float32Array.from({ length: B * T * d }, () => 2 * r() - 1);
      const lp = new Float32Array(B * T * V);
      for (let i = 0; i < B * T; i++) {
        // Sharp rows, eos likely near the end of each utterance's valid frames.
        const t = i % T, b = Math.floor(i / T);
        const x = Array.from(
          { length: V },
          (_, v) => 6 * r() + (v === 2 && t >= frames[b] - 2 ? 8 : 0),
        );
        lp.set(logSoftmaxRow(x, 1), i * V);
      }
      for (const [ctcWeight, beamSize] of [[0.4, 4], [0, 3], [1, 2]]) {
        const o = {
          beamSize,
          ctcWeight,
          temperature: 1,
          maxDecodeRatio: 1,
          bos: 1,
          eos: 2,
          blank: 0,
        };
        const ctx = evalContext(new Tape());
        const batch = ctx.tape.noGrad(() => searchBatch(model, ctx, enc, lp, frames, o));
        assert.equal(batch.length, B);
        for (let b = 0; b < B; b++) {
          const one = ctx.tape.noGrad(() =>
            searchUtterance(
              model,
              ctx,
              enc.subarray(b * T * d, (b + 1) * T * d),
              lp.subarray(b * T * V, (b + 1) * T * V),
              frames[b],
              o,
            )
          );
          const what = `${decoder_module}, w_ctc ${ctcWeight}, utterance ${b}`;
          assert.deepEqual(batch[b].best, one.best, what);
          assert.equal(batch[b].finished.length, one.finished.length, what);
          batch[b].finished.forEach((f, i) => {
            assert.deepEqual(f.tokens, one.finished[i].tokens, `${what}, finished ${i}`);
            assert.ok(Object.is(f.score, one.finished[i].score), `${what}, finished ${i}`);
          });
        }
        // With the CTC side the utterances stop at different steps (best lengths 11, 7, 4 here),
        // so the lockstep really drops finished utterances mid-search.
        if (ctcWeight > 0) {
          assert.equal(new Set(batch.map((x) => x.best.length)).size, B, decoder_module);
        }
      }
      model.free();
    }
  } finally {
    be.close();
  }
});
