/**
 * What the CLI needs from the rest of the program: how to find and load experiments and how to
 * build their pipelines. The real program wires hparams/ and pipelines/; tests wire toy ones.
 */
import type { Pipeline } from "../pipeline/stage.ts";

export interface Product<C extends object> {
  listExperiments(): string[];
  /** Loads and validates one experiment; throws an error with exitCode 2 on bad input. */
  loadExperiment(name: string, overrides: Record<string, string>): C;
  /** `--key value` / `--key=value` pairs; throws an error with exitCode 2 on anything else. */
  parseOverrides(argv: string[]): Record<string, string>;
  pipelineFor(name: string, config: C): Pipeline<C>;
  /** Stages the finished product will have after these, not implemented in this build. */
  pendingStages?(name: string, config: C): string[];
}

/** Cache root: --cache, else $CONMAMBA_CACHE, else .cache in the working directory. */
export function cacheRoot(flag: string | undefined): string {
  return flag ?? Deno.env.get("CONMAMBA_CACHE") ?? ".cache";
}
