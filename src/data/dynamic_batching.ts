/**
 * Dynamic batching as the recipe's SpeechBrain DynamicBatchSampler does it (CONMAMBA_SPEC.md
 * §8.5, gotcha G6): 200 buckets whose boundaries are log-normal quantiles scaled so the largest is
 * max_batch_length seconds; a bucket's batch holds floor(M / boundary) utterances (at most
 * max_batch_ex); utterances fill buckets in (shuffled) order, a full bucket becomes a batch, the
 * leftovers follow, and the list of batches is permuted. Durations are those of the un-perturbed
 * audio. The permutations come from our own seeded RNG (torch's cannot be reproduced), with the
 * recipe's seeds (42 + epoch) and its epoch behaviour.
 */
import { permutation } from "../util/rng.ts";

export { permutation };

/** Standard normal CDF from erf's Maclaurin series (|x| <= 2.6 here: 60 terms reach 1e-16). */
export function normalCdf(x: number): number {
  const z = x / Math.SQRT2;
  if (Math.abs(z) > 3.5) return z > 0 ? 1 - normalTail(x) : normalTail(-x);
  let term = z, sum = z;
  for (let n = 1; n < 80; n++) {
    term *= (-z * z) / n;
    sum += term / (2 * n + 1);
  }
  return 0.5 * (1 + (2 / Math.sqrt(Math.PI)) * sum);
}

/** Upper tail Q(x) for x > 4.9, by the continued fraction of erfc (Lentz). */
function normalTail(x: number): number {
  const z = x / Math.SQRT2;
  let f = z, c = z, d = 0;
  for (let n = 1; n < 200; n++) {
    const a = n / 2;
    d = z + a * d;
    c = z + a / c;
    d = 1 / d;
    f *= c * d;
  }
  return (0.5 * Math.exp(-z * z)) / (f * Math.sqrt(Math.PI));
}

/** Phi^-1(p) by bisection on normalCdf (monotone; 200 halvings reach the float64 floor). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p = ${p} is not in (0, 1)`);
  let lo = -10, hi = 10;
  for (let i = 0; i < 200 && hi - lo > 0; i++) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export interface BucketPlan {
  /** Upper duration of each bucket, seconds, ascending; the last equals maxBatchLength. */
  boundaries: number[];
  /** Utterances per batch for each bucket, plus one overflow bucket (size 1) at the end. */
  batchSizes: number[];
}

export function bucketPlan(
  maxBatchLength: number,
  numBuckets: number,
  maxBatchEx: number,
): BucketPlan {
  const Q = numBuckets;
  const lo = 1 / (Q + 1), hi = Q / (Q + 1);
  const q = Array.from(
    { length: Q },
    (_, i) => Math.exp(normalQuantile(lo + (i * (hi - lo)) / (Q - 1))),
  );
  const boundaries = q.map((v) => (v * maxBatchLength) / q[Q - 1]);
  const batchSizes = boundaries.map((b) =>
    Math.min(maxBatchEx, Math.max(1, Math.floor(maxBatchLength / b)))
  );
  batchSizes.push(1);
  return { boundaries, batchSizes };
}

/** The bucket of a duration: the first boundary >= it; longer than all: the overflow bucket. */
export function bucketOf(plan: BucketPlan, duration: number): number {
  let lo = 0, hi = plan.boundaries.length; // left searchsorted
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (plan.boundaries[mid] < duration) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface SamplerOptions {
  maxBatchLength: number; // seconds of (un-perturbed) audio per batch
  numBuckets: number;
  maxBatchEx: number;
  shuffle: boolean;
  batchOrdering: "random" | "ascending" | "descending";
  /**
   * true: reseed with 42 + epoch every epoch (the recipe under DDP). false: the single-process
   * recipe, which never tells the sampler the epoch: epoch 1 takes the batches in order P, every
   * later epoch in order P∘P (gotcha G6).
   */
  reseedEachEpoch: boolean;
}

/** Batches (lists of utterance indices) of one epoch, epochs numbered from 1. */
export function epochBatches(
  durations: readonly number[],
  o: SamplerOptions,
  epoch: number,
): number[][] {
  const seed = 42 + (o.reseedEachEpoch ? epoch : 0);
  const plan = bucketPlan(o.maxBatchLength, o.numBuckets, o.maxBatchEx);
  const order = o.shuffle ? permutation(durations.length, seed) : durations.map((_, i) => i);
  const buckets: number[][] = plan.batchSizes.map(() => []);
  const batches: number[][] = [];
  for (const idx of order) {
    const b = bucketOf(plan, durations[idx]);
    buckets[b].push(idx);
    if (buckets[b].length >= plan.batchSizes[b] || buckets[b].length >= o.maxBatchEx) {
      batches.push(buckets[b]);
      buckets[b] = [];
    }
  }
  for (const b of buckets) if (b.length > 0) batches.push(b); // drop_last False
  if (o.batchOrdering === "random") {
    const P = permutation(batches.length, seed);
    let out = P.map((i) => batches[i]);
    if (!o.reseedEachEpoch && epoch > 1) out = P.map((i) => out[i]); // P applied twice
    return out;
  }
  const total = (b: number[]) => Math.max(...b.map((i) => durations[i]));
  return batches.sort((x, y) =>
    o.batchOrdering === "ascending" ? total(x) - total(y) : total(y) - total(x)
  );
}
