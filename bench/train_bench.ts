/**
 * Training throughput on the Wasm backend: one AsrTrainer step (src/train/step.ts: normalisation,
 * SpecAugment, forward with dropout, the recipe's loss, backward, clipping and Adam) on a
 * synthetic batch of about 20 s of audio (5 s for conmamba_large, the most that fits wasm32's
 * 4 GiB: bench/asr_batch.ts), for tiny, conmamba_small and conmamba_large, with 1 thread and with
 * all threads; the speed-up of all threads is against the
 * 1-thread step measured in the same run. One warm-up step per configuration, then the best of a
 * few timed steps (one for conmamba_large), and the kernels' profile of the timed steps.
 *
 *   deno run -A bench/train_bench.ts [experiment...]      (needs build/kernels.wasm: `make wasm`)
 */
import {
  audioSeconds,
  experimentBatch,
  freshModel,
  stepSettings,
  topKernels,
  TRAIN_SHAPES,
  warmKernels,
} from "./asr_batch.ts";
import { InputNormalization } from "../src/audio/input_normalization.ts";
import { AsrTrainer } from "../src/train/step.ts";

export const TRAIN_EXPERIMENTS = ["tiny", "conmamba_small", "conmamba_large"];
/** Timed steps after the warm-up (the best is reported). */
const TIMED: Record<string, number> = { tiny: 3, conmamba_small: 2, conmamba_large: 1 };

export interface TrainRow {
  experiment: string;
  threads: number;
  B: number;
  T: number;
  audioS: number;
  stepMs: number;
  /** Most bytes live at once during the timed steps (parameters, Adam state, step buffers) and
   * the kernel memory's size (the peak plus fragmentation), MiB. */
  peakMiB: number;
  memoryMiB: number;
  speedup: number | null; // all threads vs 1 thread, null on the 1-thread row
  top: string; // top-5 kernels of the timed steps
  error?: string;
}

async function measure(name: string, threads: number): Promise<TrainRow> {
  const shape = TRAIN_SHAPES[name] ?? { B: 4, T: 500 };
  const { c, be, model } = await freshModel(name, threads);
  const row = { experiment: name, threads, ...shape, audioS: audioSeconds(shape) };
  try {
    const tr = new AsrTrainer(model, new InputNormalization(c.n_mels!, 4), stepSettings(c));
    let seed = 1;
    tr.step(experimentBatch(c, shape.B, shape.T, seed++), 1); // warm-up
    const prof = be.profile();
    be.resetPeak();
    const timed = TIMED[name] ?? 1;
    let best = Infinity;
    for (let i = 0; i < timed; i++) {
      const batch = experimentBatch(c, shape.B, shape.T, seed++); // step() normalises in place
      const t0 = performance.now();
      tr.step(batch, 1);
      best = Math.min(best, performance.now() - t0);
    }
    const kernelMs = [...prof.values()].reduce((a, e) => a + e.ms, 0) / timed;
    return {
      ...row,
      stepMs: best,
      peakMiB: be.memoryStats().peakBytes / 2 ** 20,
      memoryMiB: be.memoryBytes() / 2 ** 20,
      speedup: null,
      top: `${topKernels(prof, 5, timed, kernelMs)}; all kernels ${kernelMs.toFixed(0)} ms`,
    };
  } catch (e) {
    return {
      ...row,
      stepMs: NaN,
      peakMiB: NaN,
      memoryMiB: NaN,
      speedup: null,
      top: "",
      error: (e as Error).message,
    };
  } finally {
    be.close();
  }
}

export async function trainBench(experiments = TRAIN_EXPERIMENTS): Promise<TrainRow[]> {
  await warmKernels();
  const all = navigator.hardwareConcurrency;
  const rows: TrainRow[] = [];
  for (const name of experiments) {
    const one = await measure(name, 1);
    rows.push(one);
    if (all > 1) {
      const many = await measure(name, all);
      if (!one.error && !many.error) many.speedup = one.stepMs / many.stepMs;
      rows.push(many);
    }
  }
  return rows;
}

export function trainTable(rows: TrainRow[]): string {
  const out = [
    "Synthetic batch (features ~ N(0, 1), 25 tokens per utterance); step = normalisation, " +
    "SpecAugment, forward, loss, backward, clipping, Adam. Best of 3 (tiny), 2 (small), 1 " +
    "(large) timed steps after one warm-up step; speed-up = 1-thread step / all-threads step, " +
    "both measured in this run; peak = most bytes live at once in the timed steps (parameters, " +
    "Adam state, step buffers), memory = the Wasm linear memory (peak + fragmentation).",
    "",
    "| experiment | batch (B x frames) | audio s | threads | step ms | audio s/s | speed-up | " +
    "peak MiB | memory MiB |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const ok = !r.error;
    out.push(
      `| ${r.experiment} | ${r.B} x ${r.T} | ${r.audioS} | ${r.threads} | ` +
        `${ok ? r.stepMs.toFixed(0) : `failed: ${r.error}`} | ` +
        `${ok ? (r.audioS / (r.stepMs / 1000)).toFixed(2) : "-"} | ` +
        `${
          r.speedup === null || !Number.isFinite(r.speedup) ? "-" : r.speedup.toFixed(2) + "x"
        } | ` +
        `${ok ? r.peakMiB.toFixed(0) : "-"} | ${ok ? r.memoryMiB.toFixed(0) : "-"} |`,
    );
  }
  out.push(
    "",
    "Top-5 kernels, ms per timed step (WasmBackend.profile(): wall time of each call; share of " +
      "the time in all kernels):",
    "",
  );
  out.push("| experiment | threads | kernels |", "|---|---|---|");
  for (const r of rows) if (!r.error) out.push(`| ${r.experiment} | ${r.threads} | ${r.top} |`);
  return out.join("\n");
}

if (import.meta.main) {
  const names = Deno.args.length > 0 ? Deno.args : TRAIN_EXPERIMENTS;
  console.log(trainTable(await trainBench(names)));
}
