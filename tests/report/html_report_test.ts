import assert from "node:assert/strict";
import { parseTrainLog } from "../../src/report/train_log.ts";
import { bucketMeans, movingAverage, trainingCurves } from "../../src/report/training_curves.ts";
import { HOSTILE, syntheticReport, syntheticTrainLog } from "./fixture.ts";

Deno.test("train_log: micro-batch and epoch lines; null update/lr kept as null", () => {
  const log = parseTrainLog(syntheticTrainLog(3, 10));
  assert.equal(log.steps.length, 30);
  assert.deepEqual(log.epochs.map((e) => e.epoch), [1, 2, 3]);
  assert.deepEqual(Object.keys(log.epochs[0].metrics), ["valid_loss", "wer", "cer", "acc"]);
  assert.equal(log.steps[0].update, null);
  assert.equal(log.steps[0].lr, null);
  assert.equal(log.steps[1].update, 1);
  assert.ok(log.steps[1].lr! > 0);
  assert.throws(() => parseTrainLog('{"epoch":1}\n{oops\n', "x.jsonl"), /x\.jsonl:2: not JSON/);
  assert.throws(() => parseTrainLog('{"step":1}\n', "x.jsonl"), /x\.jsonl:1: no numeric "epoch"/);
});

Deno.test("training curves: four charts; long runs reduced to bucket means", () => {
  const charts = trainingCurves(parseTrainLog(syntheticTrainLog()));
  assert.equal(charts.length, 4);
  assert.match(charts[0], /<title>Training loss<\/title>/);
  assert.match(charts[1], /<title>Learning rate<\/title>/);
  assert.match(charts[2], />validation loss</);
  assert.match(charts[3], /<title>Validation WER \/ CER \/ ACC per epoch<\/title>/);
  for (const c of charts) assert.ok(!c.includes("no data") && !c.includes("NaN"));
  // WER only every other epoch (null otherwise, as the S2S recipes validate): one line, no gap.
  const sparse = trainingCurves(parseTrainLog(
    [1, 2, 3, 4].map((e) =>
      JSON.stringify({ epoch: e, valid_loss: 9 - e, wer: e % 2 ? null : 50 / e })
    )
      .join("\n"),
  ));
  assert.equal([...sparse[3].matchAll(/<path class="series"/g)].length, 1);
  assert.equal([...sparse[3].matchAll(/<circle class="point"/g)].length, 2);
  const empty = trainingCurves({ steps: [], epochs: [] });
  assert.ok(empty.every((c) => c.includes("no data")));

  const pts = Array.from({ length: 2500 }, (_, i) => [i, i % 2] as [number, number]);
  const r = bucketMeans(pts, 1000);
  assert.equal(r.length, 834); // buckets of 3
  assert.deepEqual(r[0], [1, 1 / 3]);
  assert.deepEqual(movingAverage([[0, 1], [1, NaN], [2, 3]], 2), [[0, 1], [1, 1], [2, 3]]);
});

Deno.test("html report: self-contained HTML5, escaped text, results beside the paper's", () => {
  const html = syntheticReport();
  assert.match(html, /^<!DOCTYPE html>\n<html lang="en">/);
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'/);
  assert.ok(!/<script|<link|<img|<iframe|@import|url\(/i.test(html), "no script or resource");
  // The only URL: the SVG namespace, which is never fetched.
  const urls = [...html.matchAll(/https?:\/\/[^"\s]*/g)].map((m) => m[0]);
  assert.deepEqual([...new Set(urls)], ["http://www.w3.org/2000/svg"]);
  assert.ok(!html.includes(HOSTILE));
  assert.match(html, /<title>ConMamba report: synthetic &lt;script&gt;alert\(&quot;x&quot;\)/);
  assert.match(html, /<td class="value">&quot;&lt;script&gt;alert\(\\&quot;x\\&quot;\)/);
  assert.match(html, /<table id="results">/);
  assert.match(html, /<td>test-clean<\/td><td class="num">12.50<\/td>.*<td class="num">3.9<\/td>/);
  assert.match(html, /<td>test-other<\/td><td class="num">not scored<\/td>/);
  assert.equal([...html.matchAll(/<svg /g)].length, 4);
  assert.match(html, /<td>train<\/td><td class="hash">a{64}<\/td><td class="hash">b{64}<\/td>/);
  assert.match(html, /<td>betas<\/td><td class="value">\[0.9,0.98\]<\/td>/);
  assert.equal(syntheticReport(), html, "deterministic");
});
