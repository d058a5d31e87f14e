/**
 * Training and validation batches from the fbank store (CONMAMBA_SPEC.md §8.4-8.7): the recipe's
 * dynamic batches over un-perturbed durations, one speed copy drawn per utterance per epoch,
 * features zero-padded to the longest, relative lengths, and token targets with bos/eos.
 * Normalisation and SpecAugment act on these batches in the train step.
 */
import type { FeatureStore } from "../data/feature_store.ts";
import { epochBatches, type SamplerOptions } from "../data/dynamic_batching.ts";

export interface Utterance {
  id: string;
  split: string;
  duration: number; // seconds, un-perturbed (the CSV's)
  tokens: number[]; // token ids of the transcript
}

export interface Batch {
  ids: string[];
  speeds: number[];
  B: number;
  T: number; // padded frames
  F: number;
  feats: Float32Array; // (B, T, F), zero padding
  frames: number[]; // true frames per utterance
  relLens: number[]; // frames / T
  tokens: Int32Array; // (B, U) ids, zero-padded (CTC targets; S2S `tokens`)
  tokenLens: number[];
  tokensBos: Int32Array; // (B, U + 1): [bos] + ids
  tokensEos: Int32Array; // (B, U + 1): ids + [eos]
}

/** A uniform draw from (seed, epoch, index): which speed copy an utterance gets this epoch. */
export function speedFor(
  speeds: readonly number[],
  seed: number,
  epoch: number,
  index: number,
): number {
  let h = (seed ^ Math.imul(epoch, 0x9e3779b1) ^ Math.imul(index, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h = (h ^ (h >>> 16)) >>> 0;
  return speeds[h % speeds.length];
}

export async function makeBatch(
  store: FeatureStore,
  utts: readonly Utterance[],
  speeds: readonly number[],
  bos: number,
  eos: number,
): Promise<Batch> {
  const feats = await Promise.all(utts.map((u, i) => store.read(u.split, speeds[i], u.id)));
  const F = store.nMels;
  const frames = feats.map((f) => f.length / F);
  const T = Math.max(...frames);
  const B = utts.length;
  const x = new Float32Array(B * T * F);
  feats.forEach((f, b) => x.set(f, b * T * F));
  return {
    ids: utts.map((u) => u.id),
    speeds: [...speeds],
    B,
    T,
    F,
    feats: x,
    frames,
    relLens: frames.map((n) => n / T),
    ...targets(utts.map((u) => u.tokens), bos, eos),
  };
}

/**
 * The token targets of a batch: `tokens` (B, U) zero-padded, `tokensBos` (B, U + 1) = [bos] + ids
 * and `tokensEos` (B, U + 1) = ids + [eos], U the longest utterance's ids.
 */
export function targets(
  lists: readonly (readonly number[])[],
  bos: number,
  eos: number,
): Pick<Batch, "tokens" | "tokenLens" | "tokensBos" | "tokensEos"> {
  const B = lists.length, U = Math.max(0, ...lists.map((l) => l.length));
  const tokens = new Int32Array(B * U), tokensBos = new Int32Array(B * (U + 1));
  const tokensEos = new Int32Array(B * (U + 1));
  lists.forEach((l, b) => {
    tokens.set(l, b * U);
    tokensBos[b * (U + 1)] = bos;
    tokensBos.set(l, b * (U + 1) + 1);
    tokensEos.set(l, b * (U + 1));
    tokensEos[b * (U + 1) + l.length] = eos;
  });
  return { tokens, tokenLens: lists.map((l) => l.length), tokensBos, tokensEos };
}

/**
 * The batches of one training epoch, in the sampler's order. The next batch's features are read
 * while the consumer computes on the current one (reads are asynchronous file I/O that proceeds
 * while the kernels run), so the backend does not wait on the disk.
 */
export async function* trainEpoch(
  store: FeatureStore,
  utts: readonly Utterance[],
  sampler: SamplerOptions,
  o: {
    epoch: number;
    seed: number;
    speeds: readonly number[];
    bos: number;
    eos: number;
    /** Batches to leave out at the start (a run resumed inside the epoch); nothing is read for them. */
    skip?: number;
  },
): AsyncGenerator<Batch> {
  const plan = epochBatches(utts.map((u) => u.duration), sampler, o.epoch).slice(o.skip ?? 0);
  const load = (idx: number[]) => {
    const speeds = idx.map((i) => speedFor(o.speeds, o.seed, o.epoch, i));
    const p = makeBatch(store, idx.map((i) => utts[i]), speeds, o.bos, o.eos);
    p.catch(() => {}); // an abandoned prefetch must not become an unhandled rejection
    return p;
  };
  let next = plan.length > 0 ? load(plan[0]) : null;
  for (let k = 0; k < plan.length; k++) {
    const batch = await next!;
    next = k + 1 < plan.length ? load(plan[k + 1]) : null;
    yield batch;
  }
}
