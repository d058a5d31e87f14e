/**
 * Log-mel filterbank features exactly as the reference system's SpeechBrain Fbank computes them
 * (CONMAMBA_SPEC.md §3.2-3.5, gotcha G13): hop 160, centred frames with zero padding, periodic
 * Hamming window zero-padded to n_fft, power spectrum, symmetric triangular mel filters (half-width
 * = the spacing to the left neighbour), 10 log10(max(E, 1e-10)), and a per-utterance top_db = 80
 * clamp. The heavy part runs in the `fbank_forward` kernel of the op table; this file builds its
 * constant inputs and applies the clamp.
 */
import type { Backend, Storage } from "../tensor/backend.ts";

export interface FbankSettings {
  sampleRate: number; // Hz
  nFft: number;
  winLength: number; // samples
  hop: number; // samples
  nMels: number;
  fMin: number; // Hz
  fMax: number; // Hz
  topDb: number;
}

/** An experiment's settings: win_length is in milliseconds there (25 or 32). */
export function fbankSettings(
  e: { sample_rate: number; n_fft: number; win_length: number; n_mels: number },
): FbankSettings {
  return {
    sampleRate: e.sample_rate,
    nFft: e.n_fft,
    winLength: Math.round((e.sample_rate / 1000) * e.win_length),
    hop: Math.round((e.sample_rate / 1000) * 10),
    nMels: e.n_mels,
    fMin: 0,
    fMax: e.sample_rate / 2,
    topDb: 80,
  };
}

/** Frames of a signal of n samples: 1 + floor(n / hop) (centred frames). */
export function frameCount(n: number, hop: number): number {
  return 1 + Math.floor(n / hop);
}

/** Periodic Hamming window of winLength, zero-padded on both sides to nFft (float64). */
export function hammingWindow(winLength: number, nFft: number): Float64Array {
  const w = new Float64Array(nFft);
  const left = Math.floor((nFft - winLength) / 2);
  for (let n = 0; n < winLength; n++) {
    w[left + n] = 0.54 - 0.46 * Math.cos((2 * Math.PI * n) / winLength);
  }
  return w;
}

const mel = (f: number) => 2595 * Math.log10(1 + f / 700);
const hz = (m: number) => 700 * (10 ** (m / 2595) - 1);

/** Filter i: centre and half-width in Hz (§3.4: n_mels + 2 points equally spaced in mel). */
export function melCentres(s: FbankSettings): { centre: number[]; halfWidth: number[] } {
  const lo = mel(s.fMin), hi = mel(s.fMax);
  const pts = Array.from(
    { length: s.nMels + 2 },
    (_, j) => hz(lo + (j * (hi - lo)) / (s.nMels + 1)),
  );
  return {
    centre: Array.from({ length: s.nMels }, (_, i) => pts[i + 1]),
    halfWidth: Array.from({ length: s.nMels }, (_, i) => pts[i + 1] - pts[i]),
  };
}

/** Weight of bin k in filter i: max(0, 1 - |phi_k - c_i| / b_i), phi_k = k fMax / (nFft / 2). */
export function melWeights(s: FbankSettings): Float64Array[] {
  const { centre, halfWidth } = melCentres(s);
  const bins = s.nFft / 2 + 1;
  return centre.map((c, i) => {
    const w = new Float64Array(bins);
    for (let k = 0; k < bins; k++) {
      const phi = s.fMin + (k * (s.fMax - s.fMin)) / (s.nFft / 2);
      w[k] = Math.max(0, 1 - Math.abs(phi - c) / halfWidth[i]);
    }
    return w;
  });
}

/** The kernel's packed filters: per filter [first_bin, count, count weights] (float32). */
export function packMel(weights: Float64Array[]): Float32Array {
  const out: number[] = [];
  for (const w of weights) {
    let first = w.findIndex((x) => x > 0);
    if (first < 0) first = 0;
    let last = w.length - 1;
    while (last > first && w[last] <= 0) last--;
    out.push(first, last - first + 1);
    for (let k = first; k <= last; k++) out.push(w[k]);
  }
  return Float32Array.from(out);
}

/** exp(-2 pi i j / n) for j < n, interleaved (re, im), split into float32 hi + lo parts. */
export function twiddles(n: number): { hi: Float32Array; lo: Float32Array } {
  const hi = new Float32Array(2 * n), lo = new Float32Array(2 * n);
  for (let j = 0; j < n; j++) {
    const a = (-2 * Math.PI * j) / n;
    for (const [idx, v] of [[2 * j, Math.cos(a)], [2 * j + 1, Math.sin(a)]] as const) {
      hi[idx] = v;
      lo[idx] = v - hi[idx];
    }
  }
  return { hi, lo };
}

/** L <- max(L, max(L) - topDb) over the whole (T, nMels) matrix, in place (§3.5). */
export function clampTopDb(x: Float32Array, topDb: number): void {
  let m = -Infinity;
  for (const v of x) m = v > m ? v : m;
  const floor = Math.fround(m - topDb);
  for (let i = 0; i < x.length; i++) if (x[i] < floor) x[i] = floor;
}

function validate(s: FbankSettings): void {
  const half = s.nFft / 2;
  let h = half;
  for (const p of [2, 3, 5]) while (h % p === 0) h /= p;
  if (!Number.isInteger(half) || h !== 1 || s.nFft > 1024) {
    throw new RangeError(
      `fbank: n_fft ${s.nFft} must be even, <= 1024, n_fft/2 a product of 2, 3, 5`,
    );
  }
  if (s.winLength > s.nFft) {
    throw new RangeError(`fbank: window ${s.winLength} samples is longer than n_fft ${s.nFft}`);
  }
}

/** Computes features on a backend; holds the constant inputs until `free()`. */
export class Fbank {
  #consts: Storage[];

  constructor(readonly backend: Backend, readonly settings: FbankSettings) {
    validate(settings);
    const tw = twiddles(settings.nFft);
    const constants = [
      Float32Array.from(hammingWindow(settings.winLength, settings.nFft)),
      tw.hi,
      tw.lo,
      packMel(melWeights(settings)),
    ];
    this.#consts = constants.map((data) => {
      const s = backend.alloc(data.length, "param");
      backend.upload(s, data);
      return s;
    });
  }

  /** (T, nMels) log-mel dB of a mono waveform in [-1, 1), T = 1 + floor(N / hop). */
  compute(wav: Float32Array): Float32Array {
    const { hop, nMels, nFft } = this.settings;
    const T = frameCount(wav.length, hop);
    const be = this.backend;
    const w = be.alloc(Math.max(wav.length, 1), "param");
    const out = be.alloc(T * nMels, "param");
    try {
      be.upload(w, wav);
      be.run(
        "fbank_forward",
        { rows: T, cols: nMels, ld: nMels, row0: 0, n_samples: wav.length, n_fft: nFft, hop },
        [{ storage: w }, ...this.#consts.map((storage) => ({ storage })), { storage: out }],
      );
      const x = be.download(out);
      clampTopDb(x, this.settings.topDb);
      return x;
    } finally {
      be.free(w);
      be.free(out);
    }
  }

  free(): void {
    for (const s of this.#consts) this.backend.free(s);
    this.#consts = [];
  }
}
