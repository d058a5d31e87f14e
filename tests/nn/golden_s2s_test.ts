/**
 * The S2S ConMamba + Transformer decoder model against the original code
 * (tests/fixtures/golden/S2S_conmamba_small_d32: S2S/conmamba_small.yaml at d_model 32, d_ffn 64,
 * 2 + 2 layers, 40 outputs; train_S2S_conmamba_small_d32: one training step on the same batch).
 * Tolerances from the golden README: forward rel L2 <= 1e-5 per array; loss rel <= 1e-5;
 * gradients all-parameter rel L2 <= 1e-4, per tensor <= 1e-3; the Adam step fed the golden's
 * clipped gradients rel <= 1e-6 / abs <= 1e-9 per element.
 */
import { readSafetensors, type SafeTensorsFile } from "../../src/io/safetensors.ts";
import { AsrModel, type AsrModelOptions } from "../../src/nn/asr_model.ts";
import { evalContext } from "../../src/nn/module.ts";
import { loadStateDict } from "../../src/nn/state_dict.ts";
import { objectives } from "../../src/train/objectives.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { adamStep } from "../../src/tensor/optimizer_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import {
  assertGradientsMatch,
  assertMatchesGolden,
  goldenF32 as f32,
  goldenInts as ints,
} from "../fixtures/compare.ts";

const FIX = new URL("../fixtures/golden/", import.meta.url).pathname;
const CASE = FIX + "S2S_conmamba_small_d32/";
const TRAIN = FIX + "train_S2S_conmamba_small_d32/";
const OPTS: AsrModelOptions = {
  encoder: "conmamba",
  decoder: "transformer",
  dModel: 32,
  dFfn: 64,
  numEncoderLayers: 2,
  numDecoderLayers: 2,
  heads: 4,
  vocab: 40,
};

async function withModel(
  fn: (be: WasmBackend, model: AsrModel, io: SafeTensorsFile) => void | Promise<void>,
): Promise<void> {
  const be = await WasmBackend.create({ threads: 2 });
  try {
    const model = new AsrModel(be, OPTS);
    loadStateDict(model, await readSafetensors(CASE + "weights.safetensors"), "weights");
    await fn(be, model, await readSafetensors(CASE + "io.safetensors"));
    model.free();
  } finally {
    be.close();
  }
}

/** Eval forward of the golden batch; every probe and output by name. */
function forward(be: WasmBackend, model: AsrModel, io: SafeTensorsFile, tape: Tape) {
  const got = new Map<string, Float32Array>();
  const ctx = evalContext(tape, (n, t) => got.set(n, t.toArray()));
  const enc = model.encode(ctx, Tensor.from(be, [2, 120, 80], f32(io, "feats")), f32(io, "lens"));
  const bos = ints(io, "tokens_bos");
  const dec = model.decode(ctx, bos.data, [bos.shape[0], bos.shape[1]], enc.encOut, enc.encLengths);
  for (const [n, t] of Object.entries({ ...enc, ...dec })) {
    if (t instanceof Tensor) got.set(n, t.toArray());
  }
  return { enc, dec, got };
}

Deno.test("s2s model: state_dict names and shapes equal the original's (golden and full size)", async () => {
  await withModel(async (be, model) => {
    const golden = await readSafetensors(CASE + "weights.safetensors");
    const ours = [...model.stateDict()].map(([n, t]) => `${n} [${t.shape}]`).sort();
    const theirs = [...golden.tensors].map(([n, t]) => `${n} [${t.shape}]`).sort();
    if (ours.join("\n") !== theirs.join("\n")) throw new Error("names differ from the golden");
    const list = (await Deno.readTextFile(
      new URL("../fixtures/statedicts/conmamba_small.txt", import.meta.url),
    )).trim().split("\n").map((l) => l.split("\t"));
    const big = new AsrModel(be, {
      ...OPTS,
      dModel: 144,
      dFfn: 1024,
      numEncoderLayers: 12,
      numDecoderLayers: 4,
      vocab: 5000,
    });
    const names = [...big.stateDict()].map(([n, t]) => `${n}\t[${t.shape.join(", ")}]`);
    const want = list.map(([n, s]) => `${n}\t${s}`);
    if (names.join("\n") !== want.join("\n")) throw new Error("full size differs from the list");
    big.free();
  });
});

/** The three S2S families of the goldens: encoder x decoder, and the layer-0 probe they share. */
const FAMILIES = [
  { dir: "S2S_conmamba_small_d32", opts: OPTS, sub: "mamba" },
  { dir: "S2S_conmambamamba_small_d32", opts: { ...OPTS, decoder: "mamba" }, sub: "mamba" },
  {
    dir: "S2S_conformer_small_d32",
    opts: { ...OPTS, encoder: "conformer", crossName: "mutihead_attn" },
    sub: "mha_layer",
  },
] as const;

for (const fam of FAMILIES) {
  Deno.test(`s2s model ${fam.dir}: eval forward matches the original layer by layer`, async () => {
    const be = await WasmBackend.create({ threads: 2 });
    try {
      const model = new AsrModel(be, fam.opts);
      const dir = FIX + fam.dir + "/";
      loadStateDict(model, await readSafetensors(dir + "weights.safetensors"), "weights");
      const io = await readSafetensors(dir + "io.safetensors");
      const tape = new Tape();
      const { got } = tape.noGrad(() => forward(be, model, io, tape));
      const pairs: [string, string][] = [
        ["cnnOut", "cnn_out"],
        ["src_proj", "src_proj"],
        ...["ffn_module1", fam.sub, "convolution_module", "ffn_module2"].map((
          m,
        ) => [`encoder.layers.0.${m}`, `enc_layer_0_${m}`] as [string, string]),
        ["encoder.layers.0", "enc_layer_0"],
        ["encoder.layers.1", "enc_layer_1"],
        ["encOut", "enc_out"],
        ["logProbs", "ctc_logprobs"],
        ["dec_emb", "dec_emb"],
        ["decoder.layers.0", "dec_layer_0"],
        ["decoder.layers.1", "dec_layer_1"],
        ["decOut", "dec_out"],
        ["seqLogits", "seq_logits"],
        ["seqLogProbs", "seq_logprobs"],
      ];
      assertMatchesGolden(got, io, pairs, 1e-5);
      model.free();
    } finally {
      be.close();
    }
  });
}

Deno.test("s2s model: joint loss, every gradient and one Adam step match the original's", async () => {
  const grads = await readSafetensors(TRAIN + "grads.safetensors");
  const clipped = await readSafetensors(TRAIN + "grads_clipped.safetensors");
  const after = await readSafetensors(TRAIN + "after_step_recipe_lr.safetensors");
  const lossJson = JSON.parse(await Deno.readTextFile(TRAIN + "loss.json"));
  await withModel((be, model, io) => {
    const tape = new Tape();
    const { enc, dec } = forward(be, model, io, tape); // dropout off, as the golden step
    const tokens = ints(io, "tokens"), eos = ints(io, "tokens_eos");
    const r = objectives(enc, dec, {
      B: 2,
      tokens: tokens.data,
      tokenLens: [7, 5],
      tokensEos: eos.data,
    }, { blank: 0, ctcWeight: 0.3, labelSmoothing: 0, gradAccumulation: 1 });
    for (
      const [name, ours, theirs] of [
        ["loss", r.loss, lossJson.loss],
        ["loss_ctc", r.lossCtc, lossJson.loss_ctc],
        ["loss_seq", r.lossSeq!, lossJson.loss_seq],
      ] as const
    ) {
      const e = Math.abs(ours - theirs) / Math.abs(theirs);
      console.log(`${name} ${ours} vs ${theirs} (rel ${e.toExponential(2)})`);
      if (!(e <= 1e-5)) throw new Error(`${name} rel error ${e}`);
    }
    tape.backwardFrom(r.seeds);
    assertGradientsMatch(model.namedParameters(), grads);
    tape.reset();
    be.resetStep();

    // Adam (betas 0.9/0.98, eps 1e-9, no decay) at the recipe's first-update lr 1e-3 (G7), fed
    // the golden's clipped gradients: isolates the optimiser from our gradient's rounding.
    let bad = 0, checked = 0;
    for (const [name, p] of model.namedParameters()) {
      const g = Tensor.from(be, p.shape, f32(clipped, name), "param");
      const zeros = () => Tensor.from(be, p.shape, new Float32Array(p.size), "param");
      const m = zeros(), v = zeros();
      adamStep(p, g, m, v, {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-9,
        weightDecay: 0,
        decoupled: false,
        step: 1,
        gradScale: 1,
      });
      const ours = p.toArray(), ref = f32(after, name);
      for (let i = 0; i < ours.length; i++) {
        checked++;
        if (!(Math.abs(ours[i] - ref[i]) <= Math.max(1e-9, 1e-6 * Math.abs(ref[i])))) bad++;
      }
      for (const t of [g, m, v]) t.free();
    }
    console.log(`adam step: ${bad} of ${checked} elements outside rel 1e-6 / abs 1e-9`);
    if (bad > 0) throw new Error(`${bad} elements differ after the Adam step`);
  });
});
