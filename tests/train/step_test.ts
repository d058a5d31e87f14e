/**
 * The CTC training step on a tiny model and a random batch: the loss falls over a few updates,
 * two runs from the same seed are bitwise identical (weights and optimiser state, with dropout and
 * SpecAugment active), accumulation updates every G micro-batches, and too many non-finite losses
 * stop the run.
 */
import assert from "node:assert/strict";
import { InputNormalization } from "../../src/audio/input_normalization.ts";
import { ctcGreedy } from "../../src/decode/ctc_greedy.ts";
import { absoluteLengths, ConMambaCtc } from "../../src/nn/ctc_model.ts";
import { initialize } from "../../src/nn/init.ts";
import { evalContext } from "../../src/nn/module.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import type { Batch } from "../../src/train/batches.ts";
import { AsrTrainer, NonFiniteLossError, type StepSettings } from "../../src/train/step.ts";

const F = 80, V = 8;

function randomBatch(seed: number): Batch {
  let a = seed >>> 0;
  const rnd = () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 4294967296;
  };
  const frames = [48, 40], T = 48, B = 2, U = 5;
  const feats = new Float32Array(B * T * F);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < frames[b] * F; i++) feats[b * T * F + i] = 10 * rnd() - 5 + (i % F) * 0.1;
  }
  const tokenLens = [5, 4];
  const tokens = new Int32Array(B * U);
  for (let b = 0; b < B; b++) {
    for (let u = 0; u < tokenLens[b]; u++) tokens[b * U + u] = 3 + Math.floor(rnd() * (V - 3));
  }
  return {
    ids: ["a", "b"],
    speeds: [100, 100],
    B,
    T,
    F,
    feats,
    frames,
    relLens: frames.map((n) => n / T),
    tokens,
    tokenLens,
    tokensBos: new Int32Array(B * (U + 1)),
    tokensEos: new Int32Array(B * (U + 1)),
  };
}

const copy = (b: Batch): Batch => ({ ...b, feats: b.feats.slice() });

function settings(o: Partial<StepSettings> = {}): StepSettings {
  const drop = (lo: number, hi: number, n: number) => ({
    lengthLow: lo,
    lengthHigh: hi,
    countLow: n,
    countHigh: n,
  });
  return {
    seed: 7,
    gradAccumulation: 1,
    maxGradNorm: 5,
    optimizer: "AdamW",
    lr: 3e-3,
    betas: [0.9, 0.98],
    eps: 1e-9,
    weightDecay: 5e-4,
    warmup: 1,
    blank: 0,
    ctcWeight: null,
    labelSmoothing: 0,
    specAugment: { timeDrop: drop(2, 4, 1), freqDrop: drop(2, 5, 1), timeWarpWindow: null },
    ...o,
  };
}

async function train(
  steps: number,
  o: Partial<StepSettings> = {},
  flatState = true,
  epochEndAfter = -1,
): Promise<
  {
    losses: number[];
    weights: Float32Array[];
    moments: Float32Array[];
    updates: number;
    norms: number[];
    calls: Map<string, number>;
  }
> {
  const be = await WasmBackend.create({ threads: 2 });
  const calls = new Map<string, number>(), run = be.run.bind(be);
  be.run = (name, p, a) => (calls.set(name, (calls.get(name) ?? 0) + 1), run(name, p, a));
  try {
    const model = new ConMambaCtc(be, {
      dModel: 16,
      dFfn: 32,
      numEncoderLayers: 1,
      vocab: V,
      cnnChannels: [4, 4],
    });
    initialize(model, 11);
    const tr = new AsrTrainer(model, new InputNormalization(F, 4), settings(o), { flatState });
    const batch = randomBatch(3);
    const losses: number[] = [], norms: number[] = [];
    for (let i = 0; i < steps; i++) {
      const log = tr.step(copy(batch), 1);
      losses.push(log.loss);
      if (log.update) norms.push(log.update.gradNorm);
      if (i === epochEndAfter) tr.endEpoch(); // a discarded accumulation cycle zeroes gradients
    }
    const weights = model.parameters().map((p) => p.toArray());
    const moments = [...tr.optimizerTensors().values()].map((t) => t.data as Float32Array);
    const updates = tr.counters.updates;
    tr.free();
    model.free();
    return { losses, weights, moments, updates, norms, calls };
  } finally {
    be.close();
  }
}

Deno.test("train step: the CTC loss falls on a repeated batch", async () => {
  const none = { lengthLow: 1, lengthHigh: 2, countLow: 0, countHigh: 0 };
  const r = await train(12, {
    specAugment: { timeDrop: none, freqDrop: none, timeWarpWindow: null },
  });
  console.log(`losses: ${r.losses.map((l) => l.toFixed(2)).join(" ")}`);
  assert.ok(r.losses.every(Number.isFinite));
  const last = Math.min(...r.losses.slice(-3));
  assert.ok(last < 0.7 * r.losses[0], `loss ${r.losses[0]} -> ${last}`);
  assert.equal(r.updates, 12);
});

Deno.test("train step: two runs from the same seed are bitwise identical", async () => {
  const a = await train(3), b = await train(3);
  assert.deepEqual(a.losses, b.losses);
  assert.deepEqual(a.weights, b.weights);
  assert.deepEqual(a.moments, b.moments);
  const c = await train(3, { seed: 8 }); // another seed: other dropout masks and SpecAugment
  assert.notDeepEqual(a.losses.slice(1), c.losses.slice(1));
});

Deno.test("train step: flat parameter, gradient and moment buffers give the per-parameter bits", async () => {
  // Clipping active (max norm 0.05), accumulation over 2 micro-batches, an epoch end between.
  const o = { maxGradNorm: 0.05, gradAccumulation: 2 };
  const flat = await train(7, o, true, 2), each = await train(7, o, false, 2);
  assert.deepEqual(flat.losses, each.losses);
  assert.deepEqual(flat.norms, each.norms);
  assert.ok(flat.norms.every((n) => n > 0.05), `clipping inactive: ${flat.norms}`);
  assert.deepEqual(flat.weights, each.weights);
  assert.deepEqual(flat.moments, each.moments);
  // One norm call, one Adam update and one fill per update (or epoch end) instead of one each
  // per parameter.
  const params = flat.weights.length;
  assert.equal(each.calls.get("sum_squares_blocks"), flat.updates * params);
  assert.equal(flat.calls.get("sum_squares_blocks"), flat.updates);
  assert.equal(each.calls.get("adam_step"), flat.updates * params);
  assert.equal(flat.calls.get("adam_step"), flat.updates);
  assert.ok((each.calls.get("fill") ?? 0) - (flat.calls.get("fill") ?? 0) >= params);
});

Deno.test("train step: gradient accumulation updates every G micro-batches", async () => {
  const r = await train(5, { gradAccumulation: 2 });
  assert.equal(r.updates, 2);
});

Deno.test("train step: more than 3 non-finite losses in an epoch stop with a clear error", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const model = new ConMambaCtc(be, {
      dModel: 16,
      dFfn: 32,
      numEncoderLayers: 1,
      vocab: V,
      cnnChannels: [4, 4],
    });
    initialize(model, 11);
    const tr = new AsrTrainer(model, new InputNormalization(F, 4), settings());
    const bad = randomBatch(3);
    bad.feats[5] = NaN;
    for (let i = 0; i < 3; i++) assert.equal(tr.step(copy(bad), 1).finite, false);
    assert.throws(() => tr.step(copy(bad), 1), NonFiniteLossError);
    tr.endEpoch();
    assert.equal(tr.counters.nonFinite, 0);
    tr.free();
    model.free();
  } finally {
    be.close();
  }
});

Deno.test("train step: overfitting one batch, the loss falls far and greedy CTC decodes the targets", async () => {
  const be = await WasmBackend.create({ threads: 2 });
  try {
    const model = new ConMambaCtc(be, {
      dModel: 16,
      dFfn: 32,
      numEncoderLayers: 1,
      vocab: V,
      cnnChannels: [4, 4],
    });
    initialize(model, 11);
    const none = { lengthLow: 1, lengthHigh: 2, countLow: 0, countHigh: 0 };
    const norm = new InputNormalization(F, 4);
    const tr = new AsrTrainer(
      model,
      norm,
      settings({
        lr: 1e-2,
        weightDecay: 0,
        specAugment: { timeDrop: none, freqDrop: none, timeWarpWindow: null },
      }),
    );
    const batch = randomBatch(3);
    const first = tr.step(copy(batch), 1).loss;
    let last = first;
    for (let i = 0; i < 120; i++) last = tr.step(copy(batch), 1).loss;
    assert.ok(last < 0.1 * first, `loss ${first} -> ${last}`);
    const x = batch.feats.slice();
    norm.apply(x, batch.B, batch.T, batch.frames, 1, false);
    const tape = new Tape();
    const out = tape.noGrad(() =>
      model.forward(evalContext(tape), Tensor.from(be, [batch.B, batch.T, F], x))
    );
    const [, frames] = out.logProbs.shape, lp = out.logProbs.toArray();
    const lens = absoluteLengths(batch.relLens.map(Math.fround), frames);
    const U = batch.tokens.length / batch.B;
    for (let b = 0; b < batch.B; b++) {
      const hyp = ctcGreedy(lp.subarray(b * frames * V, (b + 1) * frames * V), V, lens[b]);
      assert.deepEqual(hyp, [...batch.tokens.subarray(b * U, b * U + batch.tokenLens[b])]);
    }
    be.resetStep();
    tr.free();
    model.free();
  } finally {
    be.close();
  }
});
