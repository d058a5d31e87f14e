/** Dynamic batching against the spec's worked examples (§8.5) and its epoch behaviour (G6). */
import assert from "node:assert/strict";
import {
  bucketOf,
  bucketPlan,
  epochBatches,
  normalCdf,
  normalQuantile,
  type SamplerOptions,
} from "../../src/data/dynamic_batching.ts";

Deno.test("normal CDF and quantile agree with known values to 1e-12", () => {
  assert.ok(Math.abs(normalCdf(0) - 0.5) < 1e-15);
  assert.ok(Math.abs(normalCdf(1.959963984540054) - 0.975) < 1e-12);
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959963984540054) < 1e-12);
  assert.ok(Math.abs(normalQuantile(1 / 201) + 2.577553463733344) < 1e-12); // scipy norm.ppf
  for (const p of [0.01, 0.2, 0.5, 0.77, 0.995]) {
    assert.ok(Math.abs(normalCdf(normalQuantile(p)) - p) < 1e-14, `p ${p}`);
  }
});

/** Utterances per batch for an utterance of `seconds`. */
function perBatch(M: number, maxEx: number, seconds: number): number {
  const plan = bucketPlan(M, 200, maxEx);
  return plan.batchSizes[bucketOf(plan, seconds)];
}

Deno.test("batch sizes of the spec's examples: M 900 / 500 / 850 / 100", () => {
  const plan900 = bucketPlan(900, 200, 128);
  // scipy: lognorm.ppf(linspace(1/201, 200/201, 200), 1), scaled: 5.192876776741299 s
  assert.ok(Math.abs(plan900.boundaries[0] - 5.192876776741299) < 1e-9, `${plan900.boundaries[0]}`);
  assert.equal(plan900.boundaries.at(-1), 900);
  assert.equal(perBatch(900, 128, 5), 128);
  assert.equal(perBatch(900, 128, 10), 86);
  assert.equal(perBatch(900, 128, 15), 59);
  assert.equal(perBatch(900, 128, 20), 43);
  assert.equal(perBatch(900, 128, 35), 25);
  const plan500 = bucketPlan(500, 200, 256);
  assert.ok(Math.abs(plan500.boundaries[0] - 2.8849315426340554) < 1e-9);
  assert.equal(perBatch(500, 256, 2.5), 173);
  assert.equal(perBatch(500, 256, 15), 32);
  assert.equal(perBatch(500, 256, 35), 14);
  assert.equal(perBatch(850, 128, 15), 55);
  assert.equal(perBatch(850, 128, 35), 24);
  assert.equal(perBatch(100, 128, 5), 19);
  assert.equal(perBatch(100, 128, 15), 6);
  // Longer than the last boundary: the overflow bucket, one utterance per batch.
  assert.equal(perBatch(100, 128, 150), 1);
});

const durations = Array.from({ length: 3000 }, (_, i) => 1 + ((i * 7919) % 3400) / 100); // 1-35 s
const base: SamplerOptions = {
  maxBatchLength: 900,
  numBuckets: 200,
  maxBatchEx: 128,
  shuffle: true,
  batchOrdering: "random",
  reseedEachEpoch: false,
};

Deno.test("every utterance is in exactly one batch; no batch over its bucket's size", () => {
  const batches = epochBatches(durations, base, 1);
  const seen = batches.flat().sort((a, b) => a - b);
  assert.deepEqual(seen, durations.map((_, i) => i));
  const plan = bucketPlan(900, 200, 128);
  for (const b of batches) {
    const bucket = bucketOf(plan, durations[b[0]]);
    assert.ok(b.every((i) => bucketOf(plan, durations[i]) === bucket));
    assert.ok(b.length <= plan.batchSizes[bucket]);
    // About max_batch_length seconds of audio, never wildly over it.
    assert.ok(b.reduce((s, i) => s + durations[i], 0) <= 900 * 1.05);
  }
});

Deno.test("single process (G6): same batches every epoch; epoch 1 in order P, later epochs P∘P", () => {
  const e1 = epochBatches(durations, base, 1), e2 = epochBatches(durations, base, 2);
  const e3 = epochBatches(durations, base, 3);
  const key = (b: number[][]) => b.map((x) => x.join(",")).sort();
  assert.deepEqual(key(e1), key(e2));
  assert.notDeepEqual(e1, e2);
  assert.deepEqual(e2, e3);
});

Deno.test("DDP-style reseeding: batch contents change per epoch when shuffled, stay when not", () => {
  const o = { ...base, reseedEachEpoch: true };
  const key = (b: number[][]) => b.map((x) => x.join(",")).sort();
  assert.notDeepEqual(key(epochBatches(durations, o, 1)), key(epochBatches(durations, o, 2)));
  const fixed = { ...o, shuffle: false }; // the CTC recipes: file order, only the order moves
  const a = epochBatches(durations, fixed, 1), b = epochBatches(durations, fixed, 2);
  assert.deepEqual(key(a), key(b));
  assert.notDeepEqual(a, b);
});
