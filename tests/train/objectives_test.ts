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
