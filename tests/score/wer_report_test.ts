import assert from "node:assert/strict";
import { scoreCorpus } from "../../src/score/wer.ts";
import { formatSummary, werReport } from "../../src/score/wer_report.ts";

// Golden text written by hand from CONMAMBA_SPEC.md §11 and SpeechBrain's dataio/wer.py
// (print_wer_summary + print_alignments): Python str.center per column, " ; " between columns,
// "<eps>" where a side has no token; an empty hypothesis word "" is printed as blanks, not <eps>.
// Trailing blanks are part of the format.
const GOLDEN = [
  "%WER 80.00 [ 4 / 5, 1 ins, 1 del, 2 sub ] [PARTIAL]",
  "%SER 100.00 [ 2 / 2 ]",
  "Scored 2 sentences, 1 not present in hyp.",
  "=".repeat(80),
  "ALIGNMENTS",
  "",
  "Format:",
  "<utterance-id>, WER DETAILS",
  "<eps> ; reference  ; on ; the ; first ;  line",
  "  I   ;     S      ; =  ;  =  ;   S   ;   D  ",
  " and  ; hypothesis ; on ; the ; third ; <eps>",
  "=".repeat(80),
  "u1, %WER 66.67 [ 2 / 3, 1 ins, 0 del, 1 sub ]",
  "the ; cat ; sat ; <eps>",
  " =  ;  S  ;  =  ;   I  ",
  "the ; bat ; sat ;  down",
  "=".repeat(80),
  "u2, %WER 100.00 [ 2 / 2, 0 ins, 1 del, 1 sub ]",
  "a ;   b  ",
  "S ;   D  ",
  "  ; <eps>",
  "",
].join("\n");

function smallCase() {
  const refs = new Map([["u1", ["the", "cat", "sat"]], ["u2", ["a", "b"]], ["u3", ["hello"]]]);
  const hyps = new Map([["u1", ["the", "bat", "sat", "down"]], ["u2", [""]]]);
  return scoreCorpus(refs, hyps);
}

Deno.test("wer_report: wer.txt of a small case with an empty and an absent hypothesis", () => {
  assert.equal(werReport(smallCase()), GOLDEN);
});

Deno.test("wer_report: no [PARTIAL] when every reference has a hypothesis", () => {
  const refs = new Map([["x", ["a", "b", "c"]]]);
  const s = scoreCorpus(refs, new Map([["x", ["a", "b", "c"]]])).stats;
  assert.equal(
    formatSummary(s),
    "%WER 0.00 [ 0 / 3, 0 ins, 0 del, 0 sub ]\n%SER 0.00 [ 0 / 1 ]\n" +
      "Scored 1 sentences, 0 not present in hyp.\n",
  );
});
