/**
 * The score stage (CONMAMBA_SPEC.md §11): per test split, WER of the decode stage's hypotheses
 * against the manifests' transcripts, unit-cost alignment with Kaldi's tie-breaking. Output:
 * wer_<split>.txt (SpeechBrain's format), ref/<split>.txt, results.json ({split: {wer, sub, del,
 * ins, words, sentences, ser}}; what `conmamba results` prints), results.md (beside the paper's
 * numbers for the experiment, when the paper has them; the pipeline verb prints it) and
 * report.html (src/report/: results, the train log's curves, the upstream artifacts' hashes, the
 * whole configuration). It reads every config key and every upstream artifact for the report.
 */
import { join } from "node:path";
import { CONFIG_KEYS, type ConfigKey, type Experiment } from "../config/experiment.ts";
import { readLibriSpeechCsv } from "../data/librispeech.ts";
import { exists } from "../pipeline/fs_util.ts";
import { defineStage } from "../pipeline/stage.ts";
import { renderReport, type SplitScore } from "../report/html_report.ts";
import { werTableMarkdown } from "../report/markdown_summary.ts";
import { compareWithPaper, type PaperWer } from "../report/paper_comparison.ts";
import { parseTrainLog } from "../report/train_log.ts";
import { parseTranscripts } from "../score/files.ts";
import { scoreCorpus, splitWords } from "../score/wer.ts";
import { werReport } from "../score/wer_report.ts";

/** The paper's table (§12), WER % without / with LM, by the original's experiment name. */
export const PAPER_WER: Record<string, PaperWer> = {
  conformer_S_S2S: { clean: 4.1, other: 10.0, lmClean: 2.5, lmOther: 6.1 },
  conmamba_S_S2S: { clean: 4.0, other: 9.5, lmClean: 2.4, lmOther: 5.8 },
  conmambamamba_S_S2S: { clean: 4.0, other: 9.7, lmClean: 2.5, lmOther: 6.5 },
  conformer_L_S2S: { clean: 2.6, other: 6.7, lmClean: 2.0, lmOther: 4.5 },
  conmamba_L_S2S: { clean: 2.8, other: 6.7, lmClean: 2.1, lmOther: 4.9 },
  conmambamamba_L_S2S: { clean: 3.0, other: 7.0, lmClean: 2.4, lmOther: 5.7 },
  conformer_L_CTC: { clean: 4.3, other: 11.3 },
  conmamba_L_CTC: { clean: 3.9, other: 10.3 },
};

/** Every stage before score: the report shows their hashes (and reads train's log). */
const UPSTREAM = ["download", "fbank", "tokenizer", "train", "decode"];

export function makeScoreStage() {
  return defineStage<Experiment, ConfigKey>({
    name: "score",
    version: 2,
    description: "WER per test split, wer.txt as SpeechBrain writes it, results beside the paper",
    reads: CONFIG_KEYS,
    after: UPSTREAM,
    async run(ctx) {
      const c = ctx.config;
      const results: Record<string, SplitScore & { ser: number }> = {};
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
      const comparison = compareWithPaper(results, {
        experiment: c.experiment,
        testSplits: c.test_splits,
        paper: PAPER_WER[c.experiment],
        lm: c.lm !== null,
      });
      await ctx.writeFile("results.md", werTableMarkdown(comparison));
      const logPath = join(ctx.inputs.train.path, "train_log.jsonl");
      const trainLog = (await exists(logPath))
        ? parseTrainLog(await Deno.readTextFile(logPath), logPath)
        : null;
      const html = renderReport({
        title: c.experiment,
        comparison,
        results,
        trainLog,
        config: Object.fromEntries(CONFIG_KEYS.map((k) => [k, c[k]])),
        artifacts: UPSTREAM.map((stage) => ctx.inputs[stage]),
      });
      await ctx.writeFile("report.html", html);
    },
  });
}
