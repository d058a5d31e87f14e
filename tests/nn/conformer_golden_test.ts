/**
 * The Conformer encoder with RelPosMHAXL (CONMAMBA_SPEC.md 4.4, 4.10, 4.14, G20) against the
 * original (tests/fixtures/golden/S2S_conformer_small_d32: S2S/conformer_small.yaml at d_model 32,
 * 4 heads, d_ffn 64, 2 layers; SpeechBrain v1.0.0): names and order, the eval forward layer by
 * layer from the golden `src_proj` (rel L2 <= 1e-5 per array, the golden README's advice), the
 * key-padding behaviour, tape gradients against finite differences, and the init (spec 6).
 */
import { readSafetensors, type SafeTensorsFile } from "../../src/io/safetensors.ts";
import { ConformerEncoder } from "../../src/nn/conformer_encoder.ts";
import type { ConformerLayerOptions } from "../../src/nn/conformer_layer.ts";
import { initialize } from "../../src/nn/init.ts";
import { evalContext, type ForwardContext, Module } from "../../src/nn/module.ts";
import { RelPosEncXL } from "../../src/nn/positional.ts";
import { RelPosMHAXL } from "../../src/nn/rel_pos_mha.ts";
import { loadStateDict } from "../../src/nn/state_dict.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import * as ag from "../../src/tensor/autograd_ops.ts";
import type { Backend } from "../../src/tensor/backend.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { roundHalfEven } from "../../src/util/math.ts";
import { randn, withBackend } from "../ops/helpers.ts";
import { assertMatchesGolden, goldenF32 as f32, relL2 } from "../fixtures/compare.ts";

const CASE = new URL("../fixtures/golden/S2S_conformer_small_d32/", import.meta.url).pathname;
const STATEDICTS = new URL("../fixtures/statedicts/", import.meta.url).pathname;
const OPTS: ConformerLayerOptions = { dModel: 32, dFfn: 64, heads: 4 };
const P = "Transformer.encoder.";

/** The `Transformer.encoder.*` tensors with the prefix stripped. */
function encoderPart(f: SafeTensorsFile): SafeTensorsFile {
  const tensors = new Map(
    [...f.tensors].filter(([n]) => n.startsWith(P)).map(([n, t]) => [n.slice(P.length), t]),
  );
  return { tensors, metadata: f.metadata };
}

async function goldenEncoder(be: Backend): Promise<ConformerEncoder> {
  const enc = new ConformerEncoder(be, 2, OPTS);
  loadStateDict(enc, encoderPart(await readSafetensors(CASE + "weights.safetensors")), "weights");
  return enc;
}

/** Runs the encoder without recording; returns every probe and the output. */
function probe(
  enc: ConformerEncoder,
  x: Tensor,
  lengths: number[] | null,
): Map<string, Float32Array> {
  const got = new Map<string, Float32Array>(), tape = new Tape();
  tape.noGrad(() => enc.forward(evalContext(tape, (n, t) => got.set(n, t.toArray())), x, lengths));
  return got;
}

Deno.test("conformer encoder: state_dict names, order and shapes equal the original's", async () => {
  await withBackend(1, async (be) => {
    const golden = await readSafetensors(CASE + "weights.safetensors");
    const enc = new ConformerEncoder(be, 2, OPTS);
    const ours = [...enc.stateDict()].map(([n, t]) => `${P}${n} [${t.shape}]`).sort();
    const theirs = [...golden.tensors].filter(([n]) => n.startsWith(P))
      .map(([n, t]) => `${n} [${t.shape}]`);
    if (ours.join("\n") !== theirs.join("\n")) {
      throw new Error(`names differ:\n${ours.join("\n")}\nvs\n${theirs.join("\n")}`);
    }
    // Full size (conformer_small: d 144, 4 heads, F 1024, 12 layers): names in state_dict order.
    const list = (await Deno.readTextFile(STATEDICTS + "conformer_small.txt")).trim()
      .split("\n").map((l) => l.split("\t")).filter(([n]) => n.startsWith(P));
    const big = new ConformerEncoder(be, 12, { dModel: 144, dFfn: 1024, heads: 4 });
    const bigNames = [...big.stateDict()].map(([n, t]) => `${P}${n}\t[${t.shape.join(", ")}]`);
    if (bigNames.join("\n") !== list.map(([n, s]) => `${n}\t${s}`).join("\n")) {
      throw new Error("full-size encoder state_dict differs from the statedict list");
    }
    const total = big.parameters().reduce((a, t) => a + t.size, 0);
    if (total !== 12 * 765_248 + 288) throw new Error(`${total} parameters (spec 5.3)`);
    big.free();
    // RelPosEncXL's buffer as torch computes it.
    const pe = new RelPosEncXL(be, 32);
    const e = relL2(pe.inv_freq.toArray(), f32(golden, "Transformer.positional_encoding.inv_freq"));
    if (!(e <= 1e-7)) throw new Error(`inv_freq rel L2 ${e}`);
    pe.free();
    enc.free();
  });
});

Deno.test("conformer encoder: eval forward from src_proj matches the original layer by layer", async () => {
  await withBackend(2, async (be) => {
    const io = await readSafetensors(CASE + "io.safetensors");
    const enc = await goldenEncoder(be);
    const lengths = Array.from(f32(io, "lens"), (r) => roundHalfEven(Math.fround(r * 30)));
    if (lengths.join() !== "30,22") throw new Error(`lengths ${lengths}`); // half to even
    const got = probe(enc, Tensor.from(be, [2, 30, 32], f32(io, "src_proj")), lengths);
    got.set("pos_embs", enc.posEnc.table(30));
    const pairs: [string, string][] = [
      ["pos_embs", "pos_embs_enc"],
      ["encoder.layers.0.ffn_module1", "enc_layer_0_ffn_module1"],
      ["encoder.layers.0.mha_layer", "enc_layer_0_mha_layer"],
      ["encoder.layers.0.convolution_module", "enc_layer_0_convolution_module"],
      ["encoder.layers.0.ffn_module2", "enc_layer_0_ffn_module2"],
      ["encoder.layers.0", "enc_layer_0"],
      ["encoder.layers.1", "enc_layer_1"],
      ["encoder", "enc_out"],
    ];
    assertMatchesGolden(got, io, pairs, 1e-5);
    enc.free();
  });
});

Deno.test("conformer encoder: padded frames are masked as keys, conv output zeroed there", async () => {
  await withBackend(2, async (be) => {
    const io = await readSafetensors(CASE + "io.safetensors");
    const enc = await goldenEncoder(be);
    const x = f32(io, "src_proj"), S = 30, d = 32, L = 22;
    const x2 = Float32Array.from(x), noise = randn(S * d, 5, 3);
    for (let i = (S + L) * d; i < 2 * S * d; i++) x2[i] = noise[i - S * d]; // utt 2, frames >= 22
    const run = (v: Float32Array, lengths: number[] | null) =>
      probe(enc, Tensor.from(be, [2, S, d], v), lengths);
    const a = run(x, [30, 22]), b = run(x2, [30, 22]);
    const maxDiff = (p: Float32Array, q: Float32Array, from: number, to: number) => {
      let m = 0;
      for (let i = from; i < to; i++) m = Math.max(m, Math.abs(p[i] - q[i]));
      return m;
    };
    const mha = "encoder.layers.0.mha_layer", conv = "encoder.layers.0.convolution_module";
    const valid = [S * d, (S + L) * d] as const, padded = [(S + L) * d, 2 * S * d] as const;
    // Utterance 2's valid frames never see its padded frames' values in attention.
    const dValid = maxDiff(a.get(mha)!, b.get(mha)!, ...valid);
    const dFirst = maxDiff(a.get(mha)!, b.get(mha)!, 0, S * d);
    if (!(dValid <= 1e-6 && dFirst === 0)) {
      throw new Error(`masked keys leak: valid frames moved by ${dValid}, utt 1 by ${dFirst}`);
    }
    if (!(maxDiff(a.get(mha)!, b.get(mha)!, ...padded) > 1e-2)) {
      throw new Error("padded frames' own outputs did not change (test input not applied)");
    }
    // Without the mask the same change reaches the valid frames (so the check above can fail).
    const c = run(x, null), e = run(x2, null);
    if (!(maxDiff(c.get(mha)!, e.get(mha)!, ...valid) > 1e-3)) {
      throw new Error("unmasked attention ignored the padded frames");
    }
    for (const r of [a, b]) {
      if (maxDiff(r.get(conv)!, new Float32Array(2 * S * d), ...padded) !== 0) {
        throw new Error("conv module output not zero at padded frames");
      }
    }
    if (!(maxDiff(c.get(conv)!, new Float32Array(2 * S * d), ...padded) > 0)) {
      throw new Error("conv module output zero at padded frames without lengths");
    }
    enc.free();
  });
});

/** Fills every parameter of `m` with seeded values (LayerNorm weights around 1). */
function randomize(m: Module, seed: number): void {
  let k = seed;
  for (const [n, p] of m.namedParameters()) {
    const isLnWeight = /(norm|layer_norm|after_conv\.0|ffn_module\d\.0)\.weight$/.test(n);
    const data = isLnWeight ? randn(p.size, k++, 0.1, 1) : randn(p.size, k++, 0.5);
    p.backend.upload(p.storage, data);
  }
}

/**
 * Checks d/dθ of L = sum(out R) from the tape against central differences of L along a random
 * unit direction of each named parameter tensor and along its largest-gradient element.
 * Float32 kernels: L is summed in float64 on the host, h = 1e-2. The forward's rounding noise
 * (~1e-7 relative, over ~1e2 outputs) gives ~1e-5 absolute error in the difference quotient and
 * the O(h^2) truncation term is ~1e-5..1e-4 for these O(1) activations, against derivatives of
 * magnitude ~1..10: errors measure <= 2e-4 of max(|g'|, 1); the bound 2e-3 leaves a 10x margin
 * while a wrong index, head layout, transposition, mask or dropout mask gives O(1) errors.
 */
function checkGradients(
  be: Backend,
  m: Module,
  names: string[],
  forward: (ctx: ForwardContext) => Tensor,
  makeCtx: (tape: Tape) => ForwardContext,
  seed: number,
): string[] {
  const tape = new Tape();
  const out = forward(makeCtx(tape));
  const r = randn(out.size, seed);
  tape.backward(ag.sum(tape, ag.mul(tape, out, Tensor.from(be, out.shape, r))));
  tape.reset();
  const loss = () => {
    const t = new Tape();
    const y = t.noGrad(() => forward(makeCtx(t))).toArray();
    be.resetStep();
    return y.reduce((s, v, i) => s + v * r[i], 0);
  };
  const params = new Map(m.namedParameters());
  const lines: string[] = [], h = 1e-2;
  names.forEach((name, j) => {
    const p = params.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    const g = p.grad!.toArray(), x0 = p.toArray();
    let big = 0;
    for (let i = 0; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[big])) big = i;
    const dir = randn(p.size, seed + 100 + j), norm = Math.hypot(...dir);
    const oneHot = new Float32Array(p.size);
    oneHot[big] = 1;
    for (const [what, u] of [["random", dir.map((v) => v / norm)], [`[${big}]`, oneHot]] as const) {
      const at = (s: number) => {
        p.backend.upload(p.storage, x0.map((v, i) => v + s * u[i]));
        return loss();
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      p.backend.upload(p.storage, x0);
      const tapeD = g.reduce((s, gi, i) => s + gi * u[i], 0);
      const err = Math.abs(tapeD - fd) / Math.max(Math.abs(tapeD), 1);
      lines.push(
        `${name} ${what}: tape ${tapeD.toFixed(5)} fd ${fd.toFixed(5)} err ${err.toExponential(1)}`,
      );
      if (!(err <= 2e-3)) throw new Error(`gradient mismatch:\n${lines.join("\n")}`);
    }
  });
  for (const p of m.parameters()) p.grad?.free(), p.grad = null;
  return lines;
}

Deno.test("conformer encoder: tape gradients of every attention parameter vs finite differences", async () => {
  await withBackend(2, (be) => {
    const o = { dModel: 8, dFfn: 16, heads: 2, kernelSize: 5 };
    const enc = new ConformerEncoder(be, 1, o);
    randomize(enc, 11);
    const [B, S] = [2, 7];
    const x = Tensor.from(be, [B, S, 8], randn(B * S * 8, 3), "param"); // survives resetStep
    const L = "layers.0.";
    const lines = checkGradients(
      be,
      enc,
      [
        `${L}mha_layer.in_proj_weight`,
        `${L}mha_layer.pos_bias_u`,
        `${L}mha_layer.pos_bias_v`,
        `${L}mha_layer.linear_pos.weight`,
        `${L}mha_layer.out_proj.weight`,
        `${L}mha_layer.out_proj.bias`,
        `${L}convolution_module.after_conv.2.weight`,
        `${L}ffn_module1.1.ffn.0.weight`,
      ],
      (ctx) => enc.forward(ctx, x, [7, 5]),
      (tape) => evalContext(tape),
      21,
    );
    console.log(lines.join("\n"));
    x.free();
    enc.free();
  });
});

Deno.test("RelPosMHAXL: attention dropout in training is seeded, masks consistently, and differs from eval", async () => {
  await withBackend(2, (be) => {
    const mha = new RelPosMHAXL(be, 8, 2, 0.1);
    randomize(mha, 31);
    const [B, S] = [2, 6];
    const x = Tensor.from(be, [B, S, 8], randn(B * S * 8, 4), "param");
    const enc = new RelPosEncXL(be, 8);
    const pos = Tensor.from(be, [1, 2 * S - 1, 8], enc.table(S), "param");
    enc.free();
    const lens = Tensor.from(be, [B], [6, 4], "param");
    const train = (tape: Tape): ForwardContext => ({ tape, training: true, seed: 9, stream: 0 });
    const run = (ctx: ForwardContext) => {
      const t = ctx.tape;
      const y = t.noGrad(() => mha.forward(ctx, x, pos, lens)).toArray();
      if (ctx.stream !== 1) throw new Error(`stream advanced to ${ctx.stream}, expected 1`);
      return y;
    };
    const t1 = run(train(new Tape())), t2 = run(train(new Tape()));
    const ev = run(evalContext(new Tape()));
    if (relL2(t1, t2) !== 0) throw new Error("same seed and stream gave another dropout mask");
    if (!(relL2(t1, ev) > 1e-3)) throw new Error("training output equals eval: no dropout");
    const lines = checkGradients(
      be,
      mha,
      ["in_proj_weight", "pos_bias_u", "pos_bias_v", "linear_pos.weight"],
      (ctx) => mha.forward(ctx, x, pos, lens),
      train,
      41,
    );
    console.log(lines.join("\n"));
    for (const t of [x, pos, lens]) t.free();
    mha.free();
  });
});

Deno.test("init: the Conformer's attention tensors get the distributions of spec 6", async () => {
  await withBackend(1, (be) => {
    const d = 512, H = 8, dh = d / H;
    // The encoder under `Transformer.encoder.`, as in TransformerASR (Xavier re-init applies).
    class Asr extends Module {
      readonly encoder: ConformerEncoder;
      constructor() {
        super(be);
        this.encoder = this.child(
          "encoder",
          new ConformerEncoder(be, 1, { dModel: d, dFfn: 64, heads: H }),
        );
      }
    }
    class Root extends Module {
      readonly Transformer: Asr;
      constructor() {
        super(be);
        this.Transformer = this.child("Transformer", new Asr());
      }
    }
    const model = new Root();
    initialize(model, 77);
    const p = new Map([...model.namedParameters()].map(([n, t]) => [n, t.toArray()]));
    const M = `${P}layers.0.mha_layer.`, problems: string[] = [];
    const moments = (x: Float32Array) => {
      let s = 0, s2 = 0;
      for (const v of x) s += v, s2 += v * v;
      const mean = s / x.length;
      return { mean, std: Math.sqrt(s2 / x.length - mean * mean) };
    };
    const normal = (name: string, std: number) => {
      const x = p.get(M + name)!, s = moments(x), tol = 4 / Math.sqrt(2 * x.length) + 0.005;
      if (
        !(Math.abs(s.std / std - 1) <= tol && Math.abs(s.mean) <= 4 * std / Math.sqrt(x.length))
      ) {
        problems.push(`${name}: mean ${s.mean} std ${s.std}, expected N(0, ${std}^2)`);
      }
    };
    normal("in_proj_weight", Math.sqrt(2 / (d + 3 * d)));
    normal("pos_bias_u", Math.sqrt(2 / (dh + H)));
    normal("pos_bias_v", Math.sqrt(2 / (dh + H)));
    normal("out_proj.weight", Math.sqrt(2 / (2 * d)));
    normal("linear_pos.weight", Math.sqrt(2 / (2 * d)));
    const bias = p.get(M + "out_proj.bias")!, a = 1 / Math.sqrt(d), sd = moments(bias).std;
    if (!(bias.every((v) => Math.abs(v) <= a) && Math.abs(sd / (a / Math.sqrt(3)) - 1) < 0.2)) {
      problems.push(`out_proj.bias: std ${sd}, expected U(+-${a})`);
    }
    if (!p.get(M + "pos_bias_u")!.some((v, i) => v !== p.get(M + "pos_bias_v")![i])) {
      problems.push("pos_bias_u equals pos_bias_v");
    }
    if (problems.length) throw new Error(problems.join("\n"));
    model.free();
  });
});
