/**
 * The fbank stage: log-mel features of every utterance of every split (CONMAMBA_SPEC.md §3), and
 * for the training splits one copy per speed of the recipe (§8.7; the train stage picks one per
 * utterance per epoch, as the original's loader does on the fly).
 *
 * Store layout (all little-endian float32; a shard holds SHARD_SIZE utterances):
 *   shards/<split>/<speed>/<NNNN>.f32   the (T_i, n_mels) blocks of the shard's utterances
 *   index/<split>.json                   per speed, per shard: file, ids, frames
 *   stats.json                           exact mean and std over all training frames at speed 100
 *
 * Normalisation: the recipe's InputNormalization keeps a running average of per-batch means of
 * per-utterance statistics (§3.6, gotcha G14) that depends on the batches; the train stage
 * computes it from the features as the recipe does. stats.json holds the exact statistics of the
 * training set, for reports and as an alternative normaliser.
 *
 * Shards are computed by a pool of workers (one 1-thread Wasm backend each); shard contents do
 * not depend on the number of workers, so the artifact is bitwise repeatable. Completed shards
 * survive an interruption: a rerun of the key computes only the missing ones.
 */
import { join } from "node:path";
import { z } from "zod";
import { fbankSettings } from "../audio/fbank.ts";
import type { ShardJob, ShardResult } from "../audio/feature_shard.ts";
import type { Experiment } from "../config/experiment.ts";
import { readLibriSpeechCsv } from "../data/librispeech.ts";
import { exists, writeFileAtomic } from "../pipeline/fs_util.ts";
import type { Progress } from "../pipeline/progress.ts";
import { defineStage } from "../pipeline/stage.ts";
import { defaultThreads } from "../pipeline/threads.ts";

export const SHARD_SIZE = 500;

type Keys =
  | "sample_rate"
  | "n_fft"
  | "win_length"
  | "n_mels"
  | "speed_changes"
  | "train_splits"
  | "dev_splits"
  | "test_splits";

export const ShardIndexSchema = z.object({
  file: z.string(),
  ids: z.array(z.string()),
  frames: z.array(z.number().int()),
});
export const SplitIndexSchema = z.object({
  split: z.string(),
  n_mels: z.number().int(),
  speeds: z.record(z.string(), z.array(ShardIndexSchema)),
});
export type SplitIndex = z.infer<typeof SplitIndexSchema>;

interface Job extends ShardJob {
  split: string;
  file: string; // relative to the artifact
}

export function makeFbankStage(opts: { workers?: number } = {}) {
  return defineStage<Experiment, Keys>({
    name: "fbank",
    version: 1,
    description: "log-mel filterbank features of every split, speed-perturbed copies for training",
    reads: [
      "sample_rate",
      "n_fft",
      "win_length",
      "n_mels",
      "speed_changes",
      "train_splits",
      "dev_splits",
      "test_splits",
    ],
    after: ["download"],
    usesKernels: true,
    async run(ctx) {
      const c = ctx.config;
      const settings = fbankSettings(c);
      const download = ctx.inputs.download.path;
      const train = new Set<string>(c.train_splits);
      const splits = [...new Set([...c.train_splits, ...c.dev_splits, ...c.test_splits])];
      const jobs: Job[] = [];
      const index: Record<string, SplitIndex> = {};
      for (const split of splits) {
        const rows = await readLibriSpeechCsv(join(download, "manifests", `${split}.csv`));
        const utts = rows.map((r) => ({
          id: r.id,
          path: r.wav.startsWith("/") ? r.wav : join(download, r.wav),
        }));
        const speeds = train.has(split) ? c.speed_changes : [100];
        index[split] = { split, n_mels: c.n_mels, speeds: {} };
        for (const speed of speeds) {
          index[split].speeds[String(speed)] = [];
          for (let s = 0; s * SHARD_SIZE < Math.max(utts.length, 1); s++) {
            const file = `shards/${split}/${speed}/${String(s).padStart(4, "0")}.f32`;
            jobs.push({
              split,
              file,
              speed,
              settings,
              utterances: utts.slice(s * SHARD_SIZE, (s + 1) * SHARD_SIZE),
              outPath: join(ctx.scratch, file.replaceAll("/", "_") + ".partial"),
            });
          }
        }
      }
      const results = await runShards(jobs, ctx, opts.workers);
      // Index and statistics, in job order (deterministic whatever finished first).
      const sum = new Float64Array(c.n_mels), sumSq = new Float64Array(c.n_mels);
      let frames = 0;
      for (let i = 0; i < jobs.length; i++) {
        const j = jobs[i], r = results[i];
        index[j.split].speeds[String(j.speed)].push({ file: j.file, ids: r.ids, frames: r.frames });
        if (train.has(j.split) && j.speed === 100) {
          for (let m = 0; m < c.n_mels; m++) {
            sum[m] += r.sum[m];
            sumSq[m] += r.sumSq[m];
          }
          frames += r.frames.reduce((a, b) => a + b, 0);
        }
      }
      for (const [split, idx] of Object.entries(index)) {
        await ctx.writeFile(`index/${split}.json`, JSON.stringify(idx) + "\n");
      }
      const mean = [...sum].map((s) => s / Math.max(frames, 1));
      const std = [...sumSq].map((s, m) =>
        Math.sqrt(Math.max(s / Math.max(frames, 1) - mean[m] ** 2, 0))
      );
      await ctx.writeFile(
        "stats.json",
        JSON.stringify({ frames, settings, mean, std }, null, 1) + "\n",
      );
    },
  });
}

/** Runs the jobs on a worker pool; a finished shard is kept (renamed into out/) with its result. */
async function runShards(
  jobs: Job[],
  ctx: { out: string; scratch: string; progress: Progress },
  workers?: number,
): Promise<ShardResult[]> {
  const results: ShardResult[] = new Array(jobs.length);
  const todo: number[] = [];
  for (let i = 0; i < jobs.length; i++) {
    const done = join(ctx.scratch, `${jobs[i].file.replaceAll("/", "_")}.result.json`);
    if ((await exists(join(ctx.out, jobs[i].file))) && (await exists(done))) {
      results[i] = JSON.parse(await Deno.readTextFile(done)); // from an interrupted attempt
    } else todo.push(i);
  }
  const bar = ctx.progress.bar("fbank shards", { total: jobs.length, unit: "items" });
  bar.set(jobs.length - todo.length);
  const n = Math.max(1, Math.min(workers ?? defaultThreads(), todo.length));
  const pool = Array.from(
    { length: n },
    () => new Worker(new URL("../audio/_fbank_worker.ts", import.meta.url), { type: "module" }),
  );
  let next = 0;
  try {
    await Promise.all(pool.map(async (w) => {
      for (let k = next++; k < todo.length; k = next++) {
        const i = todo[k], job = jobs[i];
        const result = await new Promise<ShardResult>((resolve, reject) => {
          w.onmessage = (e) =>
            e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.result);
          w.onerror = (e) => {
            e.preventDefault();
            reject(new Error(e.message));
          };
          const { split: _s, file: _f, ...shardJob } = job;
          w.postMessage({ seq: i, job: shardJob });
        });
        const dest = join(ctx.out, job.file);
        await Deno.mkdir(join(dest, ".."), { recursive: true });
        await Deno.rename(job.outPath, dest);
        await writeFileAtomic(
          join(ctx.scratch, `${job.file.replaceAll("/", "_")}.result.json`),
          JSON.stringify(result),
        );
        results[i] = result;
        bar.add(1);
      }
    }));
  } finally {
    for (const w of pool) w.terminate();
    bar.finish();
  }
  return results;
}
