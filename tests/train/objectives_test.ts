/**
 * The training accuracy of the S2S objective (SpeechBrain's Accuracy, CONMAMBA_SPEC.md 8.9): the
 * argmax runs on the device (`max_last`), and the counts must equal the host loop over the
 * downloaded log-probabilities that it replaced, ties (first maximum) and padding included.
 */
import { objectives } from "../../src/train/objectives.ts";
import type { DecoderOutputs, EncoderOutputs } from "../../src/nn/asr_model.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { rng, withBackend } from "../ops/helpers.ts";

/** The host loop objectives used before: strict > from k = 0, over u <= len_b. */
function hostAccuracy(lp: Float32Array, eos: Int32Array, lens: number[], b: number, u: number) {
  const v = lp.length / (b * u);
  let correct = 0, total = 0;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j <= lens[i] && j < u; j++) {
      const row = (i * u + j) * v;
      let best = 0;
      for (let k = 1; k < v; k++) if (lp[row + k] > lp[row + best]) best = k;
      total++;
      if (best === eos[i * u + j]) correct++;
    }
  }
  return { correct, total };
}

Deno.test("S2S accuracy from the device argmax equals the host loop, ties and padding", async () => {
  await withBackend(2, (be) => {
    const B = 5, S = 6, U = S + 1, V = 11, T = 9, r = rng(7);
    const lens = [6, 3, 0, 5, 1];
    const tokens = new Int32Array(B * S), eos = new Int32Array(B * U);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < lens[i]; j++) tokens[i * S + j] = eos[i * U + j] = 3 + ((i + j) % 8);
      eos[i * U + lens[i]] = 2;
    }
    // Log-probability-like rows quantised to 4 levels (many ties); a third of the rows put the
    // target first among equals or make it the clear winner, so both counts are non-trivial.
    const lp = new Float32Array(B * U * V).map(() => -Math.floor(r() * 4));
    for (let q = 0; q < B * U; q++) if (q % 3 === 0) lp[q * V + eos[q]] = 0.5;
    const seqLogProbs = Tensor.from(be, [B, U, V], lp);
    const logProbs = Tensor.from(be, [B, T, V], new Float32Array(B * T * V).fill(-Math.log(V)));
    const enc = { logProbs, encLengths: Array(B).fill(T) } as unknown as EncoderOutputs;
    const dec = { seqLogProbs } as unknown as DecoderOutputs;
    const got = objectives(enc, dec, { B, tokens, tokenLens: lens, tokensEos: eos }, {
      blank: 0,
      ctcWeight: 0.4,
      labelSmoothing: 0.1,
      gradAccumulation: 1,
    }).acc!;
    const want = hostAccuracy(lp, eos, lens, B, U);
    if (got.correct !== want.correct || got.total !== want.total) {
      throw new Error(`accuracy ${JSON.stringify(got)}, host loop ${JSON.stringify(want)}`);
    }
    if (want.total !== 20 || want.correct === 0 || want.correct === want.total) {
      throw new Error(`the case does not exercise both outcomes: ${JSON.stringify(want)}`);
    }
  });
});

// The joint objective's gradients leave the loss kernels already weighted (CTC by w / A, the
// attention loss by (1 - w) / A for gradient accumulation over A micro-batches). Each term is
// scaled in float64 before its rounding, and a CTC element sums up to L = 2 S + 1 = 7 same-sign
// terms in float32 (the blank's states), so the weighted and the unweighted-then-scaled values
// differ by at most ~2 L roundings: 16 x 2^-24 = 2^-20 relative (a missing or doubled weight is
// off by 20 % or more).
Deno.test("objectives: the CTC and attention gradients carry their weights, and 1 / gradAccumulation", async () => {
  await withBackend(2, (be) => {
    const B = 2, S = 3, U = S + 1, V = 7, T = 8, r = rng(11);
    const lens = [3, 2];
    const tokens = new Int32Array([3, 4, 5, 6, 3, 0]),
      eos = new Int32Array([3, 4, 5, 2, 6, 3, 2, 0]);
    const logRows = (n: number) => {
      const v = new Float32Array(n * V).map(() => r() * 2);
      for (let i = 0; i < n; i++) {
        let m = 0;
        for (let k = 0; k < V; k++) m += Math.exp(v[i * V + k]);
        for (let k = 0; k < V; k++) v[i * V + k] -= Math.log(m);
      }
      return v;
    };
    const lpEnc = logRows(B * T), lpDec = logRows(B * U);
    const run = (ctcWeight: number, gradAccumulation: number) => {
      const enc = {
        logProbs: Tensor.from(be, [B, T, V], lpEnc),
        encLengths: [T, T - 2],
      } as unknown as EncoderOutputs;
      const dec = { seqLogProbs: Tensor.from(be, [B, U, V], lpDec) } as unknown as DecoderOutputs;
      const t = { B, tokens, tokenLens: lens, tokensEos: eos };
      return objectives(enc, dec, t, { blank: 0, ctcWeight, labelSmoothing: 0.1, gradAccumulation })
        .seeds.map(([, g]) => g.toArray());
    };
    const [ctc1, seq1] = run(1, 1), [ctc0, seq0] = run(0, 1); // each loss alone, unweighted
    const [ctc, seq] = run(0.3, 4);
    const check = (what: string, got: Float32Array, base: Float32Array, f: number) => {
      got.forEach((v, i) => {
        if (!(Math.abs(v - f * base[i]) <= 2 ** -20 * Math.abs(f * base[i]) + 1e-30)) {
          throw new Error(`${what}[${i}]: ${v}, want ${f} x ${base[i]}`);
        }
      });
      if (!base.some((v) => v !== 0)) {
        throw new Error(`${what}: an all-zero gradient tests nothing`);
      }
    };
    check("CTC gradient", ctc, ctc1, 0.3 / 4);
    check("attention gradient", seq, seq0, 0.7 / 4);
    if (seq1.some((v) => v !== 0) || ctc0.some((v) => v !== 0)) {
      throw new Error("a loss of weight 0 must give a zero gradient");
    }
  });
});
