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
import { makeTrainStage, trainUnsupported } from "../src/stages/train.ts";
import { makeDecodeStage } from "../src/stages/decode.ts";
import { makeScoreStage } from "../src/stages/score.ts";

export const PLANNED = ["download", "fbank", "tokenizer", "train", "decode", "score"] as const;

/** Implemented stages, in pipeline order (train, decode, score cover the CTC recipes so far). */
export const STAGES: Stage<Experiment>[] = [
  makeDownloadStage(),
  makeFbankStage(),
  makeTokenizerStage(),
  makeTrainStage(),
  makeDecodeStage(),
  makeScoreStage(),
];

/** The stages this build can run for an experiment. */
function stagesFor(config: Experiment): Stage<Experiment>[] {
  const trainable = trainUnsupported(config) === null;
  return STAGES.filter((s) => trainable || !["train", "decode", "score"].includes(s.name));
}

export function asrPipeline(experiment: string, config: Experiment): Pipeline<Experiment> {
  return { experiment, config, stages: stagesFor(config) };
}

/** Planned stages this build does not run for the experiment yet, with the reason when known. */
export function pendingStages(config: Experiment): string[] {
  const have = new Set(stagesFor(config).map((s) => s.name));
  return PLANNED.filter((n) => !have.has(n)).map((n) => {
    const why = n === "train" ? trainUnsupported(config) : null; // decode/score follow train
    return why ? `${n} (${why})` : n;
  });
}
