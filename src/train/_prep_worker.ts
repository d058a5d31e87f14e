/** The worker of BatchPrep (src/train/batch_prep.ts): prepares the batches it is sent, in order. */
/// <reference lib="deno.worker" />
import { InputNormalization } from "../audio/input_normalization.ts";
import { prepareFeatures, type PrepJob, type PrepSettings } from "./batch_prep.ts";

let norm: InputNormalization | null = null;
let settings: PrepSettings | null = null;

self.onmessage = (e: MessageEvent) => {
  const d = e.data;
  if (d.init) {
    norm = new InputNormalization(d.init.nMels, d.init.updateUntilEpoch);
    settings = d.init.settings;
    return;
  }
  if (d.reset) {
    norm!.load(d.reset);
    return;
  }
  const job = d.job as PrepJob;
  try {
    prepareFeatures(norm!, job.feats, job.shape, job.epoch, job.micro, settings!);
    self.postMessage({ feats: job.feats, state: norm!.state() }, [job.feats.buffer as ArrayBuffer]);
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
