/**
 * `results <exp> [--json]`: the score table of the experiment's newest complete run. The score
 * stage's artifact holds results.json: { "<split>": { wer, sub, del, ins, words, sentences } }.
 */
import { join } from "node:path";
import { z } from "zod";
import type { RunRecord } from "../pipeline/engine.ts";
import { UserError } from "../pipeline/errors.ts";
import { exists } from "../pipeline/fs_util.ts";
import { ArtifactStore } from "../pipeline/store.ts";
import { print, short, table } from "./format.ts";
import { cacheRoot, type Product } from "./product.ts";

export const SplitScoreSchema = z.object({
  wer: z.number(),
  sub: z.number().int(),
  del: z.number().int(),
  ins: z.number().int(),
  words: z.number().int(),
  sentences: z.number().int(),
}).passthrough();
export const ResultsSchema = z.record(z.string(), SplitScoreSchema);

export const SCORE_STAGE = "score";
export const RESULTS_FILE = "results.json";

export async function resultsVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  opts: { cache?: string; json?: boolean },
): Promise<number> {
  if (!product.listExperiments().includes(experiment)) {
    product.loadExperiment(experiment, {}); // throws the loader's "unknown experiment" error
  }
  const root = cacheRoot(opts.cache);
  const store = new ArtifactStore(root);
  const dir = store.runsDir(experiment);
  const records: RunRecord[] = [];
  if (await exists(dir)) {
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".json")) continue;
      try {
        records.push(JSON.parse(await Deno.readTextFile(join(dir, e.name))));
      } catch { /* a damaged record is not a result */ }
    }
  }
  records.sort((a, b) => (b.finished ?? "").localeCompare(a.finished ?? ""));
  for (const r of records) {
    if (!r.complete) continue;
    const score = r.stages.find((s) => s.stage === SCORE_STAGE);
    if (!score || !(await store.get(SCORE_STAGE, score.key))) continue;
    const path = join(store.artifactDir(SCORE_STAGE, score.key), RESULTS_FILE);
    const parsed = ResultsSchema.safeParse(JSON.parse(await Deno.readTextFile(path)));
    if (!parsed.success) {
      throw new UserError(`${path}: not a results table (${parsed.error.issues[0].message})`, 1);
    }
    if (opts.json) {
      print(JSON.stringify(parsed.data, null, 1));
      return 0;
    }
    print(`${experiment}: run finished ${r.finished}, score artifact ${short(score.key)}`);
    const rows = [["split", "WER %", "sub", "del", "ins", "words", "sentences"]];
    for (const [split, s] of Object.entries(parsed.data)) {
      rows.push([
        split,
        s.wer.toFixed(2),
        ...[s.sub, s.del, s.ins, s.words, s.sentences].map(String),
      ]);
    }
    print(table(rows));
    return 0;
  }
  throw new UserError(
    `no complete run of ${experiment} in ${root}: run \`deno task pipeline ${experiment}\` first`,
    1,
  );
}
