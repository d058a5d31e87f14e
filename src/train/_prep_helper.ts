/**
 * A helper of BatchPrep's worker (src/train/_prep_worker.ts): one range of utterances of a batch
 * held in shared memory, for the parts of the preparation that are per utterance or per row.
 */
/// <reference lib="deno.worker" />
import { InputNormalization, utteranceStats } from "../audio/input_normalization.ts";
import { warpUtterances } from "../audio/spec_augment.ts";
import type { HelperTask } from "./batch_prep.ts";

self.onmessage = (e: MessageEvent<HelperTask>) => {
  const t = e.data;
  try {
    const x = new Float32Array(t.x, 0, t.B * t.T * t.F);
    if (t.op === "stats") {
      utteranceStats(
        x,
        t.T,
        t.F,
        t.frames,
        t.b0,
        t.b1,
        new Float64Array(t.m),
        new Float64Array(t.q),
      );
    } else if (t.op === "normalize") {
      const norm = new InputNormalization(t.F, 0);
      norm.load(t.state);
      norm.normalizeRows(x, t.b0 * t.T, t.b1 * t.T);
    } else {
      warpUtterances({ data: x, B: t.B, T: t.T, F: t.F }, t.plan, t.b0, t.b1);
    }
    self.postMessage({ ok: true });
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
