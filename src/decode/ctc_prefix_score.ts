/**
 * CTC prefix scores for joint CTC/attention decoding (CONMAMBA_SPEC.md §9.3; Watanabe et al.'s
 * Algorithm 2 as SpeechBrain's CTCPrefixScore vectorises it), in float64, for one utterance.
 * Summed over the steps of a hypothesis the scores telescope to log P_ctc(hypothesis | x).
 */
import { logAddExp } from "../util/math.ts";

const NEG = -1e20; // the reference's "minus infinity"

const lae = logAddExp;

/** Per-frame forward variables of a prefix: ending in non-blank (rn) and in blank (rb). */
export interface PrefixState {
  rn: Float64Array; // (T)
  rb: Float64Array; // (T)
  psi: number; // log prefix probability
  last: number; // last token of the prefix (bos at the start)
  length: number; // tokens in the prefix, bos excluded
}

export class CtcPrefixScorer {
  readonly X: Float64Array; // (T, V) with frames >= validFrames forced to blank

  constructor(
    logProbs: Float32Array,
    readonly T: number,
    readonly V: number,
    readonly validFrames: number,
    readonly blank = 0,
    readonly eos = 2,
  ) {
    // Frames past the valid length: blank certain, so padding changes no prefix probability.
    this.X = Float64Array.from(logProbs);
    for (let t = validFrames; t < T; t++) {
      for (let v = 0; v < V; v++) this.X[t * V + v] = v === blank ? 0 : NEG;
    }
  }

  initial(bos = 1): PrefixState {
    const rn = new Float64Array(this.T).fill(NEG), rb = new Float64Array(this.T);
    let acc = 0;
    for (let t = 0; t < this.T; t++) rb[t] = acc += this.X[t * this.V + this.blank];
    return { rn, rb, psi: 0, last: bos, length: 0 };
  }

  /**
   * The scores psi(g + c) - psi(g) of every token c at once, into out (length V), without the
   * new states (`extend` makes those for the tokens a search keeps). psi needs only phi and X, not
   * r^n or r^b, so this is the psi recursion of `extend` alone: the same float operations in the
   * same order, so the same bits, with a quarter of its log-add-exps (phi's shared by all tokens
   * but the last one), no allocation, and X read row by row.
   */
  scoreAll(g: PrefixState, out: Float64Array): Float64Array {
    const { T, V, X } = this;
    const m = g.length, start = Math.max(1, m), last = g.last;
    const psi = this.#psi ??= new Float64Array(V);
    if (m === 0) psi.set(X.subarray(0, V)); // r^n_0(c) = X[0, c]
    else psi.fill(NEG);
    for (let t = start; t < T; t++) {
      const sum = lae(g.rn[t - 1], g.rb[t - 1]), rep = g.rb[t - 1], row = t * V;
      for (let c = 0; c < V; c++) psi[c] = lae(psi[c], (c === last ? rep : sum) + X[row + c]);
    }
    for (let c = 0; c < V; c++) out[c] = psi[c] - g.psi;
    out[this.blank] = NEG;
    const vf = this.validFrames - 1;
    out[this.eos] = lae(g.rn[vf], g.rb[vf]) - g.psi;
    return out;
  }

  #psi: Float64Array | null = null;

  /** The state of prefix g extended by c, and its score psi(g + c) - psi(g). */
  extend(g: PrefixState, c: number): { state: PrefixState; score: number } {
    const { T, V, X } = this;
    if (c === this.blank) return { state: g, score: NEG };
    if (c === this.eos) {
      const psi = lae(g.rn[this.validFrames - 1], g.rb[this.validFrames - 1]);
      return { state: { ...g, psi }, score: psi - g.psi };
    }
    const m = g.length;
    // A repeat of the last token needs a blank in between: phi = rb. (At the first step the
    // "last token" is bos, so c == bos also takes rb; harmless, since rn is all -1e20 then.)
    const phi = new Float64Array(T);
    for (let t = 0; t < T; t++) phi[t] = c === g.last ? g.rb[t] : lae(g.rn[t], g.rb[t]);
    const rn = new Float64Array(T).fill(NEG), rb = new Float64Array(T).fill(NEG);
    if (m === 0) rn[0] = X[c];
    const start = Math.max(1, m);
    let psi = rn[start - 1];
    for (let t = start; t < T; t++) {
      rn[t] = lae(rn[t - 1], phi[t - 1]) + X[t * V + c];
      rb[t] = lae(rn[t - 1], rb[t - 1]) + X[t * V + this.blank];
      psi = lae(psi, phi[t - 1] + X[t * V + c]);
    }
    return { state: { rn, rb, psi, last: c, length: m + 1 }, score: psi - g.psi };
  }
}
