/**
 * The static HTML report of one experiment (the score stage's report.html): results beside the
 * paper's, training curves as inline SVG, the upstream artifacts' hashes and the whole
 * configuration. One self-contained HTML5 file: inline CSS, no script, no external resource (the
 * Content-Security-Policy forbids them), every text escaped. Deterministic: the same inputs give
 * the same bytes (no dates, no timings).
 */
import { escapeHtml } from "./escape.ts";
import { type Comparison, comparisonNote } from "./paper_comparison.ts";
import type { ScoreJson } from "../score/score_files.ts";
import { trainingCurves } from "./training_curves.ts";
import type { TrainLog } from "./train_log.ts";

/** One split's score as results.json holds it (src/score/score_files.ts). */
export type SplitScore = ScoreJson;

export interface ReportInput {
  /** The experiment's name, the page's title. */
  title: string;
  comparison: Comparison;
  results: Readonly<Record<string, SplitScore>>;
  /** null when the run has no training log (then the page says so). */
  trainLog: TrainLog | null;
  config: Readonly<Record<string, unknown>>;
  /** The upstream artifacts, in pipeline order. */
  artifacts: readonly { stage: string; key: string; contentHash: string }[];
}

const STYLE = `
body { font-family: sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.hash, td.value { font-family: monospace; }
td.value { white-space: pre-wrap; word-break: break-all; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
.note { color: #555; }
`.trim();

const cell = (s: string, cls?: string) =>
  `<td${cls ? ` class="${cls}"` : ""}>${escapeHtml(s)}</td>`;
const fixed = (v: number | null, d: number) => v === null ? "-" : v.toFixed(d);

function resultsTable(r: ReportInput): string {
  const c = r.comparison;
  const lm = c.lm ? "with LM" : "no LM";
  const head = [
    ["split", ""],
    [`WER % (this run, ${lm})`, "num"],
    ["sub", "num"],
    ["del", "num"],
    ["ins", "num"],
    ["words", "num"],
    ["sentences", "num"],
    ["paper, no LM", "num"],
    ["paper, with LM", "num"],
    [`vs paper (${lm})`, "num"],
  ].map(([h, cls]) => `<th${cls ? ` class="${cls}"` : ""}>${escapeHtml(h)}</th>`).join("");
  const rows = c.rows.map((row) => {
    const s = Object.hasOwn(r.results, row.split) ? r.results[row.split] : null;
    const counts = s
      ? [s.sub, s.del, s.ins, s.words, s.sentences].map((n) => cell(String(n), "num"))
      : Array(5).fill(cell("-", "num"));
    const delta = row.delta === null ? "-" : `${row.delta >= 0 ? "+" : ""}${row.delta.toFixed(2)}`;
    return "<tr>" + [
      cell(row.split),
      cell(row.wer === null ? "not scored" : row.wer.toFixed(2), "num"),
      ...counts,
      cell(fixed(row.paperNoLm, 1), "num"),
      cell(fixed(row.paperLm, 1), "num"),
      cell(delta, "num"),
    ].join("") + "</tr>";
  });
  return `<table id="results">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${
    rows.join("\n")
  }\n</tbody>\n</table>\n<p class="note">${escapeHtml(comparisonNote(c))}</p>`;
}

function keyValueTable(id: string, header: string[], rows: string[][], classes: string[]): string {
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const trs = rows.map((r) => "<tr>" + r.map((v, i) => cell(v, classes[i])).join("") + "</tr>");
  return `<table id="${id}">\n<thead><tr>${th}</tr></thead>\n<tbody>\n${
    trs.join("\n")
  }\n</tbody>\n</table>`;
}

export function renderReport(r: ReportInput): string {
  const curves = r.trainLog
    ? `<div class="charts">\n${
      trainingCurves(r.trainLog).map((svg) => `<figure>\n${svg}\n</figure>`).join("\n")
    }\n</div>`
    : `<p class="note">This run has no training log.</p>`;
  const title = `ConMamba report: ${r.title}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
${STYLE}
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<h2 id="results-heading">Results (WER %)</h2>
${resultsTable(r)}
<h2>Training</h2>
${curves}
<h2>Upstream artifacts</h2>
${
    keyValueTable(
      "artifacts",
      ["stage", "key", "content hash"],
      r.artifacts.map((a) => [a.stage, a.key, a.contentHash]),
      ["", "hash", "hash"],
    )
  }
<h2>Configuration</h2>
${
    keyValueTable(
      "config",
      ["key", "value"],
      Object.entries(r.config).map(([k, v]) => [k, JSON.stringify(v ?? null)]),
      ["", "value"],
    )
  }
</body>
</html>
`;
}
