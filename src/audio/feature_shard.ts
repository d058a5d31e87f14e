/**
 * One shard of the feature store: the log-mel features of a run of utterances at one speed,
 * concatenated as little-endian float32 (T_i, n_mels) blocks. Computing a shard is a pure
 * function of its inputs, so shards can be made by any worker in any order and the store's bytes
 * do not depend on how many workers made them.
 */
import { readFlac } from "./flac.ts";
import { Fbank, type FbankSettings } from "./fbank.ts";
import { SpeedPerturb } from "./speed_perturb.ts";
import type { Backend } from "../tensor/backend.ts";

export interface ShardJob {
  /** FLAC paths (absolute) and utterance ids, in shard order. */
  utterances: { id: string; path: string }[];
  speed: number; // 95, 100, 105
  settings: FbankSettings;
  /** Where to write the features (the caller renames it into place). */
  outPath: string;
}

export interface ShardResult {
  ids: string[];
  frames: number[];
  /** Per mel bin over all frames of the shard: sum and sum of squares (float64). */
  sum: number[];
  sumSq: number[];
}

/** Computes one shard with a backend (1 thread per worker: the pool parallelises shards). */
export async function computeShard(backend: Backend, job: ShardJob): Promise<ShardResult> {
  const fbank = new Fbank(backend, job.settings);
  const speed = new SpeedPerturb(backend, job.settings.sampleRate);
  const n = job.settings.nMels;
  const sum = new Float64Array(n), sumSq = new Float64Array(n);
  const frames: number[] = [];
  try {
    using file = await Deno.open(job.outPath, { write: true, create: true, truncate: true });
    for (const u of job.utterances) {
      const audio = await readFlac(u.path);
      if (audio.sampleRate !== job.settings.sampleRate || audio.channels.length !== 1) {
        throw new Error(
          `${u.path}: expected mono ${job.settings.sampleRate} Hz audio, got ` +
            `${audio.channels.length} channel(s) at ${audio.sampleRate} Hz`,
        );
      }
      const feats = fbank.compute(speed.apply(audio.channels[0], job.speed)); // (T, n_mels)
      for (let i = 0; i < feats.length; i++) {
        sum[i % n] += feats[i];
        sumSq[i % n] += feats[i] * feats[i];
      }
      frames.push(feats.length / n);
      const bytes = new Uint8Array(feats.buffer, feats.byteOffset, feats.byteLength);
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
    }
    await file.sync();
  } finally {
    fbank.free();
    speed.free();
  }
  return { ids: job.utterances.map((u) => u.id), frames, sum: [...sum], sumSq: [...sumSq] };
}
