/**
 * Encoding and decoding with a SentencePiece model, segmenting exactly as spm_encode does.
 *
 * Unigram: Viterbi over the lattice of every piece that matches the normalised text, scores
 * added in float32 as SentencePiece does, the earliest-beginning last piece winning ties; a
 * character no piece covers becomes an unknown node (score: lowest piece score - 10).
 * Char: one piece per character. Unknown pieces keep their surface text (as
 * --output_format=piece prints them) and id <unk>; adjacent unknowns merge into one, as in
 * SentencePiece.
 */
import { TokenizerError } from "./errors.ts";
import { PieceType, type TokenizerModel } from "./model.ts";
import { denormalize, normalize } from "./normalize.ts";
import { UNK_PENALTY } from "./unigram_lattice.ts";

export interface Token {
  piece: string;
  id: number;
}

export class Tokenizer {
  readonly model: TokenizerModel;
  readonly unkId: number;
  #ids = new Map<string, number>(); // every piece's id, for decoding and lookups
  #normal = new Map<string, number>(); // pieces that text can match
  #maxChars = 1;
  #unkScore: number;
  #asciiOnly: boolean;

  /** `name` (the file) is named in errors about the model. */
  constructor(model: TokenizerModel, name = "<model>") {
    this.model = model;
    const type = model.trainerSpec.modelType;
    if (type !== "unigram" && type !== "char") {
      throw new TokenizerError(`${name}: model type ${type} is not supported (unigram, char)`);
    }
    // Other normalisers (nmt_nfkc, the recipe's default) are the identity on printable ASCII,
    // LibriSpeech's alphabet; we apply them there only (normalize() refuses other text).
    this.#asciiOnly = model.normalizerSpec.name !== "identity" ||
      model.normalizerSpec.precompiledCharsmap.length > 0;
    let unk = -1;
    let minScore = Infinity;
    model.pieces.forEach((p, id) => {
      if (this.#ids.has(p.piece)) throw new TokenizerError(`${name}: piece "${p.piece}" twice`);
      this.#ids.set(p.piece, id);
      if (p.type === PieceType.UNKNOWN) {
        if (unk >= 0) throw new TokenizerError(`${name}: more than one <unk> piece`);
        unk = id;
      } else if (p.type === PieceType.NORMAL) {
        this.#normal.set(p.piece, id);
        this.#maxChars = Math.max(this.#maxChars, [...p.piece].length);
        minScore = Math.min(minScore, p.score);
      } else if (p.type === PieceType.USER_DEFINED || p.type === PieceType.BYTE) {
        throw new TokenizerError(
          `${name}: piece "${p.piece}" is user-defined or a byte piece; not supported`,
        );
      }
    });
    if (unk < 0) throw new TokenizerError(`${name}: the model has no <unk> piece`);
    this.unkId = unk;
    this.#unkScore = Math.fround(minScore - UNK_PENALTY);
  }

  get size(): number {
    return this.model.pieces.length;
  }

  pieceToId(piece: string): number {
    return this.#ids.get(piece) ?? this.unkId;
  }

  normalize(text: string): string {
    if (this.#asciiOnly && /[^\x20-\x7e]/.test(text)) {
      throw new TokenizerError(
        `text ${JSON.stringify(text.slice(0, 40))} has characters outside printable ASCII, and ` +
          `this model's normaliser (${this.model.normalizerSpec.name}) is only reproduced there`,
      );
    }
    return normalize(text, this.model.normalizerSpec);
  }

  encode(text: string): Token[] {
    const s = this.normalize(text);
    const tokens = this.model.trainerSpec.modelType === "char" ? this.#chars(s) : this.#viterbi(s);
    const out: Token[] = [];
    for (const t of tokens) {
      const last = out.at(-1);
      if (t.id === this.unkId && last?.id === this.unkId) last.piece += t.piece;
      else out.push(t);
    }
    return out;
  }

  #chars(s: string): Token[] {
    return [...s].map((ch) => ({ piece: ch, id: this.#normal.get(ch) ?? this.unkId }));
  }

  #viterbi(s: string): Token[] {
    const chars = [...s];
    const n = chars.length;
    const best = new Float64Array(n + 1).fill(-Infinity);
    const from = new Int32Array(n + 1);
    const id = new Int32Array(n + 1);
    best[0] = 0;
    const pieces = this.model.pieces;
    for (let b = 0; b < n; b++) {
      let single = false;
      let sub = "";
      for (let e = b + 1; e <= n && e - b <= this.#maxChars; e++) {
        sub += chars[e - 1];
        const k = this.#normal.get(sub);
        if (k === undefined) continue;
        if (e === b + 1) single = true;
        const score = Math.fround(best[b] + pieces[k].score);
        if (best[e] === -Infinity || score > best[e]) {
          best[e] = score;
          from[e] = b;
          id[e] = k;
        }
      }
      if (!single) {
        const score = Math.fround(best[b] + this.#unkScore);
        if (best[b + 1] === -Infinity || score > best[b + 1]) {
          best[b + 1] = score;
          from[b + 1] = b;
          id[b + 1] = this.unkId;
        }
      }
    }
    const out: Token[] = [];
    for (let e = n; e > 0; e = from[e]) {
      const k = id[e];
      out.push({
        piece: k === this.unkId ? chars.slice(from[e], e).join("") : pieces[k].piece,
        id: k,
      });
    }
    return out.reverse();
  }

  /** Pieces back to text; <unk> becomes the model's unk surface (" ⁇ "), control pieces vanish. */
  decodePieces(pieces: readonly string[]): string {
    return this.decodeIds(pieces.map((p) => this.pieceToId(p)));
  }

  decodeIds(ids: readonly number[]): string {
    const parts: string[] = [];
    for (const id of ids) {
      const p = this.model.pieces[id];
      if (!p) throw new TokenizerError(`id ${id} is outside the vocabulary (${this.size} pieces)`);
      if (p.type === PieceType.CONTROL) continue;
      parts.push(p.type === PieceType.UNKNOWN ? this.model.trainerSpec.unkSurface : p.piece);
    }
    return denormalize(parts, this.model.normalizerSpec);
  }
}
