/**
 * The decode stage (CONMAMBA_SPEC.md §9): the averaged model of the train stage in eval mode, the
 * normaliser frozen, each test utterance alone (batch size 1: no padding), in ascending duration.
 *   S2S recipes: the joint CTC/attention beam search (§9.2-9.4). Without an LM the recipe's
 *     "no LM" numbers come from the validation searcher (G4): beam valid_beam_size, decoder
 *     temperature 1, ctc_weight_decode; with one, test_beam_size, test_temperature and lm_weight.
 *   CTC recipes: the recipe's CTC beam search (test_beam_size, beam_prune_logp,
 *     token_prune_min_logp) over the tokenizer's pieces (§9.5).
 *   test_search: greedy replaces either by its greedy form (src/decode/transcriber.ts, which holds
 *     the per-utterance features -> words path this stage shares with `conmamba transcribe`).
 * Output per test split: hyp/<split>.txt ("<id> <words>") and nbest/<split>.jsonl
 * ({id, nbest: [{text, score}]}, best first).
 */
import { join } from "node:path";
import type { Experiment } from "../config/experiment.ts";
import { FeatureStore } from "../data/feature_store.ts";
import { readLibriSpeechCsv } from "../data/librispeech.ts";
import { Transcriber, TRANSCRIBER_KEYS } from "../decode/transcriber.ts";
import { MODEL_KEYS, type ModelConfig } from "../nn/model_config.ts";
import { UserError } from "../pipeline/errors.ts";
import { defineStage } from "../pipeline/stage.ts";
import { defaultThreads } from "../pipeline/threads.ts";
import { createBackend } from "../tensor/compute_backend.ts";
import { trainUnsupported } from "./train.ts";

const OWN_KEYS = [
  "test_splits",
  ...TRANSCRIBER_KEYS,
  "test_temperature",
  "lm",
  "lm_weight",
] as const;

type Keys = (typeof OWN_KEYS)[number] | keyof ModelConfig;

export function makeDecodeStage() {
  return defineStage<Experiment, Keys>({
    name: "decode",
    version: 2,
    description: "hypotheses of the test splits with the recipe's search",
    reads: [...OWN_KEYS, ...MODEL_KEYS],
    after: ["download", "fbank", "tokenizer", "train"],
    usesKernels: true,
    async run(ctx) {
      const c = ctx.config;
      const why = trainUnsupported(c);
      if (why) throw new Error(why);
      if (c.lm !== null) {
        throw new UserError(
          `lm: ${c.lm}: shallow fusion has its hook in the S2S search (src/decode/s2s_search.ts), ` +
            "but this build cannot load a Transformer LM checkpoint yet; set lm: null",
        );
      }
      const store = await FeatureStore.open(ctx.inputs.fbank.path, [...c.test_splits]);
      const be = await createBackend(defaultThreads());
      try {
        const tr = await Transcriber.load(be, c, {
          train: ctx.inputs.train.path,
          tokenizer: ctx.inputs.tokenizer.path,
        });
        for (const split of c.test_splits) {
          const rows = await readLibriSpeechCsv(
            join(ctx.inputs.download.path, "manifests", `${split}.csv`),
          );
          rows.sort((a, b) => a.duration - b.duration); // the recipe's test order (§8.4)
          const bar = ctx.progress.bar(`decode ${split}`, { total: rows.length });
          let hyp = "", nbest = "";
          for (const r of rows) {
            const t = tr.transcribe(await store.read(split, 100, r.id));
            hyp += `${r.id} ${t.words.join(" ")}\n`;
            nbest += JSON.stringify({ id: r.id, nbest: t.nbest }) + "\n";
            bar.add(1);
          }
          bar.finish();
          await ctx.writeFile(`hyp/${split}.txt`, hyp);
          await ctx.writeFile(`nbest/${split}.jsonl`, nbest);
        }
        tr.free();
      } finally {
        be.close();
      }
    },
  });
}
