/**
 * The CTC ConMamba model against the original code (tests/fixtures/golden/CTC_conmamba_large_d32,
 * CTC/conmamba_large.yaml at d_model 32, d_ffn 64, 2 layers; weights from the original's init):
 * names and shapes, the eval forward layer by layer, the CTC loss and every parameter gradient.
 * Tolerances from the golden README: forward rel L2 <= 1e-5 per array; loss rel <= 1e-5;
 * gradients all-parameter rel L2 <= 1e-4 and per tensor <= 1e-3.
 */
import { readSafetensors, type SafeTensorsFile } from "../../src/io/safetensors.ts";
import { absoluteLengths, ConMambaCtc } from "../../src/nn/ctc_model.ts";
import { evalContext } from "../../src/nn/module.ts";
import { loadStateDict, StateDictError } from "../../src/nn/state_dict.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { ctcLoss } from "../../src/tensor/loss_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import {
  assertGradientsMatch,
  assertMatchesGolden,
  goldenF32 as f32,
  relL2,
} from "../fixtures/compare.ts";

const FIX = new URL("../fixtures/golden/", import.meta.url).pathname;
const CASE = FIX + "CTC_conmamba_large_d32/";
const OPTS = { dModel: 32, dFfn: 64, numEncoderLayers: 2, vocab: 31 };

async function withModel(
  threads: number,
  fn: (be: WasmBackend, model: ConMambaCtc, io: SafeTensorsFile) => void | Promise<void>,
): Promise<void> {
  const be = await WasmBackend.create({ threads });
  try {
    const model = new ConMambaCtc(be, OPTS);
    loadStateDict(
      model,
      await readSafetensors(CASE + "weights.safetensors"),
      "weights.safetensors",
    );
    await fn(be, model, await readSafetensors(CASE + "io.safetensors"));
    model.free();
  } finally {
    be.close();
  }
}

Deno.test("ctc model: state_dict names, order and shapes equal the original's", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const golden = await readSafetensors(CASE + "weights.safetensors");
    const model = new ConMambaCtc(be, OPTS);
    const ours = [...model.stateDict()].map(([n, t]) => `${n} [${t.shape}]`).sort();
    const theirs = [...golden.tensors].map(([n, t]) => `${n} [${t.shape}]`).sort();
    if (ours.join("\n") !== theirs.join("\n")) {
      throw new Error(
        `names differ:\n ours only ${ours.filter((x) => !theirs.includes(x))}\n` +
          ` theirs only ${theirs.filter((x) => !ours.includes(x))}`,
      );
    }
    // The statedict list of the full-size experiment: same names in the same order.
    const list = (await Deno.readTextFile(CASE + "statedict_conmamba_large_ctc.txt"))
      .trim().split("\n").map((l) => l.split("\t"));
    const big = new ConMambaCtc(be, { dModel: 256, dFfn: 1024, numEncoderLayers: 18, vocab: 31 });
    const bigNames = [...big.stateDict()].map(([n, t]) => `${n}\t[${t.shape.join(", ")}]`);
    const want = list.map(([n, s]) => `${n}\t${s}`);
    if (bigNames.join("\n") !== want.join("\n")) {
      throw new Error("full-size state_dict differs from the statedict list");
    }
    let total = 0;
    for (const [, t] of big.namedParameters()) total += t.size;
    // CONMAMBA_SPEC.md 5.3: 31 555 519 (the list's sizes without the two positional buffers).
    const fromList = list.filter(([n]) => !n.includes("positional_encoding"))
      .reduce((a, l) => a + Number(l[3]), 0);
    if (total !== 31_555_519 || total !== fromList) throw new Error(`${total} parameters`);
    big.free();
    // Buffers are computed as torch computes them.
    for (const [n, t] of model.namedBuffers()) {
      const e = relL2(t.toArray(), f32(golden, n));
      if (!(e <= 1e-6)) throw new Error(`buffer ${n}: rel L2 ${e}`);
    }
    model.free();
  } finally {
    be.close();
  }
});

Deno.test("ctc model: loading reports every missing, unexpected and mis-shaped tensor at once", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const golden = await readSafetensors(CASE + "weights.safetensors");
    const model = new ConMambaCtc(be, OPTS);
    const bad = new Map(golden.tensors);
    bad.delete("ctc_lin.w.bias");
    bad.set("ctc_lin.w.extra", { dtype: "F32", shape: [1], data: new Float32Array(1) });
    bad.set("Transformer.encoder.norm.norm.weight", {
      dtype: "F32",
      shape: [2, 16],
      data: new Float32Array(32),
    });
    try {
      loadStateDict(model, { tensors: bad, metadata: {} }, "bad.safetensors");
      throw new Error("no error");
    } catch (e) {
      if (!(e instanceof StateDictError) || e.problems.length !== 3) throw e;
      for (
        const p of ['missing: "ctc_lin.w.bias"', 'unexpected: "ctc_lin.w.extra"', "wrong shape"]
      ) {
        if (!e.message.includes(p)) throw new Error(`message lacks ${p}: ${e.message}`);
      }
      if (!e.message.startsWith("bad.safetensors")) throw new Error("file not named");
    }
    // The original checkpoint's index-prefixed form (CTC: 0 CNN, 1 Transformer, 2 ctc_lin).
    const idx = new Map([...golden.tensors].map(([n, t]) => [
      n.replace(/^CNN\./, "0.").replace(/^Transformer\./, "1.").replace(/^ctc_lin\./, "2."),
      t,
    ]));
    loadStateDict(model, { tensors: idx, metadata: {} }, "model.ckpt.safetensors");
    const w = model.ctc_lin.w.weight.toArray(), g = f32(golden, "ctc_lin.w.weight");
    if (relL2(w, g) !== 0) throw new Error("index-prefixed load differs");
    model.free();
  } finally {
    be.close();
  }
});

Deno.test("ctc model: eval forward matches the original layer by layer", async () => {
  await withModel(2, (be, model, io) => {
    const feats = Tensor.from(be, [2, 120, 80], f32(io, "feats"));
    const got = new Map<string, Float32Array>();
    const tape = new Tape();
    const out = tape.noGrad(() =>
      model.forward(evalContext(tape, (n, t) => got.set(n, t.toArray())), feats)
    );
    got.set("cnn_out", out.cnnOut.toArray());
    got.set("enc_out", out.encOut.toArray());
    got.set("ctc_logits", out.logits.toArray());
    got.set("ctc_logprobs", out.logProbs.toArray());
    const pairs: [string, string][] = [
      ["cnn_out", "cnn_out"],
      ["src_proj", "src_proj"],
      ["encoder.layers.0.ffn_module1", "enc_layer_0_ffn_module1"],
      ["encoder.layers.0.mamba", "enc_layer_0_mamba"],
      ["encoder.layers.0.convolution_module", "enc_layer_0_convolution_module"],
      ["encoder.layers.0.ffn_module2", "enc_layer_0_ffn_module2"],
      ["encoder.layers.0", "enc_layer_0"],
      ["encoder.layers.1", "enc_layer_1"],
      ["enc_out", "enc_out"],
      ["ctc_logits", "ctc_logits"],
      ["ctc_logprobs", "ctc_logprobs"],
    ];
    assertMatchesGolden(got, io, pairs, 1e-5);
    be.resetStep();
  });
});

Deno.test("ctc model: CTC loss and every parameter gradient match the original's training step", async () => {
  const train = await readSafetensors(FIX + "train_CTC_conmamba_large_d32/grads.safetensors");
  const lossJson = JSON.parse(
    await Deno.readTextFile(FIX + "train_CTC_conmamba_large_d32/loss.json"),
  );
  await withModel(2, (be, model, io) => {
    const feats = Tensor.from(be, [2, 120, 80], f32(io, "feats"));
    const tape = new Tape();
    const out = model.forward(evalContext(tape), feats); // dropout off, as the golden step
    const tokens = io.tensors.get("tokens")!;
    if (tokens.dtype !== "I64") throw new Error("tokens not I64");
    const [, s] = tokens.shape, frames = out.logProbs.shape[1];
    const inputLens = absoluteLengths(f32(io, "lens"), frames); // [30, 22]: half to even
    const targetLens = absoluteLengths(f32(io, "tokens_lens"), s); // [10, 7]
    const loss = ctcLoss(out.logProbs, Array.from(tokens.data, Number), inputLens, targetLens);
    const lossErr = Math.abs(loss.loss - lossJson.loss) / Math.abs(lossJson.loss);
    console.log(
      `loss ${loss.loss} vs ${lossJson.loss} (rel ${
        lossErr.toExponential(2)
      }); lengths ${inputLens} / ${targetLens}`,
    );
    if (!(lossErr <= 1e-5)) throw new Error(`loss rel error ${lossErr}`);
    tape.backward(out.logProbs, loss.grad);
    assertGradientsMatch(model.namedParameters(), train);
    tape.reset();
    be.resetStep();
  });
});
