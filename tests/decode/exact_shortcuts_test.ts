/**
 * The joint search's shortcuts change no bit: the CTC prefix scorer's all-token pass against
 * `extend` token by token, top-k selection against a stable sort, logAddExp against the textbook
 * formula, the decoder's next-token logits against the full teacher-forced head.
 */
import assert from "node:assert/strict";
import { loadExperiment } from "../../src/config/load.ts";
import { CtcPrefixScorer, type PrefixState } from "../../src/decode/ctc_prefix_score.ts";
import { topK } from "../../src/decode/joint_beam_search.ts";
import { logSoftmaxRow } from "../../src/decode/s2s_search.ts";
import { initialize } from "../../src/nn/init.ts";
import { buildModel } from "../../src/nn/model_config.ts";
import { evalContext } from "../../src/nn/module.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { logAddExp } from "../../src/util/math.ts";

function rng(seed: number) {
  let a = seed >>> 0;
  return () => ((a = (a * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

Deno.test("scoreAll gives extend(g, c).score for every token, bit for bit", () => {
  for (let seed = 1; seed <= 25; seed++) {
    const r = rng(seed), V = 4 + (seed % 9), T = 6 + (seed % 17);
    const X = new Float32Array(T * V);
    for (let t = 0; t < T; t++) {
      X.set(logSoftmaxRow(Array.from({ length: V }, () => 8 * r()), 1), t * V);
    }
    const s = new CtcPrefixScorer(X, T, V, seed % 2 ? T : T - 3, 0, 2);
    let g: PrefixState = s.initial(1);
    const out = new Float64Array(V);
    for (let step = 0; step < T - 1; step++) {
      s.scoreAll(g, out);
      for (let c = 0; c < V; c++) {
        assert.ok(Object.is(out[c], s.extend(g, c).score), `seed ${seed} step ${step} c ${c}`);
      }
      // Next prefix: a repeat now and then, never blank or eos.
      const c = step % 4 === 3 && g.last >= 3 ? g.last : 3 + Math.floor(r() * (V - 3));
      g = s.extend(g, c).state;
    }
  }
});

Deno.test("topK: the k largest, ties in index order, as a stable sort then slice", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const r = rng(seed), n = 1 + Math.floor(r() * 60), k = 1 + Math.floor(r() * 12);
    const x = Float64Array.from({ length: n }, () => Math.round(r() * 6) - (r() < 0.1 ? 1e20 : 0));
    const want = [...x.keys()].sort((a, b) => x[b] - x[a]).slice(0, k);
    assert.deepEqual(topK(x, k), want, `seed ${seed}`);
  }
});

Deno.test("logAddExp equals max + log(exp(a - max) + exp(b - max)) bit for bit", () => {
  const textbook = (a: number, b: number) => {
    if (a === -Infinity) return b;
    if (b === -Infinity) return a;
    const m = Math.max(a, b);
    return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
  };
  const r = rng(3);
  const special = [-Infinity, -1e20, 0, -0, -745, -746, -747];
  for (let i = 0; i < 200_000; i++) {
    const a = (r() - 0.7) * 10 ** (4 * r()), b = (r() - 0.7) * 10 ** (4 * r());
    const c = special[i % special.length];
    for (const [x, y] of [[a, b], [a, c], [c, b], [c, a + c], [a, a]]) {
      assert.ok(Object.is(logAddExp(x, y), textbook(x, y)), `${x}, ${y}`);
    }
  }
});

Deno.test("nextTokenLogits: decode's seqLogits at the last position, bit for bit (both decoders)", async () => {
  const be = await WasmBackend.create({ threads: 2 });
  try {
    for (const decoder_module of ["transformer", "mamba"]) {
      const model = buildModel(be, loadExperiment("tiny", { decoder_module }));
      initialize(model, 5);
      const r = rng(7), n = 3, u = 6, T = 9, d = model.options.dModel, V = model.options.vocab;
      const mem = Float32Array.from({ length: n * T * d }, () => r() - 0.5);
      const tokens = Array.from({ length: n * u }, (_, i) => i % u === 0 ? 1 : 3 + (i * 7) % 50);
      const ctx = evalContext(new Tape());
      const [full, last] = ctx.tape.noGrad(() => {
        const enc = () => Tensor.from(be, [n, T, d], mem);
        const lens = [T, T - 2, T];
        return [
          model.decode(ctx, tokens, [n, u], enc(), lens).seqLogits.toArray(),
          model.nextTokenLogits(ctx, tokens, [n, u], enc(), lens).toArray(),
        ];
      });
      be.resetStep();
      for (let i = 0; i < n; i++) {
        assert.deepEqual(
          last.subarray(i * V, (i + 1) * V),
          full.subarray(((i + 1) * u - 1) * V, (i + 1) * u * V),
          `${decoder_module}, row ${i}`,
        );
      }
      model.free();
    }
  } finally {
    be.close();
  }
});
