/**
 * The score stage (CONMAMBA_SPEC.md §11): per test split, WER of the decode stage's hypotheses
 * against the manifests' transcripts, unit-cost alignment with Kaldi's tie-breaking. Output:
 * wer_<split>.txt (SpeechBrain's format), ref/<split>.txt, results.json ({split: {wer, sub, del,
 * ins, words, sentences, ser}}; what `conmamba results` prints), results.md (beside the paper's
 * numbers for the experiment, when the paper has them).
 */
import { join } from "node:path";
import type { Experiment } from "../config/experiment.ts";
import { readLibriSpeechCsv } from "../data/librispeech.ts";
import { defineStage } from "../pipeline/stage.ts";
import { parseTranscripts } from "../score/files.ts";
import { scoreCorpus, splitWords } from "../score/wer.ts";
import { werReport } from "../score/wer_report.ts";

/** The paper's table (§12), WER % without / with LM, by the original's experiment name. */
export const PAPER_WER: Record<
  string,
  { clean: number; other: number; lmClean?: number; lmOther?: number }
> = {
  conformer_S_S2S: { clean: 4.1, other: 10.0, lmClean: 2.5, lmOther: 6.1 },
  conmamba_S_S2S: { clean: 4.0, other: 9.5, lmClean: 2.4, lmOther: 5.8 },
  conmambamamba_S_S2S: { clean: 4.0, other: 9.7, lmClean: 2.5, lmOther: 6.5 },
  conformer_L_S2S: { clean: 2.6, other: 6.7, lmClean: 2.0, lmOther: 4.5 },
  conmamba_L_S2S: { clean: 2.8, other: 6.7, lmClean: 2.1, lmOther: 4.9 },
  conmambamamba_L_S2S: { clean: 3.0, other: 7.0, lmClean: 2.4, lmOther: 5.7 },
  conformer_L_CTC: { clean: 4.3, other: 11.3 },
  conmamba_L_CTC: { clean: 3.9, other: 10.3 },
};

export function makeScoreStage() {
  return defineStage<Experiment, "test_splits" | "experiment" | "lm">({
    name: "score",
    version: 1,
    description: "WER per test split, wer.txt as SpeechBrain writes it, results beside the paper",
    reads: ["test_splits", "experiment", "lm"],
    after: ["download", "decode"],
    async run(ctx) {
      const c = ctx.config;
      const results: Record<string, Record<string, number>> = {};
      for (const split of c.test_splits) {
        const rows = await readLibriSpeechCsv(
          join(ctx.inputs.download.path, "manifests", `${split}.csv`),
        );
        const refs = new Map(rows.map((r) => [r.id, splitWords(r.wrd)]));
        const hypPath = join(ctx.inputs.decode.path, "hyp", `${split}.txt`);
        const hyps = new Map(
          parseTranscripts(await Deno.readTextFile(hypPath), hypPath).map((t) => [t.id, t.words]),
        );
        const score = scoreCorpus(refs, hyps);
        await ctx.writeFile(`wer_${split}.txt`, werReport(score));
        await ctx.writeFile(`ref/${split}.txt`, rows.map((r) => `${r.id} ${r.wrd}\n`).join(""));
        const s = score.stats;
        results[split] = {
          wer: s.wer,
          sub: s.sub,
          del: s.del,
          ins: s.ins,
          words: s.words,
          sentences: s.sentences,
          ser: s.ser,
        };
      }
      await ctx.writeFile("results.json", JSON.stringify(results, null, 1) + "\n");
      const paper = PAPER_WER[c.experiment];
      const lines = [
        `| split | WER % (this run, ${
          c.lm ? "with LM" : "no LM"
        }) | paper, no LM | paper, with LM |`,
        "|---|---|---|---|",
      ];
      for (const [split, r] of Object.entries(results)) {
        const key = split === "test-clean" ? "clean" : split === "test-other" ? "other" : null;
        const p = key && paper ? paper[key] : undefined;
        const lm = key === "clean" ? paper?.lmClean : key === "other" ? paper?.lmOther : undefined;
        lines.push(`| ${split} | ${r.wer.toFixed(2)} | ${p ?? "-"} | ${lm ?? "-"} |`);
      }
      await ctx.writeFile("results.md", lines.join("\n") + "\n");
    },
  });
}
