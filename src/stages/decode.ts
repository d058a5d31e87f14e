/**
 * The decode stage (CONMAMBA_SPEC.md §9): the averaged model of the train stage in eval mode, the
 * normaliser frozen, each test utterance alone (batch size 1: no padding), in ascending duration.
 *   S2S recipes: the joint CTC/attention beam search (§9.2-9.4). Without an LM the recipe's
 *     "no LM" numbers come from the validation searcher (G4): beam valid_beam_size, decoder
 *     temperature 1, ctc_weight_decode; with one, test_beam_size, test_temperature and lm_weight.
 *   CTC recipes: the recipe's CTC beam search (test_beam_size, beam_prune_logp,
 *     token_prune_min_logp) over the tokenizer's pieces (§9.5).
 * Output per test split: hyp/<split>.txt ("<id> <words>") and nbest/<split>.jsonl
 * ({id, nbest: [{text, score}]}, best first).
 */
import { join } from "node:path";
import { ctcBeamSearchNbest } from "../decode/ctc_beam_search.ts";
import type { Experiment } from "../config/experiment.ts";
import { InputNormalization } from "../audio/input_normalization.ts";
import { FeatureStore } from "../data/feature_store.ts";
import { readLibriSpeechCsv } from "../data/librispeech.ts";
import { evalContext } from "../nn/module.ts";
import { loadStateDictFile } from "../nn/state_dict.ts";
import { defineStage } from "../pipeline/stage.ts";
import { defaultThreads } from "../pipeline/threads.ts";
import { Tape } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { WasmBackend } from "../tensor/wasm_backend.ts";
import { loadTokenizer } from "../text/model_file.ts";
import { splitWords } from "../score/wer.ts";
import { buildModel, MODEL_KEYS, type ModelConfig } from "../nn/model_config.ts";
import { searchUtterance } from "../decode/s2s_search.ts";
import { UserError } from "../pipeline/errors.ts";
import { trainUnsupported } from "./train.ts";

const OWN_KEYS = [
  "test_splits",
  "test_beam_size",
  "valid_beam_size",
  "beam_prune_logp",
  "token_prune_min_logp",
  "blank_index",
  "bos_index",
  "eos_index",
  "ctc_weight_decode",
  "test_temperature",
  "max_decode_ratio",
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
      const tok = await loadTokenizer(join(ctx.inputs.tokenizer.path, "tokenizer.model"));
      const pieces = tok.model.pieces.map((p) => p.piece);
      const store = await FeatureStore.open(ctx.inputs.fbank.path, [...c.test_splits]);
      const norm = new InputNormalization(c.n_mels, 0);
      norm.load(
        JSON.parse(await Deno.readTextFile(join(ctx.inputs.train.path, "normalizer.json"))),
      );
      const be = await WasmBackend.create({ threads: defaultThreads() });
      try {
        const model = buildModel(be, c);
        await loadStateDictFile(model, join(ctx.inputs.train.path, "model.safetensors"));
        const search = {
          beamSize: c.test_beam_size!,
          beamPruneLogp: c.beam_prune_logp ?? -12,
          tokenPruneMinLogp: c.token_prune_min_logp ?? -1.2,
          blank: c.blank_index,
        };
        for (const split of c.test_splits) {
          const rows = await readLibriSpeechCsv(
            join(ctx.inputs.download.path, "manifests", `${split}.csv`),
          );
          rows.sort((a, b) => a.duration - b.duration); // the recipe's test order (§8.4)
          const bar = ctx.progress.bar(`decode ${split}`, { total: rows.length });
          let hyp = "", nbest = "";
          for (const r of rows) {
            const feats = await store.read(split, 100, r.id);
            const T = feats.length / c.n_mels;
            norm.apply(feats, 1, T, [T], 1, false);
            const ectx = evalContext(new Tape());
            try {
              const out = ectx.tape.noGrad(() =>
                model.forward(ectx, Tensor.from(be, [1, T, c.n_mels], feats))
              );
              const [, frames, V] = out.logProbs.shape;
              const lp = out.logProbs.toArray();
              if (model.isS2S) {
                const enc = out.encOut.toArray();
                const res = ectx.tape.noGrad(() =>
                  searchUtterance(model, ectx, enc, lp, frames, {
                    beamSize: c.valid_beam_size!, // "no LM": the validation searcher (G4)
                    ctcWeight: c.ctc_weight_decode!,
                    temperature: 1,
                    maxDecodeRatio: c.max_decode_ratio!,
                    bos: c.bos_index,
                    eos: c.eos_index,
                    blank: c.blank_index,
                  })
                );
                const text = (ids: number[]) =>
                  tok.decodeIds(ids.filter((id) => id < pieces.length && id !== c.eos_index));
                hyp += `${r.id} ${splitWords(text(res.best)).join(" ")}\n`;
                nbest += JSON.stringify({
                  id: r.id,
                  nbest: res.finished.map((f) => ({
                    text: splitWords(text(f.tokens)).join(" "),
                    score: f.score,
                  })),
                }) + "\n";
              } else {
                // Units past the tokenizer's pieces (output_neurons may exceed them) never win:
                // their pieces are "" and decode to nothing.
                const list = ctcBeamSearchNbest(lp, V, frames, [
                  ...pieces,
                  ...Array(Math.max(0, V - pieces.length)).fill(""),
                ], search);
                hyp += `${r.id} ${list[0].words.join(" ")}\n`;
                nbest += JSON.stringify({
                  id: r.id,
                  nbest: list.slice(0, 10).map((b) => ({
                    text: b.words.join(" "),
                    score: b.score,
                  })),
                }) + "\n";
              }
            } finally {
              be.resetStep();
            }
            bar.add(1);
          }
          bar.finish();
          await ctx.writeFile(`hyp/${split}.txt`, hyp);
          await ctx.writeFile(`nbest/${split}.jsonl`, nbest);
        }
        model.free();
      } finally {
        be.close();
      }
    },
  });
}
