/**
 * The CTC recipes' test search: SpeechBrain's CTCBeamSearcher, a pyctcdecode-style beam search
 * over piece strings (CONMAMBA_SPEC.md §9.5) — not an exact prefix search. Word boundaries come
 * from pieces that start with "▁". No LM.
 */
import { logAddExp } from "../util/math.ts";

export interface CtcBeamOptions {
  beamSize: number; // 100
  beamPruneLogp: number; // -12
  tokenPruneMinLogp: number; // -1.2
  blank: number; // 0
}

interface Beam {
  text: string; // committed words, space-separated
  partial: string; // the word being spelled
  last: string | null; // piece of the previous frame (the blank's piece too)
  score: number;
}

const joinWord = (text: string, word: string) => (word ? (text ? `${text} ${word}` : word) : text);

/** Merges beams with the same key (log-sum-exp), then prunes; order: by score, stable. */
function mergeAndPrune(beams: Beam[], key: (b: Beam) => string, o: CtcBeamOptions): Beam[] {
  const merged = new Map<string, Beam>();
  for (const b of beams) {
    const k = key(b);
    const m = merged.get(k);
    if (m) m.score = logAddExp(m.score, b.score);
    else merged.set(k, { ...b });
  }
  const list = [...merged.values()];
  const best = Math.max(...list.map((b) => b.score));
  return list
    .filter((b) => b.score >= best + o.beamPruneLogp)
    .sort((a, b) => b.score - a.score)
    .slice(0, o.beamSize);
}

/**
 * logProbs: (T, V) row-major; frames: floor(rel_len * T'); pieces: the vocabulary in id order.
 * Returns the best hypothesis's words.
 */
export function ctcBeamSearch(
  logProbs: Float32Array,
  V: number,
  frames: number,
  pieces: readonly string[],
  o: CtcBeamOptions,
): string[] {
  return ctcBeamSearchNbest(logProbs, V, frames, pieces, o)[0].words;
}

/** The final beams, best first: words (an empty text gives [""], §11) and log score. */
export function ctcBeamSearchNbest(
  logProbs: Float32Array,
  V: number,
  frames: number,
  pieces: readonly string[],
  o: CtcBeamOptions,
): { words: string[]; score: number }[] {
  let beams: Beam[] = [{ text: "", partial: "", last: null, score: 0 }];
  const key = (b: Beam) => `${b.text}\u0000${b.partial}\u0000${b.last ?? "\u0001"}`;
  for (let t = 0; t < frames; t++) {
    const row = logProbs.subarray(t * V, (t + 1) * V);
    let arg = 0;
    for (let v = 1; v < V; v++) if (row[v] > row[arg]) arg = v;
    const cand: number[] = [];
    for (let v = 0; v < V; v++) if (row[v] > o.tokenPruneMinLogp || v === arg) cand.push(v);
    const next: Beam[] = [];
    for (const v of cand) {
      const tok = pieces[v];
      for (const b of beams) {
        const score = b.score + row[v];
        if (v === o.blank || tok === b.last) next.push({ ...b, last: tok, score });
        else if (tok.startsWith("▁")) {
          next.push({ text: joinWord(b.text, b.partial), partial: tok.slice(1), last: tok, score });
        } else next.push({ text: b.text, partial: b.partial + tok, last: tok, score });
      }
    }
    beams = mergeAndPrune(next, key, o);
  }
  const done = beams.map((b) => ({
    text: joinWord(b.text, b.partial),
    partial: "",
    last: null,
    score: b.score,
  }));
  return mergeAndPrune(done, (b) => b.text, o).map((b) => {
    const words = b.text.split(/\s+/).filter((w) => w);
    return { words: words.length ? words : [""], score: b.score };
  });
}
