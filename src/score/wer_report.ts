/**
 * The wer.txt text SpeechBrain writes (`ErrorRateStats.write_stats`: `dataio/wer.py`
 * `print_wer_summary` + `print_alignments`) — CONMAMBA_SPEC.md §11.
 */
import type { AlignedPair } from "./align.ts";
import { pyCenter, pyFixed2 } from "./_pyformat.ts";
import type { CorpusScore, CorpusStats, UtteranceScore } from "./wer.ts";

const RULE = "=".repeat(80);
const EPS = "<eps>";
const SEP = " ; ";

/** The three summary lines; " [PARTIAL]" when some references had no hypothesis. */
export function formatSummary(s: CorpusStats): string {
  const partial = s.absent > 0 ? " [PARTIAL]" : "";
  return `%WER ${pyFixed2(s.wer)} [ ${s.errors} / ${s.words}, ${s.ins} ins, ${s.del} del, ` +
    `${s.sub} sub ]${partial}\n` +
    `%SER ${pyFixed2(s.ser)} [ ${s.erroneous} / ${s.sentences} ]\n` +
    `Scored ${s.sentences} sentences, ${s.absent} not present in hyp.\n`;
}

/** Reference, operation and hypothesis lines; each column centred to its widest entry. */
export function formatAlignment(
  alignment: readonly AlignedPair[],
  ref: readonly string[],
  hyp: readonly string[],
): string {
  const refCols: string[] = [], opCols: string[] = [], hypCols: string[] = [];
  for (const { op, ref: i, hyp: j } of alignment) {
    const r = i === null ? EPS : ref[i];
    const h = j === null ? EPS : hyp[j];
    const width = Math.max(Array.from(op).length, Array.from(r).length, Array.from(h).length);
    refCols.push(pyCenter(r, width));
    opCols.push(pyCenter(op, width));
    hypCols.push(pyCenter(h, width));
  }
  return `${refCols.join(SEP)}\n${opCols.join(SEP)}\n${hypCols.join(SEP)}\n`;
}

/** The fixed worked example under "Format:" in every wer.txt. */
const EXAMPLE = formatAlignment(
  [
    { op: "I", ref: null, hyp: 0 },
    { op: "S", ref: 0, hyp: 1 },
    { op: "=", ref: 1, hyp: 2 },
    { op: "=", ref: 2, hyp: 3 },
    { op: "S", ref: 3, hyp: 4 },
    { op: "D", ref: 4, hyp: null },
  ],
  ["reference", "on", "the", "first", "line"],
  ["and", "hypothesis", "on", "the", "third"],
);

/** One utterance's block: rule, header with its WER, then the alignment. */
export function formatUtterance(u: UtteranceScore): string {
  return `${RULE}\n${u.id}, %WER ${pyFixed2(u.wer)} [ ${u.errors} / ${u.words}, ${u.ins} ins, ` +
    `${u.del} del, ${u.sub} sub ]\n` + formatAlignment(u.alignment, u.ref, u.hyp);
}

/** The whole wer.txt: summary, the ALIGNMENTS header, every scored utterance in order. */
export function werReport(score: CorpusScore): string {
  const header = `${RULE}\nALIGNMENTS\n\nFormat:\n<utterance-id>, WER DETAILS\n${EXAMPLE}`;
  return formatSummary(score.stats) + header + score.utterances.map(formatUtterance).join("");
}
