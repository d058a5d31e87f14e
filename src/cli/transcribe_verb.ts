/**
 * `transcribe <exp> <audio.flac...> [--cache DIR] [--threads N] [--<hparam> <value>...]`: each
 * file's words with the experiment's trained model, one line "<file> <words>" per file, with the
 * decode stage's per-utterance path (src/decode/transcriber.ts: the same features, normaliser,
 * model and search — test_search included).
 *
 * The model: the newest train artifact the experiment's run records name (newest run first, an
 * interrupted or `--until train` run included) whose stage version and config values are the
 * current ones (what the train stage's key covers apart from the upstream data's content and the
 * kernels' build: a rebuilt kernels.wasm does not untrain a model), with the tokenizer artifact it
 * was trained with. None: a clear error saying how to train it.
 */
import { join } from "node:path";
import { Fbank, fbankSettings } from "../audio/fbank.ts";
import { flacInfo, readFlac } from "../audio/flac.ts";
import type { Experiment } from "../config/experiment.ts";
import { type TrainedArtifacts, Transcriber } from "../decode/transcriber.ts";
import { canonicalJson } from "../pipeline/canonical_json.ts";
import type { RunRecord } from "../pipeline/engine.ts";
import { UserError } from "../pipeline/errors.ts";
import { exists } from "../pipeline/fs_util.ts";
import { diffIngredients } from "../pipeline/key.ts";
import type { Stage } from "../pipeline/stage.ts";
import { type ArtifactManifest, ArtifactStore } from "../pipeline/store.ts";
import { defaultThreads } from "../pipeline/threads.ts";
import { createBackend } from "../tensor/compute_backend.ts";
import { print, short } from "./format.ts";
import { cacheRoot, type Product } from "./product.ts";

export const TRAIN_STAGE = "train";
export const TOKENIZER_STAGE = "tokenizer";

/** Where a trained model of an experiment is: its artifacts' folders and the train key. */
export interface TrainedModel extends TrainedArtifacts {
  trainKey: string;
  built: string; // the train artifact's creation time
}

/** The run records of an experiment, newest first (by finish, else start time). */
async function runRecords(store: ArtifactStore, experiment: string): Promise<RunRecord[]> {
  const dir = store.runsDir(experiment);
  const records: RunRecord[] = [];
  if (!(await exists(dir))) return records;
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".json")) continue;
    try {
      records.push(JSON.parse(await Deno.readTextFile(join(dir, e.name))));
    } catch { /* a damaged record names no model */ }
  }
  const when = (r: RunRecord) => r.finished ?? r.started ?? "";
  return records.sort((a, b) => when(b).localeCompare(when(a)));
}

async function manifestOf(
  store: ArtifactStore,
  stage: string,
  key: string,
): Promise<ArtifactManifest | null> {
  try {
    return await store.get(stage, key);
  } catch {
    return null; // a damaged artifact is not a model (`conmamba verify` names it)
  }
}

/**
 * The newest train artifact of `experiment` in the store whose version and config values match
 * `trainStage` under `config`, with its tokenizer artifact. Throws a UserError (exit 2) naming the
 * command that trains it when there is none.
 */
export async function findTrainedModel<C extends object>(
  store: ArtifactStore,
  experiment: string,
  config: C,
  trainStage: Stage<C>,
): Promise<TrainedModel> {
  const declared = Object.fromEntries(
    trainStage.reads.map((k) => [k, (config as Record<string, unknown>)[k] ?? null]),
  );
  const want = canonicalJson(declared);
  let stale: ArtifactManifest | null = null;
  const seen = new Set<string>();
  for (const r of await runRecords(store, experiment)) {
    const rep = r.stages?.find((s) => s.stage === TRAIN_STAGE);
    if (!rep || seen.has(rep.key)) continue;
    seen.add(rep.key);
    const m = await manifestOf(store, TRAIN_STAGE, rep.key);
    if (!m) continue;
    if (
      m.ingredients.version !== trainStage.version || canonicalJson(m.ingredients.config) !== want
    ) {
      stale ??= m;
      continue;
    }
    const tokHash = m.ingredients.inputs[TOKENIZER_STAGE];
    const tokKeys = r.stages.filter((s) => s.stage === TOKENIZER_STAGE && s.contentHash === tokHash)
      .map((s) => s.key);
    for (const a of await store.list()) {
      if (a.stage !== TOKENIZER_STAGE || a.manifest instanceof Error) continue;
      if (a.manifest.contentHash === tokHash && !tokKeys.includes(a.key)) tokKeys.push(a.key);
    }
    for (const k of tokKeys) {
      if (await manifestOf(store, TOKENIZER_STAGE, k)) {
        return {
          train: store.artifactDir(TRAIN_STAGE, rep.key),
          tokenizer: store.artifactDir(TOKENIZER_STAGE, k),
          trainKey: rep.key,
          built: m.created,
        };
      }
    }
  }
  const how = `run \`deno task pipeline ${experiment} --until train\` first`;
  if (stale) {
    const diffs = diffIngredients(stale.ingredients, {
      ...stale.ingredients,
      version: trainStage.version,
      config: declared,
    });
    const shown = diffs.slice(0, 3).join("; ") +
      (diffs.length > 3 ? `; ${diffs.length - 3} more` : "");
    throw new UserError(
      `${experiment} has no trained model for this config in ${store.root} (its newest, ` +
        `${short(stale.key)}, differs: ${shown}): ${how}`,
    );
  }
  throw new UserError(`${experiment} has not been trained (no model in ${store.root}): ${how}`);
}

export async function transcribeVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  rest: string[],
  opts: { cache?: string },
): Promise<number> {
  // Files first, then `--<hparam> <value>` pairs.
  let i = 0;
  while (i < rest.length && !rest[i].startsWith("--")) i++;
  const files = rest.slice(0, i);
  const loaded = product.loadExperiment(experiment, product.parseOverrides(rest.slice(i)));
  const config = loaded as unknown as Experiment;
  if (files.length === 0) throw new UserError("transcribe: name at least one audio file");
  const pipeline = product.pipelineFor(experiment, loaded);
  const trainStage = pipeline.stages.find((s) => s.name === TRAIN_STAGE);
  if (!trainStage) {
    const why = product.pendingStages?.(experiment, loaded).find((p) => p.startsWith(TRAIN_STAGE));
    throw new UserError(`${experiment} cannot be trained by this build${why ? `: ${why}` : ""}`);
  }
  const settings = fbankSettings(config);
  for (const f of files) {
    let info;
    try {
      info = await flacInfo(f);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new UserError(`${f}: no such file`);
      throw new UserError(`${f}: not a FLAC file (${e instanceof Error ? e.message : e})`);
    }
    if (info.sampleRate !== settings.sampleRate || info.channels !== 1) {
      throw new UserError(
        `${f}: expected mono ${settings.sampleRate} Hz FLAC (${experiment}'s sample_rate), got ` +
          `${info.channels} channel(s) at ${info.sampleRate} Hz`,
      );
    }
  }
  const store = new ArtifactStore(cacheRoot(opts.cache));
  const found = await findTrainedModel(store, experiment, loaded, trainStage);
  const be = await createBackend(defaultThreads());
  try {
    const tr = await Transcriber.load(be, config, found);
    const fb = new Fbank(be, settings);
    try {
      for (const f of files) {
        let wav;
        try {
          wav = await readFlac(f);
        } catch (e) {
          throw new UserError(
            `${f}: not a valid FLAC file (${e instanceof Error ? e.message : e})`,
          );
        }
        const words = tr.transcribe(fb.compute(wav.channels[0])).words.filter((w) => w);
        print([f, ...words].join(" "));
      }
    } finally {
      fb.free();
      tr.free();
    }
  } finally {
    be.close();
  }
  return 0;
}
