/**
 * One utterance from features to words with a trained model (CONMAMBA_SPEC.md §9.1): features
 * normalised by the frozen normaliser, the eval-mode model alone on the utterance (batch 1, no
 * padding), then the experiment's search, detokenised and split into words. Shared by the decode
 * stage (features from the fbank store) and the `transcribe` verb (features of a FLAC file), so
 * both give the same words for the same audio.
 *
 * Searches (`test_search`):
 *   beam    S2S: the joint CTC/attention beam search of the "no LM" numbers — the validation
 *           searcher (G4): beam valid_beam_size, decoder temperature 1, ctc_weight_decode.
 *           CTC: the recipe's CTC beam search (test_beam_size, beam_prune_logp,
 *           token_prune_min_logp) over the tokenizer's pieces (§9.5).
 *   greedy  S2S: the same joint search with beam 1 — at each step the token maximising
 *           (1 - w_ctc) attention + w_ctc CTC prefix score, blank barred, until eos or max steps
 *           (attention-only greedy is ctc_weight_decode 0). CTC: argmax per frame, repeats merged,
 *           blanks dropped, SentencePiece-decoded (the CTC recipes' validation search, §9.5;
 *           unlike the beam search's piece strings, control pieces such as <s> decode to nothing).
 */
import { join } from "node:path";
import { InputNormalization } from "../audio/input_normalization.ts";
import type { Experiment } from "../config/experiment.ts";
import { buildModel, type ModelConfig } from "../nn/model_config.ts";
import type { AsrModel } from "../nn/asr_model.ts";
import { evalContext } from "../nn/module.ts";
import { loadStateDictFile } from "../nn/state_dict.ts";
import { splitWords } from "../score/wer.ts";
import { Tape } from "../tensor/autograd.ts";
import type { Backend } from "../tensor/backend.ts";
import { Tensor } from "../tensor/tensor.ts";
import { loadTokenizer } from "../text/model_file.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { ctcBeamSearchNbest } from "./ctc_beam_search.ts";
import { ctcGreedy } from "./ctc_greedy.ts";
import { searchUtterance } from "./s2s_search.ts";

/** The config keys a transcriber reads besides the model's (MODEL_KEYS). */
export const TRANSCRIBER_KEYS = [
  "test_search",
  "test_beam_size",
  "valid_beam_size",
  "beam_prune_logp",
  "token_prune_min_logp",
  "blank_index",
  "bos_index",
  "eos_index",
  "ctc_weight_decode",
  "max_decode_ratio",
] as const;

export type TranscriberConfig = Pick<
  Experiment,
  (typeof TRANSCRIBER_KEYS)[number] | keyof ModelConfig
>;

/** The files of the train and tokenizer artifacts a transcriber loads. */
export interface TrainedArtifacts {
  /** The train artifact: model.safetensors, normalizer.json. */
  train: string;
  /** The tokenizer artifact: tokenizer.model. */
  tokenizer: string;
}

export interface Transcript {
  words: string[]; // the best hypothesis ([""] or [] when empty, as the search gives it)
  nbest: { text: string; score: number }[]; // best first (CTC beam: at most 10)
}

export class Transcriber {
  readonly #pieces: string[];

  private constructor(
    readonly model: AsrModel,
    readonly normalizer: InputNormalization,
    readonly tokenizer: Tokenizer,
    readonly config: Readonly<TranscriberConfig>,
  ) {
    this.#pieces = tokenizer.model.pieces.map((p) => p.piece);
  }

  /** Builds the model on `be` and loads the artifacts' weights, normaliser and tokenizer. */
  static async load(
    be: Backend,
    config: Readonly<TranscriberConfig>,
    from: TrainedArtifacts,
  ): Promise<Transcriber> {
    const tok = await loadTokenizer(join(from.tokenizer, "tokenizer.model"));
    const norm = new InputNormalization(config.n_mels, 0);
    norm.load(JSON.parse(await Deno.readTextFile(join(from.train, "normalizer.json"))));
    const model = buildModel(be, config);
    try {
      await loadStateDictFile(model, join(from.train, "model.safetensors"));
    } catch (e) {
      model.free();
      throw e;
    }
    return new Transcriber(model, norm, tok, config);
  }

  /** Words of one utterance; feats: its (T, n_mels) log-mel features before normalisation. */
  transcribe(feats: Float32Array): Transcript {
    const c = this.config, model = this.model, be = model.backend;
    const x = Float32Array.from(feats);
    const T = x.length / c.n_mels;
    this.normalizer.apply(x, 1, T, [T], 1, false);
    const ectx = evalContext(new Tape());
    try {
      const out = ectx.tape.noGrad(() => model.forward(ectx, Tensor.from(be, [1, T, c.n_mels], x)));
      const [, frames, V] = out.logProbs.shape;
      const lp = out.logProbs.toArray();
      const greedy = c.test_search === "greedy";
      if (model.isS2S) {
        const enc = out.encOut.toArray();
        const res = ectx.tape.noGrad(() =>
          searchUtterance(model, ectx, enc, lp, frames, {
            beamSize: greedy ? 1 : c.valid_beam_size!, // "no LM": the validation searcher (G4)
            ctcWeight: c.ctc_weight_decode!,
            temperature: 1,
            maxDecodeRatio: c.max_decode_ratio!,
            bos: c.bos_index,
            eos: c.eos_index,
            blank: c.blank_index,
          })
        );
        return {
          words: this.#words(res.best),
          nbest: res.finished.map((f) => ({
            text: this.#words(f.tokens).join(" "),
            score: f.score,
          })),
        };
      }
      if (greedy) {
        const ids = ctcGreedy(lp, V, frames, c.blank_index);
        let score = 0; // the best path's log-probability
        for (let t = 0; t < frames; t++) {
          let m = -Infinity;
          for (let v = 0; v < V; v++) m = Math.max(m, lp[t * V + v]);
          score += m;
        }
        const words = this.#words(ids);
        return { words, nbest: [{ text: words.join(" "), score }] };
      }
      // Units past the tokenizer's pieces (output_neurons may exceed them) never win: their
      // pieces are "" and decode to nothing.
      const pieces = this.#pieces;
      const list = ctcBeamSearchNbest(lp, V, frames, [
        ...pieces,
        ...Array(Math.max(0, V - pieces.length)).fill(""),
      ], {
        beamSize: c.test_beam_size,
        beamPruneLogp: c.beam_prune_logp ?? -12,
        tokenPruneMinLogp: c.token_prune_min_logp ?? -1.2,
        blank: c.blank_index,
      });
      return {
        words: list[0].words,
        nbest: list.slice(0, 10).map((b) => ({ text: b.words.join(" "), score: b.score })),
      };
    } finally {
      be.resetStep();
    }
  }

  /** Token ids to words: eos and units past the tokenizer's pieces dropped, SentencePiece decode. */
  #words(ids: readonly number[]): string[] {
    const n = this.#pieces.length, eos = this.config.eos_index;
    return splitWords(this.tokenizer.decodeIds(ids.filter((id) => id < n && id !== eos)));
  }

  free(): void {
    this.model.free();
  }
}
