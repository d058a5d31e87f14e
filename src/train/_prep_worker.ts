/**
 * The worker of BatchPrep (src/train/batch_prep.ts): prepares the batches it is sent, in order,
 * with its helpers (src/train/_prep_helper.ts) for the per-utterance parts when it has any.
 */
/// <reference lib="deno.worker" />
import { InputNormalization } from "../audio/input_normalization.ts";
import {
  prepareFeatures,
  prepareFeaturesParallel,
  type PrepJob,
  type PrepSettings,
} from "./batch_prep.ts";

let norm: InputNormalization | null = null;
let settings: PrepSettings | null = null;
let helpers: Worker[] = [];
let queue = Promise.resolve(); // messages are handled one after another, jobs included

async function handle(d: Record<string, unknown>): Promise<void> {
  if (d.init) {
    const i = d.init as {
      nMels: number;
      updateUntilEpoch: number;
      settings: PrepSettings;
      helpers: number;
    };
    norm = new InputNormalization(i.nMels, i.updateUntilEpoch);
    settings = i.settings;
    helpers = Array.from(
      { length: i.helpers },
      () => new Worker(new URL("./_prep_helper.ts", import.meta.url), { type: "module" }),
    );
    return;
  }
  if (d.reset) {
    norm!.load(d.reset as Parameters<InputNormalization["load"]>[0]);
    return;
  }
  if (d.close) {
    for (const h of helpers) h.terminate();
    self.close();
    return;
  }
  const job = d.job as PrepJob;
  try {
    if (helpers.length > 0) {
      await prepareFeaturesParallel(norm!, job, settings!, helpers);
    } else prepareFeatures(norm!, job, settings!);
    self.postMessage({ feats: job.feats, state: norm!.state() }, [job.feats.buffer as ArrayBuffer]);
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
}

self.onmessage = (e: MessageEvent) => {
  queue = queue.then(() => handle(e.data));
};
