/**
 * A SentencePiece model in memory: pieces (id = index) with score and type, and the two specs
 * that decide how text is segmented. Field names follow sentencepiece_model.proto.
 */

/** SentencePiece.Type of the model proto. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type PieceType = typeof PieceType[keyof typeof PieceType];

export interface Piece {
  piece: string;
  /** float32 in the file: a log probability for unigram and char models. */
  score: number;
  type: PieceType;
}

export type ModelType = "unigram" | "bpe" | "word" | "char";
export const MODEL_TYPE_NUMBERS: Record<ModelType, number> = {
  unigram: 1,
  bpe: 2,
  word: 3,
  char: 4,
};

/** The TrainerSpec fields this project writes and reads (proto2 defaults where absent). */
export interface TrainerSpec {
  input: string[];
  inputFormat: string;
  modelPrefix: string;
  modelType: ModelType;
  vocabSize: number;
  selfTestSampleSize: number;
  characterCoverage: number;
  inputSentenceSize: number;
  shuffleInputSentence: boolean;
  seedSentencepieceSize: number;
  shrinkingFactor: number;
  maxSentenceLength: number;
  numThreads: number;
  numSubIterations: number;
  maxSentencepieceLength: number;
  splitByUnicodeScript: boolean;
  splitByNumber: boolean;
  splitByWhitespace: boolean;
  treatWhitespaceAsSuffix: boolean;
  allowWhitespaceOnlyPieces: boolean;
  splitDigits: boolean;
  vocabularyOutputPieceScore: boolean;
  hardVocabLimit: boolean;
  useAllVocab: boolean;
  byteFallback: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  unkSurface: string;
}

/** SentencePiece's own defaults (sentencepiece_model.proto), with the recipe's special ids. */
export function defaultTrainerSpec(): TrainerSpec {
  return {
    input: [],
    inputFormat: "",
    modelPrefix: "",
    modelType: "unigram",
    vocabSize: 8000,
    selfTestSampleSize: 0,
    characterCoverage: 0.9995,
    inputSentenceSize: 0,
    shuffleInputSentence: true,
    seedSentencepieceSize: 1000000,
    shrinkingFactor: 0.75,
    maxSentenceLength: 4192,
    numThreads: 16,
    numSubIterations: 2,
    maxSentencepieceLength: 16,
    splitByUnicodeScript: true,
    splitByNumber: true,
    splitByWhitespace: true,
    treatWhitespaceAsSuffix: false,
    allowWhitespaceOnlyPieces: false,
    splitDigits: false,
    vocabularyOutputPieceScore: true,
    hardVocabLimit: true,
    useAllVocab: false,
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkPiece: "<unk>",
    bosPiece: "<s>",
    eosPiece: "</s>",
    padPiece: "<pad>",
    unkSurface: " \u2047 ",
  };
}

export interface NormalizerSpec {
  /** "identity" for the models this project trains (see normalize.ts). */
  name: string;
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export function identityNormalizerSpec(): NormalizerSpec {
  return {
    name: "identity",
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
}

export interface TokenizerModel {
  pieces: Piece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
}
