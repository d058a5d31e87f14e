/**
 * The pipeline verb's closing summary, in process on a two-stage product: the stage table (ran,
 * reused with the build time, stopped by --until, not in this build with the reason), the score
 * artifact's results.md and the path of its report.html.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pipelineVerb } from "../../src/cli/pipeline_verb.ts";
import type { Product } from "../../src/cli/product.ts";
import { defineStage, type Stage } from "../../src/pipeline/stage.ts";

type Cfg = { n: number };

const stages: Stage<Cfg>[] = [
  defineStage<Cfg, "n">({
    name: "gen",
    version: 1,
    description: "a number",
    reads: ["n"],
    after: [],
    async run(ctx) {
      await new Promise((r) => setTimeout(r, 30));
      await ctx.writeFile("n.txt", String(ctx.config.n));
    },
  }),
  defineStage<Cfg, never>({
    name: "score",
    version: 1,
    description: "results.md and report.html as the real score stage writes them",
    reads: [],
    after: ["gen"],
    async run(ctx) {
      const n = await Deno.readTextFile(join(ctx.inputs.gen.path, "n.txt"));
      await ctx.writeFile(
        "results.md",
        `| split | WER % |\n| --- | --- |\n| test-clean | ${n} |\n`,
      );
      await ctx.writeFile("report.html", "<!DOCTYPE html>");
    },
  }),
];

const product: Product<Cfg> = {
  listExperiments: () => ["exp"],
  loadExperiment: () => ({ n: 7 }),
  parseOverrides: () => ({}),
  pipelineFor: (experiment, config) => ({ experiment, config, stages }),
  pendingStages: () => ["train (the S2S recipes come later)", "decode"],
};

async function run(cache: string, opts: { until?: string } = {}): Promise<string> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    assert.equal(await pipelineVerb(product, "exp", [], { cache, ...opts }), 0);
  } finally {
    console.log = log;
  }
  return lines.join("\n");
}

Deno.test("pipeline summary: stage table, results.md, report path; stages that did not run", async () => {
  const cache = await Deno.makeTempDir({ prefix: "cm-summary-" });
  const until = await run(cache, { until: "gen" });
  assert.match(until, /\| gen \| ran \| \d+\.\d s \| \d+\.\d s \| [0-9a-f]{12} \| {2}\|/);
  assert.match(until, /\| score \| not run \| - \| - \| - \| stopped after gen \|/);
  assert.match(
    until,
    /\| train \| not in this build \| - \| - \| - \| the S2S recipes come later \|/,
  );
  assert.match(until, /\| decode \| not in this build \| - \| - \| - \| {2}\|/);
  assert.match(until, /WER: none, the score stage did not run\./);
  assert.doesNotMatch(until, /report:/);

  const full = await run(cache);
  const built = until.match(/\| gen \| ran \| [^|]+ \| ([^|]+) \|/)![1];
  assert.match(full, new RegExp(`\\| gen \\| reused \\| \\d+\\.\\d s \\| ${built} \\|`));
  assert.match(full, /\| score \| ran \|/);
  assert.match(full, /\| split \| WER % \|\n\| --- \| --- \|\n\| test-clean \| 7 \|/);
  const report = full.match(/^report: (.*)$/m)![1];
  assert.ok(report.startsWith("/") && report.endsWith("/report.html"), report);
  assert.equal(await Deno.readTextFile(report), "<!DOCTYPE html>");
  await Deno.remove(cache, { recursive: true });
});
