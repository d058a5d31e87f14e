/**
 * A synthetic train log (the train stage's format: one line per micro-batch, one per epoch) and
 * results for the report tests, with text that needs escaping in the places a user controls.
 */
import { renderReport } from "../../src/report/html_report.ts";
import { compareWithPaper } from "../../src/report/paper_comparison.ts";
import { parseTrainLog } from "../../src/report/train_log.ts";
import { PAPER_WER } from "../../src/stages/score.ts";
import { mulberry32 } from "../../src/util/rng.ts";

/** `epochs` epochs of `perEpoch` micro-batches; every other micro-batch updates (accumulation 2). */
export function syntheticTrainLog(epochs = 4, perEpoch = 30): string {
  const rand = mulberry32(7);
  const lines: string[] = [];
  let step = 0;
  for (let e = 1; e <= epochs; e++) {
    for (let i = 0; i < perEpoch; i++) {
      step++;
      const updates = step % 2 === 0;
      const update = Math.floor(step / 2);
      lines.push(JSON.stringify({
        epoch: e,
        step,
        update: updates ? update : null,
        loss: 100 / Math.sqrt(step) + 5 * rand(),
        lr: updates ? 0.002 * Math.min(update / 20, Math.sqrt(20 / update)) : null,
        grad_norm: 10 * rand(),
        batch: 8,
        audio_s_per_s: 40,
        step_ms: 700,
      }));
    }
    lines.push(JSON.stringify({
      epoch: e,
      valid_loss: 80 / e,
      wer: 90 / e,
      cer: 50 / e,
      acc: 100 - 40 / e,
      kept: [e],
    }));
  }
  return lines.join("\n") + "\n";
}

export const RESULTS = {
  "test-clean": { wer: 12.5, sub: 10, del: 3, ins: 2, words: 120, sentences: 20, ser: 40 },
};

export const HOSTILE = `<script>alert("x")</script> & </td>`;

/** A report of the synthetic log: conmamba_L_CTC's paper numbers, test-other not scored. */
export function syntheticReport(): string {
  return renderReport({
    title: `synthetic ${HOSTILE}`,
    comparison: compareWithPaper(RESULTS, {
      experiment: "conmamba_L_CTC",
      testSplits: ["test-clean"],
      paper: PAPER_WER.conmamba_L_CTC,
      lm: false,
    }),
    results: RESULTS,
    trainLog: parseTrainLog(syntheticTrainLog()),
    config: { experiment: "conmamba_L_CTC", lm: null, betas: [0.9, 0.98], comment: HOSTILE },
    artifacts: [
      { stage: "train", key: "a".repeat(64), contentHash: "b".repeat(64) },
      { stage: "decode", key: "c".repeat(64), contentHash: "d".repeat(64) },
    ],
  });
}
