/**
 * BatchPrep (normalisation and SpecAugment of the next batch in a worker while the current one
 * trains, per-utterance parts on helper workers) must give the bits of the in-step path: the same
 * features and, after every batch, the same normaliser statistics, across epoch boundaries and
 * the update_until_epoch freeze, with 0 helpers, 2, and 3 (more than some batches' utterances).
 */
import { InputNormalization } from "../../src/audio/input_normalization.ts";
import { BatchPrep, prepareFeatures } from "../../src/train/batch_prep.ts";
import type { Batch } from "../../src/train/batches.ts";
import { syntheticBatch } from "../../bench/asr_batch.ts";

const SETTINGS = {
  seed: 1234,
  specAugment: {
    timeDrop: { lengthLow: 0, lengthHigh: 20, countLow: 1, countHigh: 3 },
    freqDrop: { lengthLow: 0, lengthHigh: 8, countLow: 1, countHigh: 2 },
    timeWarpWindow: 5,
  },
};

function batches(epoch: number): Batch[] {
  return [3, 2, 4].map((B, i) => {
    const b = syntheticBatch(B, 40 + 7 * i, 5, {
      n_mels: 20,
      output_neurons: 30,
      bos_index: 1,
      eos_index: 2,
    }, 10 * epoch + i);
    b.frames = b.frames.map((n, k) => n - 3 * k); // unequal lengths: padding in the statistics
    return b;
  });
}

async function* source(list: Batch[]): AsyncGenerator<Batch> {
  for (const b of list) yield b;
}

for (const helpers of [0, 2, 3]) {
  Deno.test(`BatchPrep ahead of the trainer, ${helpers} helpers: the bits of the in-step preparation`, async () => {
    const ref = new InputNormalization(20, 2);
    const prep = new BatchPrep(20, 2, SETTINGS, helpers);
    const worker = new InputNormalization(20, 2); // what the trainer adopts from each batch
    try {
      let micro = 5;
      for (const epoch of [1, 2, 3]) {
        const want = batches(epoch), got = batches(epoch);
        prep.reset(worker.state());
        let k = 0;
        for await (const { batch, normalizer } of prep.ahead(source(got), epoch, micro)) {
          const w = want[k++];
          prepareFeatures(ref, { feats: w.feats, shape: w, epoch, micro: micro++ }, SETTINGS);
          if (batch.feats.length !== w.feats.length) throw new Error("feature length changed");
          for (let i = 0; i < w.feats.length; i++) {
            if (!Object.is(batch.feats[i], w.feats[i])) {
              throw new Error(`epoch ${epoch} batch ${k - 1} feature ${i}: ${batch.feats[i]}`);
            }
          }
          worker.load(normalizer);
          const a = ref.state(), b = worker.state();
          if (JSON.stringify(a) !== JSON.stringify(b)) {
            throw new Error(`epoch ${epoch} batch ${k - 1}: normaliser state differs`);
          }
        }
        if (k !== want.length) throw new Error(`epoch ${epoch}: ${k} batches of ${want.length}`);
      }
    } finally {
      prep.close();
    }
  });
}

Deno.test("BatchPrep reports a failing preparation as an error naming it", async () => {
  const prep = new BatchPrep(20, 2, SETTINGS, 2);
  try {
    const b = batches(1)[0];
    b.F = 7; // features are 20 wide: the worker's normaliser cannot take this batch
    b.feats = b.feats.subarray(0, b.B * b.T * 7 + 1).slice();
    let msg = "";
    try {
      for await (const _ of prep.ahead(source([b]), 1, 0)) { /* never reached */ }
    } catch (e) {
      msg = (e as Error).message;
    }
    if (!msg.startsWith("batch preparation")) throw new Error(`no clear error: "${msg}"`);
  } finally {
    prep.close();
  }
});
