/**
 * `deno task conmamba <verb>`: the real program, wiring hparams/ (src/config) and the stage
 * graph (pipelines/) into the CLI. CONMAMBA_HPARAMS overrides the hparams folder (tests use it).
 */
import { asrPipeline, pendingStages } from "../../pipelines/asr.ts";
import type { Experiment } from "../config/experiment.ts";
import { listExperiments, loadExperiment, parseOverrides } from "../config/load.ts";
import { runCli } from "./app.ts";
import type { Product } from "./product.ts";

const dir = Deno.env.get("CONMAMBA_HPARAMS") || undefined;

export const product: Product<Experiment> = {
  listExperiments: () => listExperiments(dir),
  loadExperiment: (name, overrides) => loadExperiment(name, overrides, { dir }),
  parseOverrides,
  pipelineFor: asrPipeline,
  pendingStages: (_name, config) => pendingStages(config),
};

if (import.meta.main) Deno.exit(await runCli(product, Deno.args));
