import assert from "node:assert/strict";
import {
  fmtDuration,
  mdCell,
  stagesTableMarkdown,
  werTableMarkdown,
} from "../../src/report/markdown_summary.ts";
import { compareWithPaper } from "../../src/report/paper_comparison.ts";
import { PAPER_WER } from "../../src/stages/score.ts";

const score = (wer: number) => ({ wer });

Deno.test("markdown: WER beside the paper's no-LM numbers; a paper split not scored says so", () => {
  const c = compareWithPaper({ "test-clean": score(4.456) }, {
    experiment: "conmamba_L_CTC",
    testSplits: ["test-clean"],
    paper: PAPER_WER.conmamba_L_CTC,
    lm: false,
  });
  assert.deepEqual(c.rows.map((r) => r.split), ["test-clean", "test-other"]);
  const md = werTableMarkdown(c);
  const lines = md.split("\n");
  assert.equal(
    lines[0],
    "| split | WER % (this run, no LM) | paper, no LM | paper, with LM | vs paper (no LM) |",
  );
  assert.equal(lines[1], "| --- | --- | --- | --- | --- |");
  assert.equal(lines[2], "| test-clean | 4.46 | 3.9 | - | +0.56 |");
  assert.equal(lines[3], "| test-other | not scored | 10.3 | - | - |");
  assert.match(md, /without an LM: compare with the paper's no-LM column \(conmamba_L_CTC\)/);
});

Deno.test("markdown: with an LM the comparison is against the paper's with-LM column", () => {
  const c = compareWithPaper({ "test-clean": score(2.0), "test-other": score(6.5) }, {
    experiment: "conmamba_S_S2S",
    testSplits: ["test-clean", "test-other"],
    paper: PAPER_WER.conmamba_S_S2S,
    lm: true,
  });
  const md = werTableMarkdown(c);
  assert.match(md, /\| split \| WER % \(this run, with LM\) \|.*\| vs paper \(with LM\) \|/);
  assert.match(md, /\| test-clean \| 2\.00 \| 4\.0 \| 2\.4 \| -0\.40 \|/);
  assert.match(md, /\| test-other \| 6\.50 \| 9\.5 \| 5\.8 \| \+0\.70 \|/);
  assert.match(md, /with an LM: compare with the paper's with-LM column/);
});

Deno.test("markdown: no paper numbers; configured splits first, then scored extras", () => {
  const c = compareWithPaper({ "dev-clean": score(30), "test-clean": score(24) }, {
    experiment: "conmamba_tiny_CTC",
    testSplits: ["test-clean", "test-other"],
    paper: undefined,
    lm: false,
  });
  assert.deepEqual(c.rows.map((r) => [r.split, r.wer]), [
    ["test-clean", 24],
    ["test-other", null],
    ["dev-clean", 30],
  ]);
  const md = werTableMarkdown(c);
  assert.match(md, /\| test-clean \| 24\.00 \| - \| - \| - \|/);
  assert.match(md, /\| test-other \| not scored \| - \| - \| - \|/);
  assert.match(md, /The paper has no numbers for conmamba_tiny_CTC\./);
});

Deno.test("markdown: stage rows with short hashes, durations, and stages that did not run", () => {
  const md = stagesTableMarkdown([
    {
      stage: "train",
      status: "reused",
      seconds: 0.0021,
      builtSeconds: 759.36,
      contentHash: "0375c69e681c1159e920",
    },
    {
      stage: "decode",
      status: "ran",
      seconds: 3.04,
      builtSeconds: 3.04,
      contentHash: "5ad8c6c14181deba9576",
    },
    {
      stage: "score",
      status: "not run",
      seconds: null,
      builtSeconds: null,
      contentHash: null,
      note: "a|b\nc",
    },
  ]);
  const lines = md.trimEnd().split("\n");
  assert.equal(
    lines[0],
    "| stage | status | this run | built in | artifact (content hash) | note |",
  );
  assert.equal(lines[2], "| train | reused | 0.0 s | 12 min 39 s | 0375c69e681c |  |");
  assert.equal(lines[3], "| decode | ran | 3.0 s | 3.0 s | 5ad8c6c14181 |  |");
  assert.equal(lines[4], "| score | not run | - | - | - | a\\|b c |");
  assert.equal(fmtDuration(7300), "2 h 01 min");
  assert.equal(fmtDuration(60), "1 min 00 s");
  assert.equal(mdCell("x\\|y"), "x\\\\\\|y");
});
