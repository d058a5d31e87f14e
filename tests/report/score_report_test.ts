/**
 * The real score stage on hand-made upstream artifacts (stub download/fbank/tokenizer/train/decode
 * stages writing just the files score reads): results.md beside the paper's numbers, report.html
 * with the train log's curves, every upstream artifact's hashes and every config key.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CONFIG_KEYS, type Experiment } from "../../src/config/experiment.ts";
import { loadExperiment } from "../../src/config/load.ts";
import { runPipeline } from "../../src/pipeline/engine.ts";
import { silentProgress } from "../../src/pipeline/progress.ts";
import { defineStage, type Stage } from "../../src/pipeline/stage.ts";
import { ArtifactStore } from "../../src/pipeline/store.ts";
import { escapeHtml } from "../../src/report/escape.ts";
import { makeScoreStage } from "../../src/stages/score.ts";
import { syntheticTrainLog } from "./fixture.ts";

const REFS: Record<string, [string, string][]> = {
  "test-clean": [["u1", "THE CAT SAT"], ["u2", "A DOG"]],
  "test-other": [["u3", "HELLO WORLD"]],
};
const HYPS: Record<string, string> = {
  "test-clean": "u1 THE BAT SAT\nu2 A DOG\n",
  "test-other": "u3 HELLO\n",
};

function stub(name: string, after: string[], files: Record<string, string>): Stage<Experiment> {
  return defineStage<Experiment, never>({
    name,
    version: 1,
    description: `stub ${name}`,
    reads: [],
    after,
    async run(ctx) {
      for (const [p, text] of Object.entries(files)) await ctx.writeFile(p, text);
    },
  });
}

const manifests = Object.fromEntries(
  Object.entries(REFS).map(([split, rows]) => [
    `manifests/${split}.csv`,
    "ID,duration,wav,spk_id,wrd\n" + rows.map(([id, w]) => `${id},1.0,x.flac,s,${w}\n`).join(""),
  ]),
);

Deno.test("score stage: results.md and report.html from the upstream artifacts", async () => {
  const cache = await Deno.makeTempDir({ prefix: "cm-score-report-" });
  const config = loadExperiment("conmamba_large_ctc", {
    test_splits: "[test-clean, test-other]",
  });
  const stages = [
    stub("download", [], manifests),
    stub("fbank", ["download"], { "f.txt": "features" }),
    stub("tokenizer", ["download"], { "t.txt": "tokens" }),
    stub("train", ["fbank", "tokenizer"], { "train_log.jsonl": syntheticTrainLog(3, 12) }),
    stub(
      "decode",
      ["train"],
      Object.fromEntries(
        Object.entries(HYPS).map(([split, text]) => [`hyp/${split}.txt`, text]),
      ),
    ),
    makeScoreStage() as Stage<Experiment>,
  ];
  const store = new ArtifactStore(cache);
  const record = await runPipeline(
    { experiment: "conmamba_large_ctc", config, stages },
    { store, progress: silentProgress },
  );
  const score = record.stages.find((s) => s.stage === "score")!;
  const dir = store.artifactDir("score", score.key);

  const md = await Deno.readTextFile(join(dir, "results.md"));
  assert.match(md, /\| test-clean \| 20\.00 \| 3\.9 \| - \| \+16\.10 \|/); // 1 sub / 5 words
  assert.match(md, /\| test-other \| 50\.00 \| 10\.3 \| - \| \+39\.70 \|/); // 1 del / 2 words
  assert.match(md, /without an LM: compare with the paper's no-LM column \(conmamba_L_CTC\)/);

  const html = await Deno.readTextFile(join(dir, "report.html"));
  for (const s of record.stages.filter((s) => s.stage !== "score")) {
    assert.ok(
      html.includes(
        `<td>${s.stage}</td><td class="hash">${s.key}</td><td class="hash">${s.contentHash}</td>`,
      ),
      `${s.stage}'s key and content hash`,
    );
  }
  for (const k of CONFIG_KEYS) {
    const v = escapeHtml(JSON.stringify(config[k] ?? null));
    assert.ok(html.includes(`<td>${k}</td><td class="value">${v}</td>`), `config ${k}`);
  }
  assert.equal([...html.matchAll(/<path class="series"/g)].length >= 5, true, "curves drawn");
  assert.ok(!html.includes("no data"));
  // The train artifact is an input of score: its content enters score's key.
  const m = await store.get("score", score.key);
  assert.deepEqual(Object.keys(m!.ingredients.inputs).sort(), [
    "decode",
    "download",
    "fbank",
    "tokenizer",
    "train",
  ]);
  assert.deepEqual(Object.keys(m!.ingredients.config), [...CONFIG_KEYS]);
  await Deno.remove(cache, { recursive: true });
});
