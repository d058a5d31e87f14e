/**
 * The report's training curves from a parsed train log, as SVG charts: training loss per
 * micro-batch with a moving average, learning rate per update, validation loss per epoch (beside
 * the epoch's mean training loss), and the other validation metrics per epoch (WER, CER, ACC, ...).
 * Long runs are reduced to at most MAX_POINTS points per line by averaging consecutive buckets.
 */
import { lineChart, type Series } from "./svg_chart.ts";
import type { TrainLog } from "./train_log.ts";

export const MAX_POINTS = 1000;

type Point = [number, number];

/** Means of consecutive buckets (x and y alike) so that at most `max` points remain. */
export function bucketMeans(points: readonly Point[], max = MAX_POINTS): Point[] {
  if (points.length <= max) return [...points];
  const k = Math.ceil(points.length / max);
  const out: Point[] = [];
  for (let i = 0; i < points.length; i += k) {
    const b = points.slice(i, i + k);
    out.push([
      b.reduce((s, p) => s + p[0], 0) / b.length,
      b.reduce((s, p) => s + p[1], 0) / b.length,
    ]);
  }
  return out;
}

/** Trailing mean over `w` points; non-finite values are skipped (NaN while none is in the window). */
export function movingAverage(points: readonly Point[], w: number): Point[] {
  return points.map(([x], i) => {
    let sum = 0, n = 0;
    for (let j = Math.max(0, i - w + 1); j <= i; j++) {
      if (Number.isFinite(points[j][1])) [sum, n] = [sum + points[j][1], n + 1];
    }
    return [x, n > 0 ? sum / n : NaN];
  });
}

const PERCENT_METRICS = new Set(["wer", "cer", "ser", "acc"]);

export function trainingCurves(log: TrainLog): string[] {
  const charts: string[] = [];
  const loss: Point[] = log.steps.map((s) => [s.step, s.loss]);
  const reduced = bucketMeans(loss);
  const per = reduced.length < loss.length
    ? `mean of ${Math.ceil(loss.length / MAX_POINTS)} micro-batches`
    : "per micro-batch";
  const w = Math.max(5, Math.round(reduced.length / 25));
  charts.push(lineChart(
    loss.length === 0 ? [] : [
      { name: `loss (${per})`, points: reduced, color: "#9ecae1" },
      { name: `moving average of ${w}`, points: movingAverage(reduced, w), color: "#0072b2" },
    ],
    { title: "Training loss", xLabel: "micro-batch", yLabel: "loss" },
  ));
  const lr: Point[] = log.steps.flatMap((s) =>
    s.update !== null && s.lr !== null ? [[s.update, s.lr] as Point] : []
  );
  charts.push(lineChart(
    lr.length === 0 ? [] : [{ name: "learning rate", points: bucketMeans(lr) }],
    { title: "Learning rate", xLabel: "update", yLabel: "learning rate" },
  ));
  const epochs = [...new Set(log.epochs.map((e) => e.epoch))].sort((a, b) => a - b);
  const trainMean: Point[] = epochs.map((ep) => {
    const ls = log.steps.filter((s) => s.epoch === ep && Number.isFinite(s.loss));
    return [ep, ls.length ? ls.reduce((t, s) => t + s.loss, 0) / ls.length : NaN];
  });
  // Epochs without the metric (e.g. WER computed every few epochs only) are skipped, not gaps.
  const metric = (name: string): Point[] =>
    log.epochs.flatMap((e) => name in e.metrics ? [[e.epoch, e.metrics[name]] as Point] : []);
  const names = [...new Set(log.epochs.flatMap((e) => Object.keys(e.metrics)))];
  const lossNames = names.filter((n) => n.includes("loss"));
  const others = names.filter((n) => !n.includes("loss"));
  const validLoss: Series[] = lossNames.map((n) => ({
    name: n === "valid_loss" ? "validation loss" : n.replace(/_/g, " "),
    points: metric(n),
    dots: true,
  }));
  charts.push(lineChart(
    validLoss.length === 0 ? [] : [
      ...validLoss,
      { name: "training loss (mean of the epoch)", points: trainMean, dots: true },
    ],
    { title: "Validation loss per epoch", xLabel: "epoch", yLabel: "loss" },
  ));
  const percent = others.every((n) => PERCENT_METRICS.has(n));
  charts.push(lineChart(
    others.map((n) => ({ name: n.toUpperCase(), points: metric(n), dots: true })),
    {
      title: `Validation ${
        others.length ? others.map((n) => n.toUpperCase()).join(" / ") : "metrics"
      } per epoch`,
      xLabel: "epoch",
      yLabel: percent ? "%" : "value",
    },
  ));
  return charts;
}
