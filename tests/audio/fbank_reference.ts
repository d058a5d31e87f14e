/**
 * The slow, obviously correct filterbank: float64, a direct DFT per frame, written from
 * CONMAMBA_SPEC.md §3.2-3.5 as plain loops. The kernel answers to this, never the reverse.
 */
import {
  type FbankSettings,
  frameCount,
  hammingWindow,
  melWeights,
} from "../../src/audio/fbank.ts";

export function fbankReference(wav: ArrayLike<number>, s: FbankSettings): Float64Array {
  const N = s.nFft, bins = N / 2 + 1;
  const T = frameCount(wav.length, s.hop);
  const w = hammingWindow(s.winLength, N);
  const mel = melWeights(s);
  const out = new Float64Array(T * s.nMels);
  const frame = new Float64Array(N);
  const power = new Float64Array(bins);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      const i = t * s.hop - N / 2 + n; // centred, zero padding outside the signal
      frame[n] = i >= 0 && i < wav.length ? wav[i] * w[n] : 0;
    }
    for (let k = 0; k < bins; k++) {
      let re = 0, im = 0;
      for (let n = 0; n < N; n++) {
        const a = (-2 * Math.PI * ((k * n) % N)) / N;
        re += frame[n] * Math.cos(a);
        im += frame[n] * Math.sin(a);
      }
      power[k] = re * re + im * im;
    }
    for (let i = 0; i < s.nMels; i++) {
      let e = 0;
      for (let k = 0; k < bins; k++) e += power[k] * mel[i][k];
      out[t * s.nMels + i] = 10 * Math.log10(Math.max(e, 1e-10));
    }
  }
  let max = -Infinity;
  for (const v of out) max = Math.max(max, v);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i], max - s.topDb);
  return out;
}
