/**
 * `pipeline <exp> [--until S] [--force S]... [--cache DIR] [--<hparam> V]...`: runs the stages,
 * then prints a markdown summary: one row per stage (status, time, artifact hash; why a stage did
 * not run), the score stage's results.md (WER beside the paper's) and the path of its report.html.
 */
import { join, resolve } from "node:path";
import {
  runPipeline,
  type RunRecord,
  type StageReport,
  validateGraph,
} from "../pipeline/engine.ts";
import { exists } from "../pipeline/fs_util.ts";
import { defaultThreads } from "../pipeline/threads.ts";
import { selectDevice } from "../tensor/compute_backend.ts";
import { createProgress } from "../pipeline/progress.ts";
import type { Pipeline } from "../pipeline/stage.ts";
import { ArtifactStore } from "../pipeline/store.ts";
import { type StageRow, stagesTableMarkdown } from "../report/markdown_summary.ts";
import { fmtBytes, print, short } from "./format.ts";
import { cacheRoot, type Product } from "./product.ts";
import { SCORE_STAGE } from "./results_verb.ts";

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
  const device = selectDevice();
  const root = cacheRoot(opts.cache);
  const store = new ArtifactStore(root);
  const progress = createProgress();
  const t0 = performance.now();
  print(
    `pipeline ${experiment} (cache ${root}; compute: ` +
      (device === "cuda" ? "cuda" : `wasm, ${defaultThreads()} threads`) + ")",
  );
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
  print("");
  print(stagesTableMarkdown(await stageRows(store, pipeline, record, pending, opts.until)));
  const score = record.stages.find((s) => s.stage === SCORE_STAGE);
  if (!score) {
    print(`WER: none, the ${SCORE_STAGE} stage did not run.`);
    return 0;
  }
  const dir = store.artifactDir(SCORE_STAGE, score.key);
  if (await exists(join(dir, "results.md"))) {
    print(await Deno.readTextFile(join(dir, "results.md")));
  }
  if (await exists(join(dir, "report.html"))) print(`report: ${resolve(dir, "report.html")}`);
  return 0;
}

/** The stages of this run, then those it stopped before (--until), then those not in this build. */
async function stageRows<C extends object>(
  store: ArtifactStore,
  pipeline: Pipeline<C>,
  record: RunRecord,
  pending: string[],
  until: string | undefined,
): Promise<StageRow[]> {
  const rows: StageRow[] = [];
  for (const r of record.stages) {
    const m = await store.get(r.stage, r.key);
    rows.push({
      stage: r.stage,
      status: r.status,
      seconds: r.seconds,
      builtSeconds: m ? m.durationMs / 1000 : null,
      contentHash: r.contentHash,
    });
  }
  for (const s of pipeline.stages.slice(record.stages.length)) {
    rows.push({
      stage: s.name,
      status: "not run",
      seconds: null,
      builtSeconds: null,
      contentHash: null,
      note: `stopped after ${until}`,
    });
  }
  for (const p of pending) {
    // pendingStages gives "name" or "name (reason)".
    const m = /^(\S+)(?: \((.*)\))?$/s.exec(p);
    rows.push({
      stage: m ? m[1] : p,
      status: "not in this build",
      seconds: null,
      builtSeconds: null,
      contentHash: null,
      note: m?.[2],
    });
  }
  return rows;
}

export function stageLine(r: StageReport): string {
  return `  ${r.stage.padEnd(10)} ${r.status.padEnd(8)} ${r.seconds.toFixed(1).padStart(7)}s  ` +
    `key ${short(r.key)}  content ${short(r.contentHash)}  ${fmtBytes(r.bytes)}`;
}
