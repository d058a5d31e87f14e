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

export function jointBeamSearch(s: JointScorers, o: JointSearchOptions): SearchResult {
  const k = o.beamSize, V = s.V;
  let alive: Hyp[] = [{ tokens: [o.bos], score: 0, ctc: s.ctc?.initial(o.bos) ?? null }];
  const finished: Finished[] = [];
  let lastNormalised: { hyp: Hyp; norm: number }[] = [];
  for (let t = 0; t < o.maxSteps && finished.length < k && alive.length > 0; t++) {
    const att = s.attention(alive.map((h) => h.tokens));
    const lm = o.lmWeight !== 0 && s.lm ? s.lm(alive.map((h) => h.tokens)) : null;
    const cands: { h: number; v: number; norm: number; ctc: PrefixState | null }[] = [];
    alive.forEach((hyp, h) => {
      for (let v = 0; v < V; v++) {
        let sv = (1 - o.ctcWeight) * att[h][v];
        if (lm) sv += o.lmWeight * lm[h][v];
        let ctcState: PrefixState | null = null;
        if (s.ctc && hyp.ctc) {
          if (v === o.blank) sv = MINUS_INF;
          else {
            const r = s.ctc.extend(hyp.ctc, v);
            sv += o.ctcWeight * r.score;
            ctcState = r.state;
          }
        }
        cands.push({ h, v, norm: (hyp.score + sv) / (t + 1), ctc: ctcState });
      }
    });
    // Top k over k x V, ties in (slot, token) order (a stable sort).
    cands.sort((a, b) => b.norm - a.norm);
    const kept = cands.slice(0, k);
    const next: Hyp[] = [];
    lastNormalised = [];
    for (const c of kept) {
      const hyp: Hyp = {
        tokens: [...alive[c.h].tokens, c.v],
        score: c.norm * (t + 1),
        ctc: c.ctc,
      };
      if (c.v === o.eos) {
        if (finished.length < k) finished.push({ tokens: hyp.tokens.slice(1), score: c.norm });
      } else {
        next.push(hyp);
        lastNormalised.push({ hyp, norm: c.norm });
      }
    }
    alive = next;
  }
  // Not enough finished: the alive ones join, in slot order, with their last normalised score.
  for (const { hyp, norm } of lastNormalised) {
    if (finished.length >= k) break;
    finished.push({ tokens: hyp.tokens.slice(1), score: norm });
  }
  const nbest = [...finished].sort((a, b) => b.score - a.score);
  const best = nbest.length ? nbest[0].tokens.slice(0, -1) : []; // drop the (assumed eos) last token
  return { best, finished: nbest };
}
