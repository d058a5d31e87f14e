/**
 * Greedy CTC decoding (CONMAMBA_SPEC.md §9.5, the CTC recipes' validation search): argmax per frame
 * over the utterance's frames, merge repeats, drop blanks.
 */

/** logProbs: (T, V) row-major; frames: the utterance's valid frames; first maximum on ties. */
export function ctcGreedy(logProbs: Float32Array, V: number, frames: number, blank = 0): number[] {
  const out: number[] = [];
  let prev = -1;
  for (let t = 0; t < frames; t++) {
    let best = 0;
    for (let v = 1; v < V; v++) if (logProbs[t * V + v] > logProbs[t * V + best]) best = v;
    if (best !== prev && best !== blank) out.push(best);
    prev = best;
  }
  return out;
}
