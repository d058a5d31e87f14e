/**
 * The positional-encoding buffers of TransformerASR (CONMAMBA_SPEC.md 4.4). ConMamba never uses
 * them (G9), but they are in the state_dict, so a strict loader needs them; the Conformer reads
 * RelPosEncXL's table. Values follow torch's float32 arithmetic:
 * den = exp(float32(2i) * float32(-ln(10000)/d)), angle = float32(p * den).
 */
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Module } from "./module.ts";

const f = Math.fround;

function denominators(d: number): Float32Array {
  const out = new Float32Array(d / 2), c = f(-(Math.log(10000) / d));
  for (let i = 0; i < d / 2; i++) out[i] = f(Math.exp(f(2 * i * c)));
  return out;
}

/** RelPosEncXL: buffer inv_freq (d/2), and the relative table the Conformer reads (4.4). */
export class RelPosEncXL extends Module {
  readonly inv_freq: Tensor; // (d/2)

  constructor(be: Backend, readonly d: number) {
    super(be);
    this.inv_freq = this.buffer("inv_freq", [d / 2], denominators(d));
  }

  /**
   * The (1, 2S - 1, d) table, row-major: row r holds distance p = |S - 1 - r| (symmetric, the
   * future half is not negated), [2i] = sin(p inv_freq[i]), [2i + 1] = cos(p inv_freq[i]), with
   * the angle rounded to float32 as torch's einsum does.
   */
  table(s: number): Float32Array {
    const d = this.d, inv = this.inv_freq.toArray(), out = new Float32Array((2 * s - 1) * d);
    for (let r = 0; r < 2 * s - 1; r++) {
      const p = Math.abs(s - 1 - r);
      for (let i = 0; i < d / 2; i++) {
        const a = f(p * inv[i]);
        out[r * d + 2 * i] = Math.sin(a);
        out[r * d + 2 * i + 1] = Math.cos(a);
      }
    }
    return out;
  }
}

/** Absolute sinusoid table pe (1, maxLen, d): [p, 2i] = sin(p den_i), [p, 2i+1] = cos(p den_i). */
export class PositionalEncoding extends Module {
  readonly pe: Tensor; // (1, maxLen, d)
  constructor(be: Backend, d: number, maxLen = 2500) {
    super(be);
    const den = denominators(d), pe = new Float32Array(maxLen * d);
    for (let p = 0; p < maxLen; p++) {
      for (let i = 0; i < d / 2; i++) {
        const a = f(p * den[i]);
        pe[p * d + 2 * i] = Math.sin(a);
        pe[p * d + 2 * i + 1] = Math.cos(a);
      }
    }
    this.pe = this.buffer("pe", [1, maxLen, d], pe);
  }
}
