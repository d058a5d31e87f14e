/**
 * Shared by the training and model benchmarks: a synthetic batch (features ~ N(0, 1), random token
 * ids), the experiments' batch shapes, a model on a fresh backend, and the kernel warm-up.
 */
import { InputNormalization } from "../src/audio/input_normalization.ts";
import type { Experiment } from "../src/config/experiment.ts";
import { loadExperiment } from "../src/config/load.ts";
import type { AsrModel } from "../src/nn/asr_model.ts";
import { initialize } from "../src/nn/init.ts";
import { buildModel } from "../src/nn/model_config.ts";
import { compileKernels } from "../src/tensor/kernel_module.ts";
import { WasmBackend } from "../src/tensor/wasm_backend.ts";
import { type Batch, targets } from "../src/train/batches.ts";
import {
  AsrTrainer,
  type StepSettings,
  stepSettings as recipeStepSettings,
} from "../src/train/step.ts";
import { mulberry32 } from "../src/util/rng.ts";

/** Tokens per utterance: ~5 tokens per second of speech (LibriSpeech, 5000 unigram tokens). */
export const TOKENS = 25;

/**
 * Batch shapes: B utterances of T frames (10 ms), about 20 s of audio, within the 4 GiB of wasm32
 * memory. conmamba_large is the tight one: its parameters, gradients and Adam moments take 1.8 GB
 * and its step (the tape frees what is dead, docs/PERFORMANCE.md "Step memory") about 0.29 MB more
 * per input frame: 2.5 GB in all at 2 x 1000 (measured; 4 x 1500 fits, 8 x 1000 does not).
 */
export const TRAIN_SHAPES: Record<string, { B: number; T: number }> = {
  tiny: { B: 4, T: 500 },
  conmamba_small: { B: 4, T: 500 },
  conmamba_large: { B: 2, T: 1000 },
};
export const MODEL_SHAPES: Record<string, { B: number; T: number }> = {
  conmamba_small: { B: 4, T: 500 },
  conmamba_large: { B: 2, T: 500 },
};

export const audioSeconds = (s: { B: number; T: number }) => (s.B * s.T) / 100;

/** A batch as src/train/batches.ts makes them: B x T frames of n_mels, U token ids each. */
export function syntheticBatch(
  B: number,
  T: number,
  U: number,
  c: { n_mels: number; output_neurons: number; bos_index: number; eos_index: number },
  seed = 1,
): Batch {
  const next = mulberry32(seed), F = c.n_mels;
  const feats = new Float32Array(B * T * F);
  for (let i = 0; i < feats.length; i += 2) { // Box-Muller pairs
    const r = Math.sqrt(-2 * Math.log(1 - next())), a = 2 * Math.PI * next();
    feats[i] = r * Math.cos(a);
    if (i + 1 < feats.length) feats[i + 1] = r * Math.sin(a);
  }
  const first = Math.max(c.bos_index, c.eos_index) + 1; // ids above blank, bos and eos
  const lists = Array.from(
    { length: B },
    () => Array.from({ length: U }, () => first + Math.floor(next() * (c.output_neurons - first))),
  );
  return {
    ids: Array.from({ length: B }, (_, i) => `synthetic-${i}`),
    speeds: new Array(B).fill(1),
    B,
    T,
    F,
    feats,
    frames: new Array(B).fill(T),
    relLens: new Array(B).fill(1),
    ...targets(lists, c.bos_index, c.eos_index),
  };
}

export function experimentBatch(c: Experiment, B: number, T: number, seed = 1): Batch {
  return syntheticBatch(B, T, TOKENS, {
    n_mels: c.n_mels!,
    output_neurons: c.output_neurons!,
    bos_index: c.bos_index ?? 1,
    eos_index: c.eos_index ?? 2,
  }, seed);
}

/**
 * The recipe's step settings, except that every step is an optimiser update
 * (grad_accumulation_factor 1): a timed step is forward, backward and Adam.
 */
export function stepSettings(c: Experiment): StepSettings {
  return { ...recipeStepSettings(c), gradAccumulation: 1 };
}

/** An initialised model of `name` on a fresh backend of `threads` threads. */
export async function freshModel(
  name: string,
  threads: number,
): Promise<{ c: Experiment; be: WasmBackend; model: AsrModel }> {
  const c = loadExperiment(name, {});
  const be = await WasmBackend.create({ threads });
  const model = buildModel(be, c);
  initialize(model, c.seed!);
  return { c, be, model };
}

// Keeps one compiled kernel module alive for the whole run: backends compile the same bytes, which
// V8 then serves from its module cache with the optimised code of the earlier runs.
let kernelModule: WebAssembly.Module | null = null;

/**
 * V8 first runs the kernels as baseline (Liftoff) code and recompiles a hot function with its
 * optimising compiler (TurboFan) in the background; a call already running stays on the slow
 * code. On the tiny model the first ~5 training steps are still affected, so every benchmark
 * starts with a few tiny steps (a few seconds) before measuring anything.
 */
export async function warmKernels(steps = 6): Promise<void> {
  kernelModule ??= compileKernels();
  const { c, be, model } = await freshModel("tiny", navigator.hardwareConcurrency);
  try {
    const tr = new AsrTrainer(model, new InputNormalization(c.n_mels!, 4), stepSettings(c));
    for (let i = 0; i < steps; i++) tr.step(experimentBatch(c, 4, 300, 100 + i), 1);
  } finally {
    be.close();
  }
}

/** The n largest entries of a profile (`WasmBackend.profile()`), as "name ms (share)". */
export function topKernels(
  prof: ReadonlyMap<string, { ms: number; calls: number }>,
  n: number,
  perRun: number,
  totalMs: number,
): string {
  return [...prof].sort((a, b) => b[1].ms - a[1].ms).slice(0, n).map(([name, e]) => {
    const ms = e.ms / perRun;
    return `${name} ${ms.toFixed(0)} ms (${(100 * ms / totalMs).toFixed(0)}%)`;
  }).join(", ");
}
