/**
 * The Mamba decoder of ConMamba+Mamba (CONMAMBA_SPEC.md 4.8, 4.12, 5.2, 6; G3) against the original
 * code (tests/fixtures/golden/S2S_conmambamamba_small_d32: S2S/conmambamamba_small.yaml at d_model
 * 32, d_ffn 64, 2 decoder layers; weights from the original's init). The decoder runs standalone on
 * the golden encoder output (memory, padding frames included) and the golden target embedding plus
 * the absolute positional encoding rows 0..U-1. Forward tolerance from the golden README: rel L2
 * <= 1e-5 per array. Also: tape gradients against central finite differences, dropout in eval and
 * train mode, causality over the target, and the decoder Mambas' own initialisation.
 */
import {
  readSafetensors,
  type SafeTensor,
  type SafeTensorsFile,
} from "../../src/io/safetensors.ts";
import { initialize, Rng } from "../../src/nn/init.ts";
import { MambaDecoder, type MambaDecoderOptions } from "../../src/nn/mamba_decoder.ts";
import { type ForwardContext, Module } from "../../src/nn/module.ts";
import { loadStateDict } from "../../src/nn/state_dict.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import type { Backend } from "../../src/tensor/backend.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { goldenF32 as f32, relL2 } from "../fixtures/compare.ts";

const CASE = new URL("../fixtures/golden/S2S_conmambamamba_small_d32/", import.meta.url).pathname;
const OPTS: MambaDecoderOptions = { dModel: 32, dFfn: 64 };
const PREFIX = "Transformer.decoder.";
const B = 2, U = 8, T = 30, D = 32;

interface Golden {
  tgt: Float32Array; // (B, U, d): dec_emb + pe[0..U-1], summed in float32 as torch does
  memory: Float32Array; // (B, T', d): enc_out
  io: SafeTensorsFile;
}

async function loadGolden(decoder: MambaDecoder): Promise<Golden> {
  const weights = await readSafetensors(CASE + "weights.safetensors");
  const own = new Map<string, SafeTensor>();
  for (const [n, t] of weights.tensors) {
    if (n.startsWith(PREFIX)) own.set(n.slice(PREFIX.length), t);
  }
  loadStateDict(decoder, { tensors: own, metadata: {} }, "weights.safetensors (decoder)");
  const io = await readSafetensors(CASE + "io.safetensors");
  const emb = f32(io, "dec_emb"), pe = f32(weights, "Transformer.positional_encoding_decoder.pe");
  const tgt = new Float32Array(B * U * D);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < U * D; i++) tgt[b * U * D + i] = emb[b * U * D + i] + pe[i];
  }
  return { tgt, memory: f32(io, "enc_out"), io };
}

async function withDecoder(
  fn: (be: Backend, dec: MambaDecoder, g: Golden) => void | Promise<void>,
  o: MambaDecoderOptions = OPTS,
): Promise<void> {
  const be = await WasmBackend.create({ threads: 2 });
  try {
    const dec = new MambaDecoder(be, 2, o);
    await fn(be, dec, await loadGolden(dec));
    dec.free();
  } finally {
    be.close();
  }
}

/** One forward without recording; returns the output and the probes on the host. */
function run(
  be: Backend,
  dec: MambaDecoder,
  g: { tgt: Float32Array; memory: Float32Array },
  mode: { training: boolean; seed?: number } = { training: false },
): { out: Float32Array; probes: Map<string, Float32Array>; streams: number } {
  const tape = new Tape(), probes = new Map<string, Float32Array>();
  const ctx: ForwardContext = {
    tape,
    training: mode.training,
    seed: mode.seed ?? 0,
    stream: 0,
    capture: (n, t) => probes.set(n, t.toArray()),
  };
  const tgt = Tensor.from(be, [B, U, D], g.tgt), mem = Tensor.from(be, [B, T, D], g.memory);
  const out = tape.noGrad(() => dec.forward(ctx, tgt, mem)).toArray();
  be.resetStep();
  return { out, probes, streams: ctx.stream };
}

Deno.test("mamba decoder: state_dict names, order and shapes equal the original's", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    // Full size (S2S/conmambamamba_small: d 144, d_ffn 1024, 4 decoder layers) against the list.
    const list = (await Deno.readTextFile(CASE + "statedict_conmambamamba_small.txt"))
      .trim().split("\n").map((l) => l.split("\t")).filter(([n]) => n.startsWith(PREFIX));
    const big = new MambaDecoder(be, 4, { dModel: 144, dFfn: 1024 });
    const ours = [...big.stateDict()].map(([n, t]) => `${PREFIX}${n}\t[${t.shape.join(", ")}]`);
    const want = list.map(([n, s]) => `${n}\t${s}`);
    if (want.length !== 4 * 28 + 2 || ours.join("\n") !== want.join("\n")) {
      throw new Error(`decoder state_dict differs from the list:\n${ours.join("\n")}`);
    }
    big.free();
  } finally {
    be.close();
  }
});

Deno.test("mamba decoder: eval forward matches the original layer by layer", async () => {
  await withDecoder((be, dec, g) => {
    const { out, probes } = run(be, dec, g);
    const pairs: [Float32Array | undefined, string][] = [
      [probes.get("decoder.layers.0"), "dec_layer_0"],
      [probes.get("decoder.layers.1"), "dec_layer_1"],
      [probes.get("decoder"), "dec_out"],
      [out, "dec_out"],
    ];
    const report: string[] = [];
    let failed = false;
    for (const [ours, theirs] of pairs) {
      if (!ours) throw new Error(`probe for ${theirs} missing`);
      const e = relL2(ours, f32(g.io, theirs));
      report.push(`${theirs}: ${e.toExponential(2)}`);
      if (!(e <= 1e-5)) failed = true;
    }
    console.log("rel L2 vs golden:\n  " + report.join("\n  "));
    if (failed) {
      throw new Error("decoder differs from the golden beyond 1e-5:\n" + report.join("\n"));
    }
  });
});

Deno.test("mamba decoder: causal in the target; the memory (padding included) is scanned", async () => {
  await withDecoder((be, dec, g) => {
    const base = run(be, dec, g).out;
    // A change at target step j leaves the outputs at steps < j bit-identical, and moves step j.
    const j = 5, tgt = g.tgt.slice();
    // Not a constant shift: the pre-norm LayerNorms and the final one would cancel that.
    for (let c = 0; c < D; c++) tgt[j * D + c] += c % 2 ? 0.5 : -0.5; // utterance 0 only
    const moved = run(be, dec, { ...g, tgt }).out;
    for (let i = 0; i < j * D; i++) {
      if (moved[i] !== base[i]) throw new Error(`output step ${Math.floor(i / D)} sees step ${j}`);
    }
    if (relL2(moved.subarray(j * D, (j + 1) * D), base.subarray(j * D, (j + 1) * D)) < 1e-3) {
      throw new Error("step j ignores its own input");
    }
    // Utterance 1 is unaffected (batch rows are independent).
    if (relL2(moved.subarray(U * D), base.subarray(U * D)) !== 0) throw new Error("batch leak");
    // G3: utterance 1's padding frames (22..29 of enc_out) reach its decoder outputs.
    const memory = g.memory.slice();
    for (let i = (T + 22) * D; i < 2 * T * D; i++) memory[i] = 0;
    const unpadded = run(be, dec, { ...g, memory }).out;
    if (!(relL2(unpadded.subarray(U * D), base.subarray(U * D)) > 1e-3)) {
      throw new Error("the padding frames of the memory do not reach the output");
    }
  });
});

Deno.test("mamba decoder: dropout is the identity in eval mode and active in train mode", async () => {
  await withDecoder(async (be, dec, g) => {
    const evalOut = run(be, dec, g);
    // 4 dropout sites per layer: the three residual branches and the FFN's inner activation.
    if (evalOut.streams !== 8) throw new Error(`${evalOut.streams} dropout calls, expected 8`);
    // The same weights with p = 0 in train mode give bit-identical outputs: eval mode is identity.
    await withDecoder((be0, dec0, g0) => {
      const noDrop = run(be0, dec0, g0, { training: true, seed: 5 }).out;
      if (relL2(noDrop, evalOut.out) !== 0) throw new Error("eval mode is not dropout-free");
    }, { ...OPTS, dropout: 0 });
    const a = run(be, dec, g, { training: true, seed: 5 }).out;
    const a2 = run(be, dec, g, { training: true, seed: 5 }).out;
    const b = run(be, dec, g, { training: true, seed: 6 }).out;
    const eA = relL2(a, evalOut.out), eB = relL2(b, a);
    console.log(`train vs eval rel L2 ${eA.toExponential(2)}, seed 5 vs 6 ${eB.toExponential(2)}`);
    if (relL2(a, a2) !== 0) throw new Error("train-mode dropout not repeatable for one seed");
    // p = 0.1 on residual branches of size ~ the signal: a change of several percent is expected.
    if (!(eA > 1e-2) || !(eB > 1e-2)) throw new Error("dropout inactive in train mode");
  });
});

Deno.test("mamba decoder: tape gradients equal central finite differences", async () => {
  await withDecoder((be, dec, g) => {
    // Loss L = sum(R * y) with a fixed random R, evaluated in float64 on the host.
    const rng = new Rng(11), n = B * U * D;
    const r = Float64Array.from({ length: n }, () => rng.normal());
    const loss = (y: Float32Array) => y.reduce((s, v, i) => s + v * r[i], 0);
    const tape = new Tape();
    const tgt = Tensor.from(be, [B, U, D], g.tgt), mem = Tensor.from(be, [B, T, D], g.memory);
    const y = dec.forward({ tape, training: false, seed: 0, stream: 0 }, tgt, mem);
    tape.backward(y, Tensor.from(be, y.shape, Float32Array.from(r)));
    const params = new Map(dec.namedParameters());
    const grads = new Map([...params].map(([k, p]) => [k, p.grad?.toArray()]));
    tape.reset();
    be.resetStep();
    const names = [
      "layers.0.self_mamba.in_proj.weight",
      "layers.1.self_mamba.in_proj.weight",
      "layers.0.cross_mamba.in_proj.weight",
      "layers.1.cross_mamba.in_proj.weight",
      "layers.0.self_mamba.dt_proj.bias",
      "layers.1.cross_mamba.dt_proj.bias",
      "layers.0.self_mamba.A_log",
      "layers.0.cross_mamba.A_log",
      "layers.1.cross_mamba.A_log",
      "layers.0.pos_ffn.ffn.0.weight",
      "layers.1.pos_ffn.ffn.3.weight",
      "layers.1.pos_ffn.ffn.0.bias",
    ];
    // Float32 forward: L (about -16) carries rounding noise eps ~3e-6 (measured: its spread over
    // perturbations of 1e-6 that barely move it). A plain central difference then has a noise of
    // ~eps / 2h, 1.5e-4 at h = 1e-2, which dominated it at every h <= 1e-2 we tried. So we use the
    // fourth-order stencil (truncation O(h^4)), noise ~11 eps / 12h ~ 2.8e-6 / h, and the
    // tolerance 1.2e-5 / h (4x that) plus 1e-3 relative. Steps: h = 3e-2 on single elements
    // (4e-4 absolute); on the direction g / |g| of the tape gradient (directional derivative |g|),
    // h = 3e-2 for the projections and the FFN, and h = 0.3 for A_log and dt_proj.bias, whose
    // gradients are ~1e-2 but whose response along that direction is smooth (estimates at h = 0.1,
    // 0.3 and 1 agreed to ~1e-5): 4e-5 absolute there, so those small gradients are checked to ~1%.
    const report: string[] = [];
    let failed = false;
    const check = (label: string, tape: number, h: number, at: (delta: number) => number) => {
      const fd = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
      const err = Math.abs(fd - tape), ok = err <= 1.2e-5 / h + 1e-3 * Math.abs(tape);
      if (!ok) failed = true;
      report.push(
        `${label} (h ${h}): tape ${tape.toExponential(4)} fd ${fd.toExponential(4)} ` +
          `|diff| ${err.toExponential(2)}${ok ? "" : "  FAIL"}`,
      );
    };
    for (const name of names) {
      const p = params.get(name)!, gr = grads.get(name)!;
      if (!gr) throw new Error(`${name}: no gradient`);
      const orig = p.toArray();
      const along = (v: Float32Array) => (delta: number) => {
        p.backend.upload(p.storage, orig.map((w, k) => w + delta * v[k]));
        return loss(run(be, dec, g).out);
      };
      let top = 0;
      for (let i = 1; i < gr.length; i++) if (Math.abs(gr[i]) > Math.abs(gr[top])) top = i;
      for (const i of [top, Math.floor(rng.uniform() * gr.length)]) {
        const e = new Float32Array(gr.length);
        e[i] = 1;
        check(`${name}[${i}]`, gr[i], 3e-2, along(e));
      }
      const norm = Math.hypot(...gr);
      const hDir = /A_log|dt_proj\.bias/.test(name) ? 0.3 : 3e-2;
      check(`${name} along g/|g|`, norm, hDir, along(gr.map((v) => v / norm)));
      p.backend.upload(p.storage, orig);
    }
    console.log("gradient check:\n  " + report.join("\n  "));
    if (failed) throw new Error("tape gradient differs from finite differences");
  });
});

class TransformerStub extends Module {
  readonly decoder: MambaDecoder;
  constructor(be: Backend) {
    super(be);
    this.decoder = this.child("decoder", new MambaDecoder(be, 2, OPTS));
  }
}

/** A model with TransformerASR's prefix, so that initialize() also applies the Xavier re-init. */
class Wrapper extends Module {
  readonly transformer: TransformerStub;
  constructor(be: Backend) {
    super(be);
    this.transformer = this.child("Transformer", new TransformerStub(be));
  }
}

const softplus = (x: number) => Math.log1p(Math.exp(x));

function std(x: Float32Array): number {
  const m = x.reduce((a, b) => a + b, 0) / x.length;
  return Math.sqrt(x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length);
}

Deno.test("mamba decoder: initialize() gives the decoder Mambas their own init (CONMAMBA_SPEC.md 6)", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const di = 64, r = 2, ns = 16;
    const problems: string[] = [];
    const logDt: number[] = [];
    // Under `Transformer.`: D = 1 and dt_proj.bias = softplus^-1(dt), dt in [1e-3, 0.1] (1-D, so
    // the Xavier re-init leaves them); A_log, dt_proj.weight, conv1d.weight are Xavier-normal.
    const model = new Wrapper(be);
    initialize(model, 7775);
    const p = new Map([...model.namedParameters()].map(([n, t]) => [n, t.toArray()]));
    for (const l of [0, 1]) {
      for (const m of ["self_mamba", "cross_mamba"]) {
        const pre = `Transformer.decoder.layers.${l}.${m}.`;
        if (!p.get(pre + "D")!.every((v) => v === 1)) problems.push(`${pre}D not all 1`);
        for (const b of p.get(pre + "dt_proj.bias")!) {
          const dt = softplus(b);
          // float32 storage of softplus^-1 moves dt by ~1e-7 relative at most.
          if (!(dt >= 1e-3 * (1 - 1e-5) && dt <= 0.1 * (1 + 1e-5))) {
            problems.push(`${pre}dt_proj.bias ${b}: softplus ${dt} outside [1e-3, 0.1]`);
          }
          logDt.push(Math.log(dt));
        }
        // Xavier std sqrt(2 / (fan_in + fan_out)); 1024 / 128 samples: within 20 %.
        const xav: [string, number][] = [
          ["A_log", Math.sqrt(2 / (ns + di))],
          ["dt_proj.weight", Math.sqrt(2 / (r + di))],
          ["conv1d.weight", Math.sqrt(2 / (4 + 4 * di))],
        ];
        for (const [n, want] of xav) {
          const s = std(p.get(pre + n)!);
          if (!(Math.abs(s / want - 1) < 0.2)) {
            problems.push(`${pre}${n}: std ${s}, Xavier ${want}`);
          }
        }
      }
    }
    // log dt ~ U(ln 1e-3, ln 0.1): mean ln 1e-2, std ln(100) / sqrt(12) = 1.33 (256 samples:
    // standard error of the mean 0.083, so 0.4 is ~5 standard errors).
    const mean = logDt.reduce((a, b) => a + b, 0) / logDt.length;
    if (!(Math.abs(mean - Math.log(1e-2)) < 0.4)) problems.push(`mean log dt ${mean}`);
    // Outside `Transformer.` (no Xavier re-init) the Mamba's own init is visible whole:
    // A_log[c, n] = ln(n + 1), dt_proj.weight U(+-R^-1/2).
    const bare = new MambaDecoder(be, 1, OPTS);
    initialize(bare, 1);
    const sm = bare.layers.items[0].cross_mamba;
    const aLog = sm.A_log.toArray(), dtW = sm.dt_proj.weight.toArray();
    if (!aLog.every((v, i) => v === Math.fround(Math.log((i % ns) + 1)))) {
      problems.push("bare A_log is not ln(1..16) per row");
    }
    if (!dtW.every((v) => Math.abs(v) <= r ** -0.5) || !(std(dtW) > 0.3)) {
      problems.push(`bare dt_proj.weight not U(+-${r ** -0.5}): std ${std(dtW)}`);
    }
    if (problems.length) throw new Error(problems.join("\n"));
    model.free();
    bare.free();
  } finally {
    be.close();
  }
});
