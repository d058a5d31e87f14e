/**
 * SentencePiece's ModelProto (sentencepiece_model.proto) written and read with our own wire
 * code. Field numbers: ModelProto {1 pieces, 2 trainer_spec, 3 normalizer_spec};
 * SentencePiece {1 piece, 2 score, 3 type}; NormalizerSpec {1 name, 2 precompiled_charsmap,
 * 3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces}; TrainerSpec as in
 * TRAINER_FIELDS. Fields we do not know are skipped on reading (self_test_data,
 * denormalizer_spec, newer trainer options); we never write them.
 */
import {
  defaultTrainerSpec,
  MODEL_TYPE_NUMBERS,
  type ModelType,
  type NormalizerSpec,
  type Piece,
  PieceType,
  type TokenizerModel,
  type TrainerSpec,
} from "./model.ts";
import {
  fieldValue,
  type ProtoField,
  ProtoFormatError,
  ProtoWriter,
  readFields,
} from "./protobuf_wire.ts";

type Kind = "string" | "strings" | "int32" | "uint64" | "bool" | "float" | "modelType";

/** TrainerSpec fields in the order spm_train writes them (field number order). */
const TRAINER_FIELDS: readonly [number, keyof TrainerSpec, Kind][] = [
  [1, "input", "strings"],
  [2, "modelPrefix", "string"],
  [3, "modelType", "modelType"],
  [4, "vocabSize", "int32"],
  [6, "selfTestSampleSize", "int32"],
  [7, "inputFormat", "string"],
  [10, "characterCoverage", "float"],
  [11, "inputSentenceSize", "uint64"],
  [14, "seedSentencepieceSize", "int32"],
  [15, "shrinkingFactor", "float"],
  [16, "numThreads", "int32"],
  [17, "numSubIterations", "int32"],
  [18, "maxSentenceLength", "int32"],
  [19, "shuffleInputSentence", "bool"],
  [20, "maxSentencepieceLength", "int32"],
  [21, "splitByUnicodeScript", "bool"],
  [22, "splitByWhitespace", "bool"],
  [23, "splitByNumber", "bool"],
  [24, "treatWhitespaceAsSuffix", "bool"],
  [25, "splitDigits", "bool"],
  [26, "allowWhitespaceOnlyPieces", "bool"],
  [32, "vocabularyOutputPieceScore", "bool"],
  [33, "hardVocabLimit", "bool"],
  [34, "useAllVocab", "bool"],
  [35, "byteFallback", "bool"],
  [40, "unkId", "int32"],
  [41, "bosId", "int32"],
  [42, "eosId", "int32"],
  [43, "padId", "int32"],
  [44, "unkSurface", "string"],
  [45, "unkPiece", "string"],
  [46, "bosPiece", "string"],
  [47, "eosPiece", "string"],
  [48, "padPiece", "string"],
];

const MODEL_TYPE_NAMES = new Map(
  Object.entries(MODEL_TYPE_NUMBERS).map(([k, v]) => [v, k as ModelType]),
);
const PIECE_TYPES = new Set<number>(Object.values(PieceType));

export function encodeModelProto(m: TokenizerModel): Uint8Array {
  const w = new ProtoWriter();
  for (const p of m.pieces) {
    const pw = new ProtoWriter().string(1, p.piece).float(2, p.score);
    // type is optional with default NORMAL; spm_train leaves it out for normal pieces.
    if (p.type !== PieceType.NORMAL) pw.int32(3, p.type);
    w.message(1, pw);
  }
  const t = new ProtoWriter();
  const spec = m.trainerSpec as unknown as Record<string, unknown>;
  for (const [num, key, kind] of TRAINER_FIELDS) {
    const v = spec[key];
    switch (kind) {
      case "strings":
        for (const s of v as string[]) t.string(num, s);
        break;
      case "string":
        t.string(num, v as string);
        break;
      case "modelType":
        t.int32(num, MODEL_TYPE_NUMBERS[v as ModelType]);
        break;
      case "int32":
        t.int32(num, v as number);
        break;
      case "uint64":
        t.uint64(num, v as number);
        break;
      case "bool":
        t.bool(num, v as boolean);
        break;
      case "float":
        t.float(num, v as number);
        break;
    }
  }
  w.message(2, t);
  const n = m.normalizerSpec;
  w.message(
    3,
    new ProtoWriter()
      .string(1, n.name)
      .bytes(2, n.precompiledCharsmap)
      .bool(3, n.addDummyPrefix)
      .bool(4, n.removeExtraWhitespaces)
      .bool(5, n.escapeWhitespaces),
  );
  return w.finish();
}

/** Parses a .model file's bytes; throws ProtoFormatError naming what is wrong. */
export function decodeModelProto(buf: Uint8Array): TokenizerModel {
  const pieces: Piece[] = [];
  const trainerSpec = defaultTrainerSpec();
  // proto2 defaults of NormalizerSpec.
  const normalizerSpec: NormalizerSpec = {
    name: "",
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  let sawTrainer = false;
  for (const f of readFields(buf)) {
    if (f.field === 1) pieces.push(decodePiece(f, pieces.length));
    else if (f.field === 2) {
      sawTrainer = true;
      decodeTrainerSpec(fieldValue.bytes(f), trainerSpec);
    } else if (f.field === 3) {
      for (const g of readFields(fieldValue.bytes(f))) {
        if (g.field === 1) normalizerSpec.name = fieldValue.string(g);
        else if (g.field === 2) normalizerSpec.precompiledCharsmap = fieldValue.bytes(g).slice();
        else if (g.field === 3) normalizerSpec.addDummyPrefix = fieldValue.bool(g);
        else if (g.field === 4) normalizerSpec.removeExtraWhitespaces = fieldValue.bool(g);
        else if (g.field === 5) normalizerSpec.escapeWhitespaces = fieldValue.bool(g);
      }
    }
  }
  if (pieces.length === 0) throw new ProtoFormatError("no pieces (not a SentencePiece model?)");
  if (!sawTrainer) throw new ProtoFormatError("no trainer_spec (not a SentencePiece model?)");
  return { pieces, trainerSpec, normalizerSpec };
}

function decodePiece(f: ProtoField, id: number): Piece {
  let piece: string | undefined;
  let score = 0;
  let type: number = PieceType.NORMAL;
  for (const g of readFields(fieldValue.bytes(f))) {
    if (g.field === 1) piece = fieldValue.string(g);
    else if (g.field === 2) score = fieldValue.float(g);
    else if (g.field === 3) type = fieldValue.int32(g);
  }
  if (piece === undefined) throw new ProtoFormatError(`piece ${id} has no text`);
  if (!PIECE_TYPES.has(type)) throw new ProtoFormatError(`piece ${id} has unknown type ${type}`);
  return { piece, score, type: type as PieceType };
}

function decodeTrainerSpec(buf: Uint8Array, spec: TrainerSpec) {
  const byNumber = new Map(TRAINER_FIELDS.map(([n, k, kind]) => [n, [k, kind] as const]));
  const out = spec as unknown as Record<string, unknown>;
  spec.input = [];
  for (const g of readFields(buf)) {
    const known = byNumber.get(g.field);
    if (!known) continue;
    const [key, kind] = known;
    switch (kind) {
      case "strings":
        (out[key] as string[]).push(fieldValue.string(g));
        break;
      case "string":
        out[key] = fieldValue.string(g);
        break;
      case "modelType": {
        const t = MODEL_TYPE_NAMES.get(fieldValue.int32(g));
        if (!t) throw new ProtoFormatError(`unknown model_type ${fieldValue.int32(g)}`);
        out[key] = t;
        break;
      }
      case "int32":
        out[key] = fieldValue.int32(g);
        break;
      case "uint64":
        out[key] = fieldValue.uint64(g);
        break;
      case "bool":
        out[key] = fieldValue.bool(g);
        break;
      case "float":
        out[key] = fieldValue.float(g);
        break;
    }
  }
}
