/**
 * The tokenizer stage (CONMAMBA_SPEC.md §10.3): a SentencePiece model trained on the `wrd`
 * column of the download stage's manifests/train.csv, one utterance per line, with the
 * experiment's token_type, vocab_size and character_coverage (src/text/train.ts holds the rest of
 * the recipe: <unk>=0, <s>=1, </s>=2, no pad, pieces of at most 10 characters).
 *
 * Output: tokenizer.model (loadable by sentencepiece), vocab.txt (piece<TAB>score, as spm_train's
 * .vocab), tokenizer.json (settings, piece count and training statistics).
 *
 * Checks (G18): the model fits the output layer (pieces <= output_neurons), and the experiment's
 * blank/bos/eos ids are the model's <unk>, <s> and </s>. Note (G28): the S2S recipe uses a
 * pretrained 5000-piece model from SpeechBrain's hub; a model trained here with the same settings
 * may give the same pieces different ids, so it cannot be used with that recipe's pretrained LM.
 */
import { join } from "node:path";
import type { Experiment } from "../config/experiment.ts";
import { readLibriSpeechCsv } from "../data/librispeech.ts";
import { UserError } from "../pipeline/errors.ts";
import { defineStage } from "../pipeline/stage.ts";
import { encodeModelProto } from "../text/model_proto.ts";
import { PieceType } from "../text/model.ts";
import { trainTokenizer } from "../text/train.ts";
import { formatVocab } from "../text/vocab_file.ts";

type Keys =
  | "token_type"
  | "vocab_size"
  | "character_coverage"
  | "output_neurons"
  | "blank_index"
  | "bos_index"
  | "eos_index";

export function makeTokenizerStage() {
  return defineStage<Experiment, Keys>({
    name: "tokenizer",
    version: 1,
    description: "SentencePiece model (unigram or char) trained on the training transcripts",
    reads: [
      "token_type",
      "vocab_size",
      "character_coverage",
      "output_neurons",
      "blank_index",
      "bos_index",
      "eos_index",
    ],
    after: ["download"],
    async run(ctx) {
      const c = ctx.config;
      const csv = join(ctx.inputs.download.path, "manifests", "train.csv");
      const rows = await readLibriSpeechCsv(csv);
      ctx.progress.log(
        `tokenizer: training a ${c.token_type} model on ${rows.length} transcripts` +
          (c.token_type === "unigram" ? ` (${c.vocab_size} pieces)` : ""),
      );
      const t0 = performance.now();
      const { model, stats } = trainTokenizer(rows.map((r) => r.wrd), {
        type: c.token_type,
        vocabSize: c.vocab_size,
        characterCoverage: c.character_coverage,
        name: `${csv} (wrd)`,
      });
      const n = model.pieces.length;
      if (n > c.output_neurons) {
        throw new UserError(
          `the ${c.token_type} tokenizer has ${n} pieces but output_neurons is ` +
            `${c.output_neurons}: the output layer must have a unit per piece; ` +
            `set output_neurons to at least ${n}`,
        );
      }
      const idOf = (type: number, piece: string) =>
        model.pieces.findIndex((p) => p.type === type && p.piece === piece);
      const expected = [
        ["blank_index", c.blank_index, idOf(PieceType.UNKNOWN, "<unk>"), "<unk>"],
        ["bos_index", c.bos_index, idOf(PieceType.CONTROL, "<s>"), "<s>"],
        ["eos_index", c.eos_index, idOf(PieceType.CONTROL, "</s>"), "</s>"],
      ] as const;
      for (const [key, value, id, piece] of expected) {
        if (value !== id) {
          throw new UserError(`${key} is ${value}, but the tokenizer puts ${piece} at id ${id}`);
        }
      }
      await ctx.writeFile("tokenizer.model", encodeModelProto(model));
      await ctx.writeFile("vocab.txt", formatVocab(model));
      await ctx.writeFile(
        "tokenizer.json",
        JSON.stringify(
          {
            model_type: c.token_type,
            pieces: n,
            character_coverage: c.character_coverage,
            normalizer: model.normalizerSpec.name,
            special: { "<unk>": 0, "<s>": 1, "</s>": 2 },
            training: stats,
          },
          null,
          1,
        ) + "\n",
      );
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      ctx.progress.log(`tokenizer: ${n} pieces in ${secs} s`);
    },
  });
}
