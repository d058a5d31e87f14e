/**
 * Reads the train stage's train_log.jsonl for the report: one line per micro-batch ({epoch, step,
 * update, loss, lr, ...}; update and lr are null on micro-batches that did not update) and one per
 * epoch ({epoch, valid_loss, wer, cer, ...}: every numeric field is a validation metric, whatever
 * the recipe logs, e.g. acc for S2S).
 */

export interface StepEntry {
  epoch: number;
  /** Micro-batch number, counted over the whole run. */
  step: number;
  update: number | null;
  loss: number;
  lr: number | null;
}

export interface EpochEntry {
  epoch: number;
  /** Numeric fields of the epoch line other than `epoch` (valid_loss, wer, cer, acc, ...). */
  metrics: Record<string, number>;
}

export interface TrainLog {
  steps: StepEntry[];
  epochs: EpochEntry[];
}

const num = (v: unknown): number | null => typeof v === "number" ? v : null;

export function parseTrainLog(text: string, path = "train_log.jsonl"): TrainLog {
  const log: TrainLog = { steps: [], epochs: [] };
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new Error(`${path}:${i + 1}: not JSON (${e instanceof Error ? e.message : e})`);
    }
    const epoch = num(o?.epoch);
    if (epoch === null) throw new Error(`${path}:${i + 1}: no numeric "epoch"`);
    if ("step" in o) {
      const step = num(o.step), loss = num(o.loss);
      if (step === null) throw new Error(`${path}:${i + 1}: "step" is not a number`);
      // A non-finite loss is written as null by JSON.stringify: a gap in the curve.
      log.steps.push({ epoch, step, update: num(o.update), loss: loss ?? NaN, lr: num(o.lr) });
    } else {
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(o)) {
        if (k !== "epoch" && typeof v === "number") metrics[k] = v;
      }
      log.epochs.push({ epoch, metrics });
    }
  });
  return log;
}
