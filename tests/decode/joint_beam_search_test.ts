/** The joint search driven by tables: beam 1 = greedy, beams find better paths, CTC weight works. */
import assert from "node:assert/strict";
import { CtcPrefixScorer } from "../../src/decode/ctc_prefix_score.ts";
import { jointBeamSearch, type JointSearchOptions } from "../../src/decode/joint_beam_search.ts";

const V = 6; // 0 blank, 1 bos, 2 eos, 3..5 tokens
const OPTS: JointSearchOptions = {
  beamSize: 1,
  ctcWeight: 0,
  lmWeight: 0,
  maxSteps: 20,
  bos: 1,
  eos: 2,
  blank: 0,
};

/** A random "decoder": next-token log-probs from a hash of the history. */
function tableDecoder(seed: number) {
  return (histories: number[][]) =>
    histories.map((h) => {
      let x = seed;
      for (const t of h) x = (x * 31 + t * 7919) >>> 0;
      const logits = Array.from({ length: V }, (_, v) => {
        x = (x * 1664525 + 1013904223) >>> 0;
        return (x / 2 ** 32) * 4 + (v === 2 ? h.length * 0.4 : 0); // eos likelier as it grows
      });
      const m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((s, l) => s + Math.exp(l - m), 0));
      return logits.map((l) => l - lse);
    });
}

function greedy(att: (h: number[][]) => number[][], maxSteps: number): number[] {
  const h = [1];
  for (let t = 0; t < maxSteps; t++) {
    const lp = att([h])[0];
    let best = 0;
    for (let v = 1; v < V; v++) if (lp[v] > lp[best]) best = v;
    h.push(best);
    if (best === 2) break;
  }
  return h.slice(1, -1);
}

Deno.test("joint search with beam 1 and no CTC equals greedy decoding", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const att = tableDecoder(seed);
    const r = jointBeamSearch({ attention: att, ctc: null, V }, OPTS);
    assert.deepEqual(r.best, greedy(att, OPTS.maxSteps), `seed ${seed}`);
  }
});

Deno.test("a wider beam finds a hypothesis greedy misses; scores are length-normalised", () => {
  // Step 1: token 3 (0.6) or 4 (0.4); after 3 everything is flat, after 4 eos is near certain.
  const L = Math.log;
  const att = (hs: number[][]) =>
    hs.map((h) => {
      const p = new Array(V).fill(1e-9);
      if (h.length === 1) (p[3] = 0.6, p[4] = 0.4);
      else if (h.at(-1) === 3) p.fill(0.2, 1);
      else p[2] = 0.99;
      return p.map(L);
    });
  const one = jointBeamSearch({ attention: att, ctc: null, V }, OPTS);
  const two = jointBeamSearch({ attention: att, ctc: null, V }, { ...OPTS, beamSize: 2 });
  assert.deepEqual(one.best.slice(0, 1), [3]);
  assert.deepEqual(two.best, [4]);
  assert.ok(Math.abs(two.finished[0].score - (L(0.4) + L(0.99)) / 2) < 1e-12);
});

Deno.test("with CTC weight 1 the search follows the CTC posteriors; blank is never emitted", () => {
  // CTC says "5 3" clearly; attention is uniform.
  const T = 8, path = [5, 0, 3, 3, 0, 0, 0, 0];
  const X = new Float32Array(T * V).fill(Math.log(0.02));
  path.forEach((v, t) => (X[t * V + v] = Math.log(0.9)));
  const att = (hs: number[][]) => hs.map(() => new Array(V).fill(Math.log(1 / V)));
  const ctc = new CtcPrefixScorer(X, T, V, T);
  const r = jointBeamSearch({ attention: att, ctc, V }, { ...OPTS, beamSize: 4, ctcWeight: 1 });
  assert.deepEqual(r.best, [5, 3]);
  for (const f of r.finished) assert.ok(!f.tokens.includes(0));
});
