/**
 * SentencePiece's unigram language-model trainer (Kudo 2018, as spm_train runs it):
 *
 *   seeds (seed_pieces.ts) -> repeat { 2 x (E step: expected piece counts by forward-backward
 *   over every word's lattice; M step: drop pieces expected < 0.5 times, score = digamma(count)
 *   - digamma(total)) ; stop once <= 1.1 x vocab pieces remain ; prune to max(1.1 x vocab,
 *   0.75 x size) by the loss of likelihood if each piece were replaced by its best split }
 *   -> keep the required characters and the best-scoring pieces up to the vocabulary size.
 *
 * Words (split_by_whitespace) with their counts are the training units; every computation runs
 * in a fixed order in float64, so the same text gives the same pieces and scores.
 */
import { digamma } from "./digamma.ts";
import { TokenizerError } from "./errors.ts";
import { splitWords } from "./normalize.ts";
import { seedPieces } from "./seed_pieces.ts";
import { compareCodePoints, type PreparedText } from "./training_text.ts";
import { Lattices, UNK_NODE, UNK_PENALTY, type Vocab } from "./unigram_lattice.ts";

export interface UnigramOptions {
  /** Pieces in the final model, the special pieces included. */
  vocabSize: number;
  /** Number of special pieces (<unk>, <s>, </s>) that take ids before the learned ones. */
  specialPieces: number;
  maxPieceLength: number;
  seedLimit: number;
  shrinkingFactor: number;
  subIterations: number;
  /** Names the text in errors. */
  name: string;
  log?: (line: string) => void;
}

export interface LearnedPieces {
  /** Learned pieces, best score first (ties: code point order). */
  pieces: { piece: string; score: number }[];
  stats: { seeds: number; words: number; emRounds: number };
}

/** Piece scores below this expected count are dropped in the M step. */
const MIN_EXPECTED = 0.5;
/** Required characters missing from the model get min score - k x this (most frequent first). */
const REQUIRED_CHAR_PENALTY = 0.0001;

export function trainUnigram(text: PreparedText, opts: UnigramOptions): LearnedPieces {
  const log = opts.log ?? (() => {});
  const need = opts.vocabSize - opts.specialPieces;
  if (text.requiredChars.length >= need) {
    throw new TokenizerError(
      `${opts.name}: vocabulary size ${opts.vocabSize} leaves no room for subwords: the text has ` +
        `${text.requiredChars.length} characters to cover plus ${opts.specialPieces} special ` +
        `pieces; raise the vocabulary size or lower character_coverage`,
    );
  }

  // Distinct words, with whether they ended their sentence (the seeds need that), then merged.
  const flagged = new Map<string, number>();
  for (const s of text.sentences) {
    const ws = splitWords(s);
    ws.forEach((w, i) => {
      const key = (i === ws.length - 1 ? "1" : "0") + w;
      flagged.set(key, (flagged.get(key) ?? 0) + 1);
    });
  }
  const seeds = seedPieces(flagged, { maxLength: opts.maxPieceLength, limit: opts.seedLimit });
  log(`seed pieces: ${seeds.pieces.length}`);
  const merged = new Map<string, number>();
  for (const [key, f] of flagged) merged.set(key.slice(1), (merged.get(key.slice(1)) ?? 0) + f);
  const words = [...merged].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  const freqs = Float64Array.from(words, ([, f]) => f);
  const totalFreq = freqs.reduce((a, b) => a + b, 0);
  const ids = new Map(seeds.pieces.map((p, i) => [p, i]));
  const lattices = new Lattices(words.map(([w]) => w), ids, opts.maxPieceLength);
  log(`words: ${words.length}, lattice nodes: ${lattices.piece.length}`);

  const n = seeds.pieces.length;
  const vocab: Vocab = {
    alive: new Uint8Array(n).fill(1),
    score: Float64Array.from(seeds.scores),
    unkScore: 0,
  };
  let order = Array.from({ length: n }, (_, i) => i); // the model's piece order
  const desired = Math.floor(opts.vocabSize * 1.1);
  let rounds = 0;
  for (;; rounds++) {
    for (let it = 0; it < opts.subIterations; it++) {
      setUnk(vocab, order);
      const expected = new Float64Array(n);
      let objective = 0;
      for (let w = 0; w < lattices.count; w++) {
        objective -= freqs[w] * lattices.marginals(w, vocab, freqs[w], expected) / totalFreq;
      }
      order = mStep(vocab, order, expected);
      log(`EM round ${rounds}.${it}: pieces ${order.length}, objective ${objective.toFixed(5)}`);
    }
    if (order.length <= desired) break;
    order = prune(vocab, order, seeds.pieces, lattices, freqs, desired, opts);
  }
  return {
    pieces: finalize(vocab, order, seeds.pieces, text.requiredChars, need, opts),
    stats: { seeds: n, words: words.length, emRounds: rounds + 1 },
  };
}

function setUnk(v: Vocab, order: readonly number[]) {
  let min = Infinity;
  for (const id of order) min = Math.min(min, v.score[id]);
  v.unkScore = min - UNK_PENALTY;
}

/** Bayesian M step: psi(expected) - psi(sum of kept expected counts). */
function mStep(v: Vocab, order: readonly number[], expected: Float64Array): number[] {
  const kept: number[] = [];
  let sum = 0;
  for (const id of order) {
    if (expected[id] < MIN_EXPECTED) {
      v.alive[id] = 0;
      continue;
    }
    kept.push(id);
    sum += expected[id];
  }
  const logSum = digamma(sum);
  for (const id of kept) v.score[id] = digamma(expected[id]) - logSum;
  return kept;
}

/**
 * Keeps pieces that cannot be split (or whose best split is themselves with no alternative),
 * drops pieces that Viterbi never uses or that Viterbi splits anyway, and ranks the rest by
 * how much the corpus likelihood would fall if their uses went to their best split instead.
 */
function prune(
  v: Vocab,
  order: number[],
  texts: readonly string[],
  lattices: Lattices,
  freqs: Float64Array,
  desired: number,
  opts: UnigramOptions,
): number[] {
  setUnk(v, order);
  // Each live piece's own lattice: its best split when it is left out.
  const strings = order.map((id) => texts[id]);
  const own = new Lattices(
    strings,
    new Map(order.map((id) => [texts[id], id])),
    opts.maxPieceLength,
  );
  const alternatives: (number[] | null)[] = [];
  const splitAnyway: boolean[] = [];
  order.forEach((id, i) => {
    const best = own.viterbi(i, v)!;
    if (best.length >= 2) {
      splitAnyway.push(true);
      alternatives.push(null);
      return;
    }
    splitAnyway.push(false);
    // The node covering the whole piece is the last of its begin-0 nodes (longest).
    let whole = -1;
    for (let k = own.offset[i]; k < own.offset[i + 1]; k++) {
      if (own.begin[k] === 0 && own.end[k] === own.length[i] && own.piece[k] === id) whole = k;
    }
    alternatives.push(own.length[i] > 1 ? own.viterbi(i, v, whole) : null);
  });

  const freq = new Float64Array(v.alive.length);
  let vsum = 0;
  for (let w = 0; w < lattices.count; w++) {
    vsum += freqs[w];
    for (const p of lattices.viterbi(w, v)!) if (p !== UNK_NODE) freq[p] += freqs[w];
  }
  let sum = 0;
  for (const id of order) sum += freq[id];
  const logSum = Math.log(sum);

  const next: number[] = [];
  const candidates: [number, number][] = []; // (position in order, loss)
  order.forEach((id, i) => {
    if (freq[id] === 0 || splitAnyway[i]) return;
    const alt = alternatives[i];
    if (!alt) {
      next.push(id);
      return;
    }
    // A piece occurs in the Viterbi paths of F (share of words, by count) ...
    const share = freq[id] / vsum;
    const logProb = Math.log(freq[id]) - logSum;
    // ... and if removed, its count moves to each piece of its split.
    const logSumAlt = Math.log(sum + freq[id] * (alt.length - 1));
    let logProbAlt = 0;
    // An unknown node in the split (its character was dropped) counts with frequency 0, which
    // is what SentencePiece's trainer reads for id -1.
    for (const a of alt) {
      logProbAlt += Math.log((a === UNK_NODE ? 0 : freq[a]) + freq[id]) - logSumAlt;
    }
    candidates.push([i, share * (logProb - logProbAlt)]);
  });
  const size = Math.max(desired, Math.floor(opts.shrinkingFactor * order.length));
  candidates.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  for (const [i] of candidates) {
    if (next.length >= size) break;
    next.push(order[i]);
  }
  opts.log?.(`prune: ${order.length} -> ${next.length} pieces`);
  const keep = new Set(next);
  for (const id of order) if (!keep.has(id)) v.alive[id] = 0;
  return next;
}

function finalize(
  v: Vocab,
  order: readonly number[],
  texts: readonly string[],
  required: readonly [number, number][],
  need: number,
  opts: UnigramOptions,
): { piece: string; score: number }[] {
  let min = Infinity;
  for (const id of order) min = Math.min(min, v.score[id]);
  const score = new Map(order.map((id) => [texts[id], v.score[id]]));
  const final = new Map<string, number>();
  let penalty = 0;
  for (const [cp] of required) {
    const ch = String.fromCodePoint(cp);
    const s = score.get(ch);
    if (s !== undefined) final.set(ch, s);
    else {
      final.set(ch, min - penalty);
      penalty += REQUIRED_CHAR_PENALTY;
    }
  }
  const byScore = (a: [string, number], b: [string, number]) =>
    b[1] - a[1] || compareCodePoints(a[0], b[0]);
  for (const [p, s] of [...score].sort(byScore)) {
    if (final.size >= need) break;
    if (!final.has(p)) final.set(p, s);
  }
  if (final.size < need) {
    throw new TokenizerError(
      `${opts.name}: vocabulary size ${opts.vocabSize} is too large for this text: training ` +
        `ends with ${final.size + opts.specialPieces} pieces (special ones included); ` +
        `use a vocabulary size <= ${final.size + opts.specialPieces} or more text`,
    );
  }
  return [...final].sort(byScore).map(([piece, s]) => ({ piece, score: s }));
}
