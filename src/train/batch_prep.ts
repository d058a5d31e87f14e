/**
 * A training batch's preparation on the host: InputNormalization (statistics updated, then
 * applied) and SpecAugment, in place on its features. AsrTrainer.step does it itself when given a
 * raw batch; `BatchPrep` does it in a worker one batch ahead, so that on a GPU the preparation of
 * the next batch (90-170 ms for a 500 s conmamba_large batch on one core, `deno task bench host`)
 * runs while the device computes this one instead of leaving it idle, and spreads the parts that
 * are per utterance (statistics, normalisation, time warp) over helper workers. Same code, same
 * order, same seeds: the features and the normaliser's statistics are bitwise those of the
 * in-step path (tests/train/batch_prep_test.ts).
 */
import { InputNormalization, type NormalizerState } from "../audio/input_normalization.ts";
import {
  applyDrop,
  planSpecAugment,
  Rng,
  specAugment,
  type SpecAugmentSettings,
  type WarpPlan,
} from "../audio/spec_augment.ts";
import type { Batch } from "./batches.ts";
import { mixSeed } from "./seeds.ts";

/** What one preparation needs besides the normaliser: where the batch sits in the run. */
export interface PrepSettings {
  seed: number;
  specAugment: SpecAugmentSettings;
}

/** One batch to prepare: its features (B, T, F), in place, and where it sits in the run. */
export interface PrepJob {
  feats: Float32Array;
  shape: { B: number; T: number; F: number; frames: readonly number[] };
  epoch: number;
  micro: number;
}

function checkShape(norm: InputNormalization, { feats, shape }: PrepJob): void {
  const { B, T, F, frames } = shape;
  if (F !== norm.nMels || feats.length !== B * T * F || frames.length !== B) {
    throw new RangeError(
      `a batch of ${feats.length} feature values, B ${B} x T ${T} x F ${F}, ${frames.length} ` +
        `lengths, for a normaliser of ${norm.nMels} features`,
    );
  }
}

/** Normalises (training: statistics updated first) and augments the job's features in place. */
export function prepareFeatures(norm: InputNormalization, job: PrepJob, s: PrepSettings): void {
  const { feats, shape: { B, T, F, frames } } = job;
  checkShape(norm, job);
  norm.apply(feats, B, T, frames, job.epoch, true);
  specAugment({ data: feats, B, T, F }, s.specAugment, new Rng(mixSeed(s.seed, job.micro, 1)));
}

/** One range of utterances [b0, b1) of a batch in shared memory, for a helper worker. */
export type HelperTask =
  & { x: SharedArrayBuffer; B: number; T: number; F: number; b0: number; b1: number }
  & (
    | { op: "stats"; frames: number[]; m: SharedArrayBuffer; q: SharedArrayBuffer }
    | { op: "normalize"; state: NormalizerState }
    | { op: "warp"; plan: WarpPlan }
  );

/** Shared memory for the batch, kept from one batch to the next (a fresh one is zeroed: slow). */
let shared: SharedArrayBuffer | null = null;

function sharedCopy(feats: Float32Array): Float32Array {
  if (!shared || shared.byteLength < feats.byteLength) {
    shared = new SharedArrayBuffer(feats.byteLength);
  }
  const x = new Float32Array(shared, 0, feats.length);
  x.set(feats);
  return x;
}

/**
 * prepareFeatures with the per-utterance parts (statistics, normalisation, time warp) spread over
 * helper workers, the rest (the statistics' update, the augmentation's draws, its two batch sums
 * in index order) here: the same operations in the same order per value, so the same bits.
 */
export async function prepareFeaturesParallel(
  norm: InputNormalization,
  job: PrepJob,
  s: PrepSettings,
  helpers: readonly Worker[],
): Promise<void> {
  const { feats, epoch, micro, shape: { B, T, F, frames } } = job;
  checkShape(norm, job);
  const x = sharedCopy(feats), xs = x.buffer as SharedArrayBuffer;
  const parts = Math.min(helpers.length, B);
  const run = (task: (b0: number, b1: number) => HelperTask) =>
    Promise.all(Array.from({ length: parts }, (_, k) => {
      const b0 = Math.floor((k * B) / parts), b1 = Math.floor(((k + 1) * B) / parts);
      return new Promise<void>((resolve, reject) => {
        const w = helpers[k];
        w.onmessage = (e) => e.data.error ? reject(new Error(e.data.error)) : resolve();
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(e.message));
        };
        w.postMessage(task(b0, b1));
      });
    }));
  const base = { x: xs, B, T, F };
  const ms = new SharedArrayBuffer(8 * B * F), qs = new SharedArrayBuffer(8 * B * F);
  await run((b0, b1) => ({ ...base, b0, b1, op: "stats", frames: [...frames], m: ms, q: qs }));
  norm.update(new Float64Array(ms), new Float64Array(qs), B, epoch);
  const state = norm.state();
  await run((b0, b1) => ({ ...base, b0, b1, op: "normalize", state }));
  const plan = planSpecAugment(B, T, F, s.specAugment, new Rng(mixSeed(s.seed, micro, 1)));
  if (plan.time) applyDrop({ data: x, B, T, F }, plan.time);
  if (plan.freq) applyDrop({ data: x, B, T, F }, plan.freq);
  const warp = plan.warp;
  if (warp) await run((b0, b1) => ({ ...base, b0, b1, op: "warp", plan: warp }));
  feats.set(x);
}

/** A batch prepared ahead, with the normaliser's state right after its update. */
export interface PreparedBatch {
  batch: Batch;
  normalizer: NormalizerState;
}

/**
 * Prepares batches in order in one worker that owns a copy of the normaliser. `ahead` keeps one
 * batch in preparation while the consumer trains on the previous one; each yielded batch carries
 * the normaliser state after it, which the trainer adopts when it takes the batch (so checkpoints
 * never hold the statistics of a batch not yet trained on).
 */
export class BatchPrep {
  #worker: Worker;
  #pending: {
    resolve: (r: { feats: Float32Array; state: NormalizerState }) => void;
    reject: (e: Error) => void;
  }[] = [];
  #failed: Error | null = null;

  /**
   * `helpers`: worker threads for the per-utterance parts (default: the cores beyond two, up to
   * 8: one for the training loop, one for this worker); 0 prepares each batch in this worker alone.
   */
  constructor(
    nMels: number,
    updateUntilEpoch: number,
    s: PrepSettings,
    helpers = Math.min(8, Math.max(0, navigator.hardwareConcurrency - 2)),
  ) {
    this.#worker = new Worker(new URL("./_prep_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (e) => {
      const p = this.#pending.shift()!;
      if (e.data.error) p.reject(new Error(`batch preparation: ${e.data.error}`));
      else p.resolve(e.data);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#failed = new Error(`batch preparation worker: ${e.message}`);
      for (const p of this.#pending.splice(0)) p.reject(this.#failed);
    };
    this.#worker.postMessage({ init: { nMels, updateUntilEpoch, settings: s, helpers } });
  }

  /** Starts the worker's normaliser from `state` (a run's start, a resume, an epoch). */
  reset(state: NormalizerState): void {
    this.#worker.postMessage({ reset: state });
  }

  /** Prepares one batch (its features move to the worker and back). */
  prepare(batch: Batch, epoch: number, micro: number): Promise<PreparedBatch> {
    if (this.#failed) return Promise.reject(this.#failed);
    const { B, T, F, frames } = batch;
    const job: PrepJob = {
      feats: batch.feats,
      shape: { B, T, F, frames: [...frames] },
      epoch,
      micro,
    };
    const done = new Promise<{ feats: Float32Array; state: NormalizerState }>((resolve, reject) =>
      this.#pending.push({ resolve, reject })
    );
    this.#worker.postMessage({ job }, [batch.feats.buffer as ArrayBuffer]);
    return done.then((r) => ({ batch: { ...batch, feats: r.feats }, normalizer: r.state }));
  }

  /**
   * The batches of `source` prepared, the next one in preparation while the caller trains on the
   * current one. `firstMicro` is the run's micro-batch count when the first batch is taken (the
   * trainer counts one per batch, and the augmentation's seed depends on it).
   */
  async *ahead(
    source: AsyncIterable<Batch>,
    epoch: number,
    firstMicro: number,
  ): AsyncGenerator<PreparedBatch> {
    const it = source[Symbol.asyncIterator]();
    let micro = firstMicro;
    const take = async (): Promise<Promise<PreparedBatch> | null> => {
      const r = await it.next();
      if (r.done) return null;
      const p = this.prepare(r.value, epoch, micro++);
      p.catch(() => {}); // awaited below; an abandoned one must not be an unhandled rejection
      return p;
    };
    let next = await take();
    while (next) {
      const current = await next;
      next = await take();
      yield current;
    }
  }

  /** Ends the worker (and its helpers) once what was sent before is done. */
  close(): void {
    this.#worker.postMessage({ close: true });
  }
}
