/**
 * The decode stage, CTC recipes (CONMAMBA_SPEC.md §9.1, §9.5): the averaged model of the train
 * stage in eval mode, the normaliser frozen, each test utterance alone (batch size 1: no padding),
 * the recipe's CTC beam search (test_beam_size, beam_prune_logp, token_prune_min_logp) over the
 * tokenizer's pieces. Output per test split: hyp/<split>.txt ("<id> <words>") and
 * nbest/<split>.jsonl ({id, nbest: [{text, score}]}, best first).
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
import { ctcModelFor, trainUnsupported } from "./train.ts";

type Keys =
  | "test_splits"
  | "test_beam_size"
  | "beam_prune_logp"
  | "token_prune_min_logp"
  | "blank_index"
  | "d_model"
  | "d_ffn"
  | "num_encoder_layers"
  | "output_neurons"
  | "n_mels"
  | "conv_kernel_size"
  | "transformer_dropout"
  | "cnn_out_channels"
  | "decoder_module"
  | "encoder_module"
  | "d_state"
  | "expand"
  | "d_conv"
  | "time_warp_window";

export function makeDecodeStage() {
  return defineStage<Experiment, Keys>({
    name: "decode",
    version: 1,
    description: "hypotheses of the test splits with the recipe's search (CTC recipes so far)",
    reads: [
      "test_splits",
      "test_beam_size",
      "beam_prune_logp",
      "token_prune_min_logp",
      "blank_index",
      "d_model",
      "d_ffn",
      "num_encoder_layers",
      "output_neurons",
      "n_mels",
      "conv_kernel_size",
      "transformer_dropout",
      "cnn_out_channels",
      "decoder_module",
      "encoder_module",
      "d_state",
      "expand",
      "d_conv",
      "time_warp_window",
    ],
    after: ["download", "fbank", "tokenizer", "train"],
    usesKernels: true,
    async run(ctx) {
      const c = ctx.config;
      const why = trainUnsupported(c);
      if (why) throw new Error(why);
      const tok = await loadTokenizer(join(ctx.inputs.tokenizer.path, "tokenizer.model"));
      const pieces = tok.model.pieces.map((p) => p.piece);
      const store = await FeatureStore.open(ctx.inputs.fbank.path, [...c.test_splits]);
      const norm = new InputNormalization(c.n_mels, 0);
      norm.load(
        JSON.parse(await Deno.readTextFile(join(ctx.inputs.train.path, "normalizer.json"))),
      );
      const be = await WasmBackend.create({ threads: defaultThreads() });
      try {
        const model = ctcModelFor(be, c);
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
              // Units past the tokenizer's pieces (output_neurons may exceed them) never win:
              // their pieces are "" and decode to nothing.
              const list = ctcBeamSearchNbest(lp, V, frames, [
                ...pieces,
                ...Array(Math.max(0, V - pieces.length)).fill(""),
              ], search);
              hyp += `${r.id} ${list[0].words.join(" ")}\n`;
              nbest += JSON.stringify({
                id: r.id,
                nbest: list.slice(0, 10).map((b) => ({ text: b.words.join(" "), score: b.score })),
              }) + "\n";
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
