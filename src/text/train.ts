/**
 * Training a tokenizer model from lines of text, with the recipe's settings (CONMAMBA_SPEC.md
 * §10.3): <unk>=0, <s>=1, </s>=2, no pad, max piece length 10, add_dummy_prefix,
 * split_by_whitespace, identity normalisation (normalize.ts). Unigram models learn
 * `vocabSize` pieces; char models hold every required character, most frequent first, scored
 * log(count / total), as spm_train --model_type=char builds them.
 */
import { TokenizerError } from "./errors.ts";
import {
  defaultTrainerSpec,
  identityNormalizerSpec,
  type Piece,
  PieceType,
  type TokenizerModel,
} from "./model.ts";
import { prepareText } from "./training_text.ts";
import { trainUnigram } from "./unigram_trainer.ts";

export interface TrainOptions {
  type: "unigram" | "char";
  /** Required for unigram (special pieces included); ignored for char (the text decides). */
  vocabSize?: number | null;
  /** Default 1.0 (the recipe's). */
  characterCoverage?: number;
  /** Default 10 (the recipe's). */
  maxPieceLength?: number;
  /** Names the text in error messages (a file path). */
  name?: string;
  log?: (line: string) => void;
}

export interface TrainStats {
  sentences: number;
  skippedTooLong: number;
  requiredChars: number;
  seeds?: number;
  words?: number;
  emRounds?: number;
}

const SPECIALS: Piece[] = [
  { piece: "<unk>", score: 0, type: PieceType.UNKNOWN },
  { piece: "<s>", score: 0, type: PieceType.CONTROL },
  { piece: "</s>", score: 0, type: PieceType.CONTROL },
];

export function trainTokenizer(
  lines: readonly string[],
  opts: TrainOptions,
): { model: TokenizerModel; stats: TrainStats } {
  const name = opts.name ?? "<text>";
  const spec = defaultTrainerSpec();
  spec.modelType = opts.type;
  spec.characterCoverage = opts.characterCoverage ?? 1.0;
  spec.maxSentencepieceLength = opts.maxPieceLength ?? 10;
  spec.inputFormat = "text";
  spec.numThreads = 1;
  const normalizer = identityNormalizerSpec();
  if (!(spec.characterCoverage > 0 && spec.characterCoverage <= 1)) {
    throw new TokenizerError(`character coverage ${spec.characterCoverage} is not in (0, 1]`);
  }
  const text = prepareText(lines, {
    normalizer,
    characterCoverage: spec.characterCoverage,
    maxSentenceLength: spec.maxSentenceLength,
    name,
  });
  const stats: TrainStats = {
    sentences: text.sentences.length,
    skippedTooLong: text.skippedTooLong,
    requiredChars: text.requiredChars.length,
  };
  let learned: { piece: string; score: number }[];
  if (opts.type === "char") {
    const total = text.requiredChars.reduce((a, [, c]) => a + c, 0);
    // In float32 as spm_train computes it (log count - log total, each rounded), so that the
    // scores are bit for bit spm_train's.
    const f = Math.fround;
    learned = text.requiredChars.map(([cp, c]) => ({
      piece: String.fromCodePoint(cp),
      score: f(f(Math.log(c)) - f(Math.log(total))),
    }));
  } else {
    const vocabSize = opts.vocabSize;
    if (!vocabSize || !Number.isInteger(vocabSize) || vocabSize <= SPECIALS.length) {
      throw new TokenizerError(
        `a unigram model needs a vocabulary size above ${SPECIALS.length} (got ${vocabSize})`,
      );
    }
    const r = trainUnigram(text, {
      vocabSize,
      specialPieces: SPECIALS.length,
      maxPieceLength: spec.maxSentencepieceLength,
      seedLimit: spec.seedSentencepieceSize,
      shrinkingFactor: spec.shrinkingFactor,
      subIterations: spec.numSubIterations,
      name,
      log: opts.log,
    });
    learned = r.pieces;
    Object.assign(stats, r.stats);
  }
  const pieces: Piece[] = [
    ...SPECIALS.map((p) => ({ ...p })),
    ...learned.map(({ piece, score }) => ({ piece, score, type: PieceType.NORMAL })),
  ];
  // The file stores float32; keep the in-memory model equal to what a reader gets back.
  for (const p of pieces) p.score = Math.fround(p.score);
  spec.vocabSize = pieces.length;
  return { model: { pieces, trainerSpec: spec, normalizerSpec: normalizer }, stats };
}
