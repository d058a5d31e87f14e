/** `pipeline <exp> [--until S] [--force S]... [--cache DIR] [--<hparam> V]...` */
import { runPipeline, type StageReport, validateGraph } from "../pipeline/engine.ts";
import { createProgress } from "../pipeline/progress.ts";
import { ArtifactStore } from "../pipeline/store.ts";
import { fmtBytes, print, short } from "./format.ts";
import { cacheRoot, type Product } from "./product.ts";

export async function pipelineVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  rest: string[],
  opts: { cache?: string; until?: string; force?: string[] },
): Promise<number> {
  // Everything that can be wrong with the request is checked before the cache is touched.
  const overrides = product.parseOverrides(rest);
  const config = product.loadExperiment(experiment, overrides);
  const pipeline = product.pipelineFor(experiment, config);
  validateGraph(pipeline, opts);
  const root = cacheRoot(opts.cache);
  const store = new ArtifactStore(root);
  const progress = createProgress();
  const t0 = performance.now();
  print(`pipeline ${experiment} (cache ${root})`);
  const record = await runPipeline(pipeline, {
    store,
    progress,
    until: opts.until,
    force: opts.force,
    onStage: (r) => print(stageLine(r)),
  });
  const counts = { reused: 0, ran: 0, resumed: 0 };
  for (const s of record.stages) counts[s.status]++;
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  print(
    `${experiment}: ${record.stages.length} stage(s) in ${secs}s ` +
      `(${counts.ran} ran, ${counts.resumed} resumed, ${counts.reused} reused)`,
  );
  const pending = product.pendingStages?.(experiment, config) ?? [];
  if (record.complete && pending.length > 0) {
    print(`not implemented in this build yet: ${pending.join(", ")}`);
  }
  return 0;
}

export function stageLine(r: StageReport): string {
  return `  ${r.stage.padEnd(10)} ${r.status.padEnd(8)} ${r.seconds.toFixed(1).padStart(7)}s  ` +
    `key ${short(r.key)}  content ${short(r.contentHash)}  ${fmtBytes(r.bytes)}`;
}
