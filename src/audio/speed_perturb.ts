/**
 * Speed perturbation as the recipe does it (CONMAMBA_SPEC.md §8.7, gotcha G16): speed s in
 * {95, 100, 105} resamples 16 kHz audio to 16000 s / 100 Hz with torchaudio's Resample defaults
 * (windowed sinc, Hann window, lowpass_filter_width 6, rolloff 0.99) and plays the result at
 * 16 kHz, so 95 is 5 % shorter and higher, 105 is 5 % longer and lower. The taps are built here
 * in float64; the sums run in the `resample_forward` kernel.
 */
import type { Backend, Storage } from "../tensor/backend.ts";

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export interface ResampleKernels {
  orig: number; // input samples per block (old rate / gcd)
  next: number; // output samples per block (new rate / gcd)
  width: number; // taps before a block's first input sample
  taps: number; // 2 width + orig
  kernels: Float64Array; // (next, taps)
}

/** The polyphase taps: k_j[i] = (base/o) sinc(pi tau) cos^2(pi tau / 12), tau clipped to +-6. */
export function resampleKernels(
  origRate: number,
  newRate: number,
  lowpassWidth = 6,
  rolloff = 0.99,
): ResampleKernels {
  const g = gcd(origRate, newRate);
  const orig = origRate / g, next = newRate / g;
  const base = Math.min(orig, next) * rolloff;
  const width = Math.ceil((lowpassWidth * orig) / base);
  const taps = 2 * width + orig;
  const kernels = new Float64Array(next * taps);
  for (let j = 0; j < next; j++) {
    for (let t = 0; t < taps; t++) {
      const i = t - width;
      let tau = (i / orig - j / next) * base;
      tau = Math.max(-lowpassWidth, Math.min(lowpassWidth, tau));
      const window = Math.cos((tau * Math.PI) / lowpassWidth / 2) ** 2;
      const x = tau * Math.PI;
      const sinc = x === 0 ? 1 : Math.sin(x) / x;
      kernels[j * taps + t] = sinc * window * (base / orig);
    }
  }
  return { orig, next, width, taps, kernels };
}

/** Output length of resampling n samples: ceil(next n / orig). */
export function resampledLength(n: number, k: { orig: number; next: number }): number {
  return Math.ceil((k.next * n) / k.orig);
}

/** Resamples on a backend; keeps its taps until `free()`. */
export class Resampler {
  readonly k: ResampleKernels;
  #taps: Storage;

  constructor(readonly backend: Backend, origRate: number, newRate: number) {
    this.k = resampleKernels(origRate, newRate);
    this.#taps = backend.alloc(this.k.kernels.length, "param");
    backend.upload(this.#taps, Float32Array.from(this.k.kernels));
  }

  apply(x: Float32Array): Float32Array {
    const { orig, next, taps, width } = this.k;
    const blocks = Math.floor(x.length / orig) + 1; // as a stride-`orig` convolution gives
    const be = this.backend;
    const xs = be.alloc(Math.max(x.length, 1), "param");
    const ys = be.alloc(blocks * next, "param");
    try {
      be.upload(xs, x);
      be.run(
        "resample_forward",
        { rows: blocks, cols: next, ld: next, row0: 0, n_in: x.length, taps, orig, width },
        [{ storage: xs }, { storage: this.#taps }, { storage: ys }],
      );
      return be.download(ys, 0, resampledLength(x.length, this.k));
    } finally {
      be.free(xs);
      be.free(ys);
    }
  }

  free(): void {
    this.backend.free(this.#taps);
  }
}

/** The speeds of the recipe and their resamplers for 16 kHz audio (100 = unchanged). */
export class SpeedPerturb {
  #resamplers = new Map<number, Resampler>();

  constructor(readonly backend: Backend, readonly sampleRate = 16000) {}

  apply(wav: Float32Array, speed: number): Float32Array {
    if (speed === 100) return wav;
    let r = this.#resamplers.get(speed);
    if (!r) {
      r = new Resampler(this.backend, this.sampleRate, (this.sampleRate * speed) / 100);
      this.#resamplers.set(speed, r);
    }
    return r.apply(wav);
  }

  free(): void {
    for (const r of this.#resamplers.values()) r.free();
    this.#resamplers.clear();
  }
}
