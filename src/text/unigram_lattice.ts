/**
 * Segmentation lattices of many strings over one candidate vocabulary whose pieces come and go
 * (the trainer's EM). The nodes (every substring that is a candidate piece) are found once; each
 * pass looks only at the live ones. Nodes are kept in (begin, length) order, the order
 * SentencePiece inserts them, which fixes Viterbi's choice among equal scores: the path through
 * the earliest-beginning last node wins. A position that no live one-character piece covers gets
 * an unknown node (score: lowest live score - 10), so every string has a path.
 *
 * Unknown nodes carry the id UNK_NODE (-1), as in SentencePiece's trainer: they add to no
 * expected or Viterbi count. (Once the M step has dropped a rare single character, they appear
 * in pruning alternatives; see unigram_trainer.ts.)
 */
import { codePoints } from "./piece_rules.ts";

/** Score of the unknown node below the lowest piece score (SentencePiece's kUnkPenalty). */
export const UNK_PENALTY = 10;
/** The current vocabulary: which candidate ids live, with their log probabilities. */
export interface Vocab {
  alive: Uint8Array; // (candidates,)
  score: Float64Array; // (candidates,)
  unkScore: number;
}

/** Piece id of unknown nodes on a path. */
export const UNK_NODE = -1;

export class Lattices {
  readonly count: number;
  /** Characters per string. */
  readonly length: Int32Array; // (count,)
  /** Nodes of string w: indices offset[w] .. offset[w+1]-1. */
  readonly offset: Int32Array; // (count + 1,)
  readonly begin: Int32Array; // (nodes,)
  readonly end: Int32Array; // (nodes,)
  readonly piece: Int32Array; // (nodes,)
  readonly maxLength: number;
  #alpha: Float64Array;
  #beta: Float64Array;
  #covered: Uint8Array;
  #back: Int32Array;

  constructor(strings: readonly string[], ids: ReadonlyMap<string, number>, maxPiece: number) {
    this.count = strings.length;
    this.length = new Int32Array(strings.length);
    this.offset = new Int32Array(strings.length + 1);
    const begin: number[] = [];
    const end: number[] = [];
    const piece: number[] = [];
    let maxLength = 0;
    strings.forEach((s, w) => {
      const { cps, offsets } = codePoints(s);
      const n = cps.length;
      this.length[w] = n;
      maxLength = Math.max(maxLength, n);
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j <= n && j - i <= maxPiece; j++) {
          const id = ids.get(s.slice(offsets[i], offsets[j]));
          if (id === undefined) continue;
          begin.push(i);
          end.push(j);
          piece.push(id);
        }
      }
      this.offset[w + 1] = begin.length;
    });
    this.begin = Int32Array.from(begin);
    this.end = Int32Array.from(end);
    this.piece = Int32Array.from(piece);
    this.maxLength = maxLength;
    this.#alpha = new Float64Array(maxLength + 1);
    this.#beta = new Float64Array(maxLength + 1);
    this.#covered = new Uint8Array(maxLength);
    this.#back = new Int32Array(maxLength + 1);
  }

  /** Marks the positions of string w that a live one-character piece covers. */
  #cover(w: number, v: Vocab) {
    const n = this.length[w];
    this.#covered.fill(0, 0, n);
    for (let k = this.offset[w]; k < this.offset[w + 1]; k++) {
      if (v.alive[this.piece[k]] && this.end[k] - this.begin[k] === 1) {
        this.#covered[this.begin[k]] = 1;
      }
    }
  }

  /**
   * Forward-backward over string w: adds freq x the posterior probability of every live node to
   * expected[piece] (not for unknown nodes) and returns log Z, the log marginal
   * likelihood of the string.
   */
  marginals(w: number, v: Vocab, freq: number, expected: Float64Array): number {
    const n = this.length[w];
    const k0 = this.offset[w];
    const k1 = this.offset[w + 1];
    const alpha = this.#alpha;
    const beta = this.#beta;
    const covered = this.#covered;
    this.#cover(w, v);
    alpha.fill(-Infinity, 0, n + 1);
    alpha[0] = 0;
    let k = k0;
    for (let b = 0; b < n; b++) {
      const a = alpha[b];
      if (!covered[b]) alpha[b + 1] = logAdd(alpha[b + 1], a + v.unkScore);
      for (; k < k1 && this.begin[k] === b; k++) {
        const p = this.piece[k];
        if (v.alive[p]) alpha[this.end[k]] = logAdd(alpha[this.end[k]], a + v.score[p]);
      }
    }
    beta.fill(-Infinity, 0, n + 1);
    beta[n] = 0;
    k = k1 - 1;
    for (let b = n - 1; b >= 0; b--) {
      let acc = covered[b] ? -Infinity : v.unkScore + beta[b + 1];
      for (; k >= k0 && this.begin[k] === b; k--) {
        const p = this.piece[k];
        if (v.alive[p]) acc = logAdd(acc, v.score[p] + beta[this.end[k]]);
      }
      beta[b] = acc;
    }
    const logZ = alpha[n];
    for (k = k0; k < k1; k++) {
      const p = this.piece[k];
      if (!v.alive[p]) continue;
      expected[p] += freq * Math.exp(alpha[this.begin[k]] + v.score[p] + beta[this.end[k]] - logZ);
    }
    return logZ;
  }

  /**
   * The best segmentation of string w: piece ids (UNK_NODE for unknown nodes), in order.
   * `skip` (a node index) is left out of the lattice: the second-best path of a one-node best.
   * Returns null when no path exists.
   */
  viterbi(w: number, v: Vocab, skip = -1): number[] | null {
    const n = this.length[w];
    const k0 = this.offset[w];
    const k1 = this.offset[w + 1];
    const best = this.#alpha;
    const back = this.#back; // node index of the best last node, -1 - b for an unknown from b
    const covered = this.#covered;
    this.#cover(w, v);
    best.fill(-Infinity, 0, n + 1);
    best[0] = 0;
    let k = k0;
    for (let b = 0; b < n; b++) {
      const a = best[b];
      for (; k < k1 && this.begin[k] === b; k++) {
        const p = this.piece[k];
        if (!v.alive[p] || k === skip || a === -Infinity) continue;
        const e = this.end[k];
        const s = a + v.score[p];
        if (s > best[e]) {
          best[e] = s;
          back[e] = k;
        }
      }
      // The unknown node comes after the pieces beginning at b (it only exists without them).
      if (!covered[b] && a !== -Infinity && a + v.unkScore > best[b + 1]) {
        best[b + 1] = a + v.unkScore;
        back[b + 1] = -1 - b;
      }
    }
    if (best[n] === -Infinity) return null;
    const path: number[] = [];
    for (let e = n; e > 0;) {
      const node = back[e];
      if (node < 0) {
        path.push(UNK_NODE);
        e = -1 - node;
      } else {
        path.push(this.piece[node]);
        e = this.begin[node];
      }
    }
    return path.reverse();
  }
}

export function logAdd(x: number, y: number): number {
  if (x === -Infinity) return y;
  if (y === -Infinity) return x;
  return x > y ? x + Math.log1p(Math.exp(y - x)) : y + Math.log1p(Math.exp(x - y));
}
