/**
 * The stage graph of every experiment of the paper's table (S2S and CTC alike):
 *
 *   download -> fbank -> tokenizer -> train -> decode -> score
 *
 * Stages are added here as they are implemented (src/stages/<name>.ts); `PLANNED` keeps the
 * order of the whole recipe so `status` and `pipeline` can say what this build still lacks.
 */
import type { Experiment } from "../src/config/experiment.ts";
import type { Pipeline, Stage } from "../src/pipeline/stage.ts";
import { makeDownloadStage } from "../src/stages/download.ts";
import { makeFbankStage } from "../src/stages/fbank.ts";
import { makeTokenizerStage } from "../src/stages/tokenizer.ts";

export const PLANNED = ["download", "fbank", "tokenizer", "train", "decode", "score"] as const;

/** Implemented stages, in pipeline order. */
export const STAGES: Stage<Experiment>[] = [
  makeDownloadStage(),
  makeFbankStage(),
  makeTokenizerStage(),
];

export function asrPipeline(experiment: string, config: Experiment): Pipeline<Experiment> {
  return { experiment, config, stages: STAGES };
}

/** Planned stages this build does not implement yet. */
export function pendingStages(): string[] {
  const have = new Set(STAGES.map((s) => s.name));
  return PLANNED.filter((n) => !have.has(n));
}
