/**
 * State dicts of the S2S models (src/nn/state_dict.ts, CONMAMBA_SPEC.md 5.1, 5.2, G21): a
 * safetensors save -> load round trip is bitwise for every tensor, parameters AND buffers, for
 * the three S2S families and the CTC model (special values included: -0, a subnormal, the largest
 * float, NaN, infinities); a checkpoint with several problems (missing parameter, missing buffer,
 * wrong shape, wrong dtype, unexpected name) fails with ONE StateDictError listing every problem
 * and writes nothing; and the original's index-prefixed form (0. = CNN, 1. = Transformer,
 * 2. = seq_lin, 3. = ctc_lin for S2S) loads to the same tensors, while a half-renamed file is
 * rejected. (The CTC model's index form, 2. = ctc_lin, is covered by golden_ctc_test.ts.)
 */
import { readSafetensors, type SafeTensor } from "../../src/io/safetensors.ts";
import { AsrModel, type AsrModelOptions } from "../../src/nn/asr_model.ts";
import { initialize } from "../../src/nn/init.ts";
import {
  loadStateDict,
  loadStateDictFile,
  saveStateDictFile,
  StateDictError,
  stateDictTensors,
} from "../../src/nn/state_dict.ts";
import type { Backend } from "../../src/tensor/backend.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { randn, withBackend } from "../ops/helpers.ts";

const BASE: AsrModelOptions = {
  dModel: 16,
  dFfn: 32,
  numEncoderLayers: 1,
  numDecoderLayers: 1,
  heads: 2,
  vocab: 12,
  nMels: 16,
  cnnChannels: [4, 4],
};

const FAMILIES: [string, AsrModelOptions][] = [
  ["conmamba+transformer", { ...BASE, encoder: "conmamba", decoder: "transformer" }],
  ["conmamba+mamba", { ...BASE, encoder: "conmamba", decoder: "mamba" }],
  [
    "conformer+transformer",
    { ...BASE, encoder: "conformer", decoder: "transformer", crossName: "mutihead_attn" },
  ],
  ["conmamba CTC", { ...BASE, encoder: "conmamba", decoder: null }],
];

/** Every state_dict tensor's bits, by name, in order. */
function bits(model: AsrModel): Map<string, Uint32Array> {
  return new Map(
    [...model.stateDict()].map(([n, t]) => [n, new Uint32Array(t.toArray().buffer)]),
  );
}

/** Names whose bits differ between two snapshots (and names present in only one). */
function differing(a: Map<string, Uint32Array>, b: Map<string, Uint32Array>): string[] {
  const out: string[] = [];
  for (const [n, x] of a) {
    const y = b.get(n);
    if (!y || y.length !== x.length || x.some((v, i) => v !== y[i])) out.push(n);
  }
  for (const n of b.keys()) if (!a.has(n)) out.push(n);
  return out;
}

/**
 * A model initialised from `seed`; `scramble`: every tensor, buffers included, overwritten with
 * noise instead (initialize() gives LayerNorms, D, A_log and the buffers fixed values, which a
 * load that skipped them would not reveal).
 */
function fresh(be: Backend, o: AsrModelOptions, seed: number, scramble = false): AsrModel {
  const model = new AsrModel(be, o);
  initialize(model, seed);
  if (scramble) {
    let k = seed;
    for (const [, t] of model.stateDict()) t.backend.upload(t.storage, randn(t.size, k++));
  }
  return model;
}

const set = (t: Tensor, data: Float32Array) => t.backend.upload(t.storage, data);

for (const [name, opts] of FAMILIES) {
  Deno.test(`state_dict ${name}: safetensors save -> load is bitwise for every tensor, buffers included`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "state_dict_test_" });
    try {
      await withBackend(1, async (be) => {
        const a = fresh(be, opts, 1);
        // Special values in one parameter: -0, the smallest subnormal, the largest float, NaN,
        // +-Infinity (a copy through float64 or text would lose some of them).
        const w = a.ctc_lin.w.weight, x = w.toArray();
        x.set([-0, 1.4e-45, 3.4028234663852886e38, NaN, Infinity, -Infinity]);
        set(w, x);
        const path = `${dir}/model.safetensors`;
        await saveStateDictFile(a, path, { epoch: "3" });
        // The file holds exactly the state_dict's names with their shapes, as F32 (its own
        // order is the writer's business: safetensors headers are JSON objects).
        const file = await readSafetensors(path);
        const want = [...a.stateDict()].map(([n, t]) => `${n} [${t.shape}] F32`).sort();
        const got = [...file.tensors].map(([n, t]) => `${n} [${t.shape}] ${t.dtype}`).sort();
        if (got.join("\n") !== want.join("\n")) {
          throw new Error(`file contents differ from the state_dict:\n${got.join("\n")}`);
        }
        if (file.metadata.epoch !== "3") {
          throw new Error(`metadata ${JSON.stringify(file.metadata)}`);
        }
        const buffers = [...a.namedBuffers()].map(([n]) => n);
        if (
          buffers.join() !==
            "Transformer.positional_encoding.inv_freq,Transformer.positional_encoding_decoder.pe"
        ) {
          throw new Error(`buffers ${buffers}`);
        }
        // A scrambled model: everything must come from the file.
        const b = fresh(be, opts, 2, true);
        const before = differing(bits(a), bits(b));
        if (before.length !== [...a.stateDict()].length) {
          throw new Error(
            `the two models already agree on ${[...a.stateDict()].length - before.length} tensors`,
          );
        }
        await loadStateDictFile(b, path);
        const diff = differing(bits(a), bits(b));
        if (diff.length) throw new Error(`not bitwise after the round trip: ${diff.join(", ")}`);
        a.free();
        b.free();
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("state_dict S2S: a bad checkpoint gives ONE error listing every problem, and writes nothing", async () => {
  await withBackend(1, (be) => {
    const opts = FAMILIES[0][1];
    const a = fresh(be, opts, 1), b = fresh(be, opts, 2, true);
    const bad = stateDictTensors(a);
    const f32 = (shape: number[]): SafeTensor => ({
      dtype: "F32",
      shape,
      data: new Float32Array(shape.reduce((p, q) => p * q, 1)),
    });
    bad.delete("seq_lin.w.bias"); // missing parameter
    bad.delete("Transformer.positional_encoding_decoder.pe"); // missing buffer
    bad.set("Transformer.decoder.layers.0.self_attn.att.in_proj_weight", f32([16, 48])); // (48, 16)
    bad.set("ctc_lin.w.bias", { dtype: "F64", shape: [12], data: new Float64Array(12) });
    bad.set("Transformer.decoder.layers.0.extra", f32([3])); // unexpected
    const snapshot = bits(b);
    let err: unknown = null;
    try {
      loadStateDict(b, { tensors: bad, metadata: {} }, "bad.safetensors");
    } catch (e) {
      err = e;
    }
    if (!(err instanceof StateDictError)) throw new Error(`expected a StateDictError, got ${err}`);
    const expected = [
      'missing: "seq_lin.w.bias"',
      'missing: "Transformer.positional_encoding_decoder.pe"',
      'wrong shape: "Transformer.decoder.layers.0.self_attn.att.in_proj_weight" is [16,48], expected [48,16]',
      'wrong dtype: "ctc_lin.w.bias" is F64',
      'unexpected: "Transformer.decoder.layers.0.extra"',
    ];
    const missingFromMessage = expected.filter((p) => !err.message.includes(p));
    if (err.problems.length !== expected.length || missingFromMessage.length) {
      throw new Error(
        `want exactly ${expected.length} problems (lacking: ${missingFromMessage.join("; ")}):\n` +
          err.message,
      );
    }
    if (!err.message.startsWith("bad.safetensors")) throw new Error("the file is not named");
    const touched = differing(snapshot, bits(b));
    if (touched.length) throw new Error(`a failed load wrote ${touched.join(", ")}`);
    a.free();
    b.free();
  });
});

Deno.test("state_dict S2S: the index-prefixed form (0 CNN, 1 Transformer, 2 seq_lin, 3 ctc_lin) loads", async () => {
  await withBackend(1, (be) => {
    for (const [name, opts] of FAMILIES.slice(0, 3)) {
      const a = fresh(be, opts, 1), b = fresh(be, opts, 2, true);
      const prefix: Record<string, string> = {
        CNN: "0",
        Transformer: "1",
        seq_lin: "2",
        ctc_lin: "3",
      };
      const named = stateDictTensors(a);
      const indexed = new Map(
        [...named].map(([n, t]) => [n.replace(/^[^.]+/, (p) => prefix[p]), t]),
      );
      if (![...indexed.keys()].every((n) => /^[0-3]\./.test(n))) throw new Error("renaming failed");
      // seq_lin and ctc_lin have the same shapes: only their values tell 2. from 3.
      loadStateDict(b, { tensors: indexed, metadata: {} }, "model.ckpt");
      const diff = differing(bits(a), bits(b));
      if (diff.length) throw new Error(`${name}: index form loads differently: ${diff.join(", ")}`);
      // Half renamed: not the index form, so the index keys are unexpected and the rest missing.
      const half = new Map(
        [...named].map(([n, t]) => [n.startsWith("CNN.") ? `0${n.slice(3)}` : n, t]),
      );
      try {
        loadStateDict(b, { tensors: half, metadata: {} }, "half.ckpt");
        throw new Error(`${name}: a half-renamed file loaded`);
      } catch (e) {
        const cnn = [...a.stateDict()].filter(([n]) => n.startsWith("CNN.")).length;
        if (!(e instanceof StateDictError) || e.problems.length !== 2 * cnn) throw e;
      }
      a.free();
      b.free();
    }
  });
});
