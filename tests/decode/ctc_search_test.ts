/** CTC searches on hand-built and random posteriors. */
import assert from "node:assert/strict";
import { ctcBeamSearch } from "../../src/decode/ctc_beam_search.ts";
import { ctcGreedy } from "../../src/decode/ctc_greedy.ts";
import { CtcPrefixScorer } from "../../src/decode/ctc_prefix_score.ts";

const OPTS = { beamSize: 100, beamPruneLogp: -12, tokenPruneMinLogp: -1.2, blank: 0 };

function logSoftmaxRows(T: number, V: number, seed: number, sharp = 3): Float32Array {
  let a = seed;
  const rnd = () => ((a = (a * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const out = new Float32Array(T * V);
  for (let t = 0; t < T; t++) {
    const row = Array.from({ length: V }, () => sharp * rnd() * 2);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    row.forEach((x, v) => (out[t * V + v] = x - lse));
  }
  return out;
}

Deno.test("greedy: argmax per frame, repeats merged, blanks dropped, only valid frames", () => {
  const V = 4, L = Math.log;
  // frames: 1 1 0 1 2 2 | 3 (padding)
  const ids = [1, 1, 0, 1, 2, 2, 3];
  const X = new Float32Array(ids.length * V).fill(L(0.1));
  ids.forEach((v, t) => (X[t * V + v] = L(0.7)));
  assert.deepEqual(ctcGreedy(X, V, 6), [1, 1, 2]);
  assert.deepEqual(ctcGreedy(X, V, 7), [1, 1, 2, 3]);
});

Deno.test("beam search finds the most probable labelling where greedy does not", () => {
  // Two frames, P(blank) = 0.6, P(A) = 0.4: greedy says "" (0.36), but "A" has 0.24 + 0.24 + 0.16.
  const X = Float32Array.from([Math.log(0.6), Math.log(0.4), Math.log(0.6), Math.log(0.4)]);
  assert.deepEqual(ctcGreedy(X, 2, 2), []);
  assert.deepEqual(ctcBeamSearch(X, 2, 2, ["<unk>", "▁A"], OPTS), ["A"]);
});

Deno.test("beam search with beam 1 equals greedy decoding (random posteriors)", () => {
  const pieces = ["<unk>", "<s>", "</s>", "▁", "A", "B", "C", "▁D", "E"];
  const V = pieces.length;
  for (let seed = 1; seed <= 30; seed++) {
    const T = 40;
    const X = logSoftmaxRows(T, V, seed);
    const ids = ctcGreedy(X, V, T);
    const greedyWords = ids.map((i) => pieces[i]).join("").replaceAll("▁", " ").trim().split(/\s+/)
      .filter((w) => w);
    const beam = ctcBeamSearch(X, V, T, pieces, { ...OPTS, beamSize: 1, tokenPruneMinLogp: 0 });
    assert.deepEqual(beam, greedyWords.length ? greedyWords : [""], `seed ${seed}`);
  }
});

/** log P_ctc(y | x) by the standard forward algorithm over the extended label sequence. */
function ctcLogLikelihood(X: Float32Array, V: number, frames: number, y: number[]): number {
  const ext = [0];
  for (const c of y) ext.push(c, 0);
  const S = ext.length;
  const lae = (a: number, b: number) => {
    if (a === -Infinity) return b;
    if (b === -Infinity) return a;
    const m = Math.max(a, b);
    return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
  };
  let alpha = new Array(S).fill(-Infinity);
  alpha[0] = X[ext[0]];
  if (S > 1) alpha[1] = X[ext[1]];
  for (let t = 1; t < frames; t++) {
    const next = new Array(S).fill(-Infinity);
    for (let s = 0; s < S; s++) {
      let a = alpha[s];
      if (s > 0) a = lae(a, alpha[s - 1]);
      if (s > 1 && ext[s] !== 0 && ext[s] !== ext[s - 2]) a = lae(a, alpha[s - 2]);
      next[s] = a + X[t * V + ext[s]];
    }
    alpha = next;
  }
  return S > 1 ? lae(alpha[S - 1], alpha[S - 2]) : alpha[0];
}

Deno.test("prefix scores telescope to the CTC log-likelihood of the hypothesis (repeats, padding)", () => {
  const V = 7, T = 30;
  for (let seed = 1; seed <= 20; seed++) {
    const X = logSoftmaxRows(T, V, seed, 1.5);
    const valid = seed % 2 ? T : 22; // a padded utterance: frames 22.. are padding
    let a = seed;
    const y = Array.from(
      { length: 2 + (seed % 5) },
      () => 3 + ((a = (a * 48271) % 2147483647) % 4),
    );
    if (seed % 3 === 0) y.push(y.at(-1)!); // a repeated token
    const scorer = new CtcPrefixScorer(X, T, V, valid, 0, 2);
    let state = scorer.initial(1), total = 0;
    for (const c of y) {
      const r = scorer.extend(state, c);
      total += r.score;
      state = r.state;
    }
    total += scorer.extend(state, 2).score; // eos
    const want = ctcLogLikelihood(X, V, valid, y);
    assert.ok(
      Math.abs(total - want) < 1e-9 * Math.max(1, Math.abs(want)),
      `seed ${seed}: ${total} vs ${want}`,
    );
  }
  // Blank can never be emitted.
  const s = new CtcPrefixScorer(logSoftmaxRows(5, 4, 1), 5, 4, 5);
  assert.equal(s.extend(s.initial(), 0).score, -1e20);
});
