/**
 * Initialisation as the original (CONMAMBA_SPEC.md 6, G1), from a seeded RNG of our own (torch's
 * exact draws cannot be reproduced; the distributions are):
 *  1. PyTorch defaults everywhere: Linear/Conv weight and bias U(+-1/sqrt(fan_in)) with the
 *     weight's fan_in = in/groups * kernel; LayerNorm 1 / 0; nn.MultiheadAttention (the
 *     decoders' attention) in_proj_bias and out_proj.bias 0.
 *  2. Mamba's own init: A_log = ln(1..Ns), D = 1, dt_proj.weight U(+-R^-1/2), and the forward
 *     direction's dt_proj.bias = softplus^-1(dt), dt log-uniform in [1e-3, 0.1] clamped >= 1e-4.
 *     The backward direction's dt_proj_b.bias keeps the PyTorch default (G1).
 *     The decoder's unidirectional Mambas (mamba.ts) get the same, dt_proj.bias included.
 *  3. TransformerASR's re-init: every parameter with >= 2 dims under `Transformer.` is redrawn
 *     Xavier-normal, std sqrt(2 / (fan_in + fan_out)); this overwrites A_log, conv1d, the projections.
 * CNN and ctc_lin (outside TransformerASR) keep step 1.
 */
import type { Tensor } from "../tensor/tensor.ts";
import { BiMamba } from "./bimamba.ts";
import { Conv2dParams } from "./cnn_frontend.ts";
import { Conv1dParams } from "./conv_module.ts";
import { LayerNorm } from "./layer_norm.ts";
import { Linear } from "./linear.ts";
import { Mamba } from "./mamba.ts";
import type { Module } from "./module.ts";
import { MultiheadAttention } from "./multihead_attention.ts";

/** A seeded generator: xoshiro128** on 32-bit words, uniform [0, 1) doubles, Box-Muller normals. */
export class Rng {
  #s: Uint32Array;
  constructor(seed: number) {
    // splitmix32 expands the seed into the 128-bit state.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s = Uint32Array.from([next(), next(), next(), next()]);
  }

  #u32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    return ((this.#u32() >>> 5) * 67108864 + (this.#u32() >>> 6)) / 9007199254740992;
  }

  normal(): number {
    const u1 = 1 - this.uniform(), u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

function fill(t: Tensor, f: (i: number) => number): void {
  const data = new Float32Array(t.size);
  for (let i = 0; i < t.size; i++) data[i] = f(i);
  t.backend.upload(t.storage, data);
}

interface MambaDirection {
  aLog: Tensor;
  d: Tensor;
  dtW: Tensor;
}

const fanIn = (t: Tensor) => t.size / t.shape[0];
const uniform = (rng: Rng, t: Tensor, bound: number) =>
  fill(t, () => (2 * rng.uniform() - 1) * bound);

export interface MambaDtInit {
  dtMin?: number; // 1e-3
  dtMax?: number; // 0.1
  dtInitFloor?: number; // 1e-4
}

/** Initialises every parameter of a model built from src/nn modules as CONMAMBA_SPEC.md 6. */
export function initialize(model: Module, seed: number, o: MambaDtInit = {}): void {
  const rng = new Rng(seed);
  const dtMin = o.dtMin ?? 1e-3, dtMax = o.dtMax ?? 0.1, floor = o.dtInitFloor ?? 1e-4;
  for (const [, m] of model.namedModules()) {
    if (m instanceof Linear || m instanceof Conv1dParams || m instanceof Conv2dParams) {
      const bound = 1 / Math.sqrt(fanIn(m.weight));
      uniform(rng, m.weight, bound);
      if (m.bias) uniform(rng, m.bias, bound);
    } else if (m instanceof LayerNorm) {
      fill(m.weight, () => 1);
      fill(m.bias, () => 0);
    }
  }
  // nn.MultiheadAttention._reset_parameters (the decoders' attention): in_proj_bias (a zero-filled
  // parameter here) and out_proj.bias are constant 0, not the Linear default drawn above.
  for (const [, m] of model.namedModules()) {
    if (m instanceof MultiheadAttention) fill(m.out_proj.bias!, () => 0);
  }
  const dtBias = () => {
    const u = rng.uniform() * (Math.log(dtMax) - Math.log(dtMin)) + Math.log(dtMin);
    const dt = Math.max(Math.exp(u), floor);
    return dt + Math.log(-Math.expm1(-dt)); // softplus^-1(dt)
  };
  /** Mamba's own init of some directions; only `withDtBias` gets the special dt bias. */
  const mambaInit = (ns: number, r: number, dirs: MambaDirection[], withDtBias: Tensor) => {
    for (const d of dirs) fill(d.aLog, (i) => Math.log((i % ns) + 1));
    for (const d of dirs) fill(d.d, () => 1);
    for (const d of dirs) uniform(rng, d.dtW, r ** -0.5);
    fill(withDtBias, dtBias);
  };
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof BiMamba)) continue;
    const dirs = [
      { aLog: m.A_log, d: m.D, dtW: m.dt_proj.weight },
      { aLog: m.A_b_log, d: m.D_b, dtW: m.dt_proj_b.weight },
    ];
    // Forward direction only (G1): dt_proj_b.bias keeps the Linear default drawn above.
    mambaInit(m.dState, m.dtRank, dirs, m.dt_proj.bias!);
  }
  // Unidirectional Mamba (the Mamba decoder's self_mamba / cross_mamba, CONMAMBA_SPEC.md 4.8, 6).
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof Mamba)) continue;
    mambaInit(
      m.dState,
      m.dtRank,
      [{ aLog: m.A_log, d: m.D, dtW: m.dt_proj.weight }],
      m.dt_proj.bias!,
    );
  }
  for (const [name, p] of model.namedParameters()) {
    if (!name.startsWith("Transformer.") || p.shape.length < 2) continue;
    const receptive = p.size / (p.shape[0] * p.shape[1]);
    const std = Math.sqrt(2 / ((p.shape[1] + p.shape[0]) * receptive));
    fill(p, () => std * rng.normal());
  }
}
