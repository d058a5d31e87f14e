/** `deno task bench`: every benchmark, printed as markdown tables with in-run baselines. */
import { pipelineBench, type Row } from "./pipeline_bench.ts";

function printTable(title: string, rows: Row[]): void {
  console.log(`\n### ${title}\n`);
  console.log("| measurement | ours | baseline | ratio (baseline time / ours) |");
  console.log("|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.what} | ${r.ours} | ${r.baseline} | ${r.ratio} |`);
}

console.log(
  `# deno task bench — ${new Date().toISOString()}, deno ${Deno.version.deno}, ` +
    `${navigator.hardwareConcurrency} cores`,
);
printTable("pipeline engine", await pipelineBench());
