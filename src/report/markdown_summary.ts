/**
 * The markdown the pipeline prints at its end and the score stage keeps as results.md: WER per
 * test split beside the paper's, and one row per stage with its status, times and artifact hash
 * (stages that did not run say why).
 */
import { type Comparison, comparisonNote } from "./paper_comparison.ts";

export interface StageRow {
  stage: string;
  /** ran / resumed / reused, or "not run" and the like. */
  status: string;
  /** Time this run spent on the stage; null when it did not run. */
  seconds: number | null;
  /** Time the artifact took to build (its manifest's), null when unknown. */
  builtSeconds: number | null;
  contentHash: string | null;
  /** Why the stage did not run, or anything else worth a word. */
  note?: string;
}

/** A markdown table cell: pipes escaped, line breaks folded. */
export function mdCell(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
}

function mdTable(header: string[], rows: string[][]): string {
  return [header, header.map(() => "---"), ...rows]
    .map((r) => `| ${r.map(mdCell).join(" | ")} |`)
    .join("\n");
}

const pct = (v: number | null) => v === null ? "-" : v.toFixed(2);
const paperPct = (v: number | null) => v === null ? "-" : v.toFixed(1);
const signed = (v: number | null) => v === null ? "-" : `${v >= 0 ? "+" : ""}${v.toFixed(2)}`;

export function werTableMarkdown(c: Comparison): string {
  const rows = c.rows.map((r) => [
    r.split,
    r.wer === null ? "not scored" : pct(r.wer),
    paperPct(r.paperNoLm),
    paperPct(r.paperLm),
    signed(r.delta),
  ]);
  const table = mdTable(
    [
      `split`,
      `WER % (this run, ${c.lm ? "with LM" : "no LM"})`,
      "paper, no LM",
      "paper, with LM",
      `vs paper (${c.lm ? "with LM" : "no LM"})`,
    ],
    rows,
  );
  return `${table}\n\n${comparisonNote(c)}\n`;
}

/** 0.4 s, 12.3 s, 12 min 39 s, 2 h 05 min. */
export function fmtDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} min`;
}

export function stagesTableMarkdown(rows: readonly StageRow[]): string {
  return mdTable(
    ["stage", "status", "this run", "built in", "artifact (content hash)", "note"],
    rows.map((r) => [
      r.stage,
      r.status,
      r.seconds === null ? "-" : fmtDuration(r.seconds),
      r.builtSeconds === null ? "-" : fmtDuration(r.builtSeconds),
      r.contentHash ? r.contentHash.slice(0, 12) : "-",
      r.note ?? "",
    ]),
  ) + "\n";
}
