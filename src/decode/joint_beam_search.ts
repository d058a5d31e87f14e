/**
 * The S2S recipes' joint CTC/attention beam search for one utterance (CONMAMBA_SPEC.md §9.2,
 * SpeechBrain's S2STransformerBeamSearcher with a ScorerBuilder): attention log-probs weighted
 * 1 - w_ctc, an optional LM weighted w_lm, CTC prefix scores weighted w_ctc, scores normalised by
 * length at every step, eos moves a hypothesis to the finished list, blank (id 0) is never
 * emitted when the CTC scorer is on (it blocks it, as SpeechBrain's does). The model side is a
 * callback, so the same search serves the Transformer and the Mamba decoder and tests can drive
 * it with tables.
 */
import { type CtcPrefixScorer, type PrefixState } from "./ctc_prefix_score.ts";

export const MINUS_INF = -1e20;

export interface JointSearchOptions {
  beamSize: number; // 10 (validation, "no LM") or 66 (test)
  ctcWeight: number; // 0.4
  lmWeight: number; // 0.6 at test with an LM, else 0
  maxSteps: number; // floor(max_decode_ratio * T')
  bos: number; // 1
  eos: number; // 2
  blank: number; // 0
}

export interface JointScorers {
  /** (n, V) log-probs of the next token after each history (bos first), temperature applied. */
  attention(histories: number[][]): ArrayLike<number>[];
  /** Same for the LM, when one is used. */
  lm?(histories: number[][]): ArrayLike<number>[];
  /** CTC prefix scorer of the utterance (null: attention only). */
  ctc: CtcPrefixScorer | null;
  V: number;
}

interface Hyp {
  tokens: number[]; // bos first
  score: number; // cumulative, not normalised
  ctc: PrefixState | null;
}

export interface Finished {
  tokens: number[]; // without bos, with the final token (normally eos)
  score: number; // length-normalised
}

export interface SearchResult {
  best: number[]; // the output: the best finished hypothesis minus its last token (§9.2 step 9)
  finished: Finished[]; // n-best, best first
}

/**
 * Indices of the k largest values, largest first; equal values in index order (what a stable
 * descending sort then slice(0, k) gives), in one pass with a sorted list of k.
 */
export function topK(x: Float64Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (idx.length === k && !(v > x[idx[k - 1]])) continue;
    let j = idx.length === k ? k - 1 : idx.length; // insert after every value >= v
    while (j > 0 && !(x[idx[j - 1]] >= v)) j--;
    if (idx.length === k) idx.pop();
    idx.splice(j, 0, i);
  }
  return idx;
}

/**
 * One utterance's search as a state that advances one step at a time, so that several
 * utterances can share each decoder call (searchBatch); jointBeamSearch is the one-utterance
 * loop over it. `histories()` gives the alive hypotheses' tokens (bos first, all of length
 * step + 1), `advance` takes their attention (and LM) log-prob rows and does the step's top-k,
 * eos and finish bookkeeping; `done` once k are finished, the steps are spent or none is alive.
 */
export class JointSearchState {
  private alive: Hyp[];
  private readonly finished: Finished[] = [];
  private lastNormalised: { hyp: Hyp; norm: number }[] = [];
  private readonly ctcRow: Float64Array;
  private t = 0;

  constructor(
    private readonly ctc: CtcPrefixScorer | null,
    private readonly V: number,
    private readonly o: JointSearchOptions,
  ) {
    this.alive = [{ tokens: [o.bos], score: 0, ctc: ctc?.initial(o.bos) ?? null }];
    this.ctcRow = new Float64Array(V);
  }

  get done(): boolean {
    return !(this.t < this.o.maxSteps && this.finished.length < this.o.beamSize &&
      this.alive.length > 0);
  }

  histories(): number[][] {
    return this.alive.map((h) => h.tokens);
  }

  /** One step; att[h] (and lm[h], when the LM weight is not 0) for the h-th of histories(). */
  advance(att: ArrayLike<number>[], lm: ArrayLike<number>[] | null): void {
    const o = this.o, k = o.beamSize, V = this.V, t = this.t, alive = this.alive;
    const scorer = this.ctc, ctcRow = this.ctcRow;
    // Candidate (slot h, token v) at h * V + v, its length-normalised score. The CTC scores of
    // all tokens come from one pass per slot; CTC states are made for the kept candidates only.
    const norm = new Float64Array(alive.length * V);
    alive.forEach((hyp, h) => {
      const ctc = scorer && hyp.ctc ? scorer.scoreAll(hyp.ctc, ctcRow) : null;
      for (let v = 0; v < V; v++) {
        let sv = (1 - o.ctcWeight) * att[h][v];
        if (lm) sv += o.lmWeight * lm[h][v];
        if (ctc) {
          if (v === o.blank) sv = MINUS_INF;
          else sv += o.ctcWeight * ctc[v];
        }
        norm[h * V + v] = (hyp.score + sv) / (t + 1);
      }
    });
    const next: Hyp[] = [];
    this.lastNormalised = [];
    for (const i of topK(norm, k)) {
      const h = Math.floor(i / V), v = i - h * V, parent = alive[h];
      const hyp: Hyp = {
        tokens: [...parent.tokens, v],
        score: norm[i] * (t + 1),
        ctc: scorer && parent.ctc && v !== o.blank ? scorer.extend(parent.ctc, v).state : null,
      };
      if (v === o.eos) {
        if (this.finished.length < k) {
          this.finished.push({ tokens: hyp.tokens.slice(1), score: norm[i] });
        }
      } else {
        next.push(hyp);
        this.lastNormalised.push({ hyp, norm: norm[i] });
      }
    }
    this.alive = next;
    this.t++;
  }

  result(): SearchResult {
    const k = this.o.beamSize, finished = [...this.finished];
    // Not enough finished: the alive ones join, in slot order, with their last normalised score.
    for (const { hyp, norm } of this.lastNormalised) {
      if (finished.length >= k) break;
      finished.push({ tokens: hyp.tokens.slice(1), score: norm });
    }
    const nbest = finished.sort((a, b) => b.score - a.score);
    const best = nbest.length ? nbest[0].tokens.slice(0, -1) : []; // drop the (assumed eos) last token
    return { best, finished: nbest };
  }
}

export function jointBeamSearch(s: JointScorers, o: JointSearchOptions): SearchResult {
  const state = new JointSearchState(s.ctc, s.V, o);
  while (!state.done) {
    const hs = state.histories();
    const att = s.attention(hs);
    const lm = o.lmWeight !== 0 && s.lm ? s.lm(hs) : null;
    state.advance(att, lm);
  }
  return state.result();
}
