/**
 * The train stage of every recipe, S2S and CTC (CONMAMBA_SPEC.md §7, §8, §9.4, §9.5; G4-G7,
 * G14-G17): epochs of dynamic batches from the fbank store (one speed copy per utterance per
 * epoch), the training step of src/train/step.ts, validation on the dev splits each epoch, a
 * checkpoint at each epoch end, and as the artifact the element-wise mean of the kept checkpoints.
 *
 * Validation: CTC recipes: CTC loss and greedy WER / CER every epoch. S2S recipes: the joint
 * loss and teacher-forced token accuracy (ACC) every epoch, and WER / CER of the validation
 * searcher (joint CTC/attention beam search, valid_beam_size, ctc_weight_decode, temperature 1)
 * every valid_search_interval epochs and at the last one.
 *
 * Kept checkpoints (G5): the avg_checkpoints best by the recipe's criterion (CTC: min dev WER; S2S:
 * max dev ACC; ties: the earlier epoch) and the avg_checkpoints most recent, so between
 * avg_checkpoints and twice that many models are averaged, buffers included.
 *
 * Resumption: each epoch-end checkpoint (ctx.checkpoints) holds the model (safetensors with the
 * original's names), the Adam moments, and state.json (epoch, update and micro-batch counters -
 * every random stream is a function of the seed and the micro-batch number -, the normaliser, the
 * validation history, the kept set, the log's length). Kept models live in scratch/kept/ with
 * their sha256 in state.json. A rerun of the key continues after the last checkpointed epoch and
 * ends with the same weights, bit for bit, as a run that was never interrupted.
 *
 * Output: model.safetensors (the average), normalizer.json (the last checkpoint's, as evaluation
 * loads it), train_log.jsonl (one line per micro-batch, one per epoch), tokens.json, train.json.
 */
import { join } from "node:path";
import { z } from "zod";
import { InputNormalization, type NormalizerState } from "../audio/input_normalization.ts";
import type { Experiment } from "../config/experiment.ts";
import { FeatureStore } from "../data/feature_store.ts";
import { epochBatches, type SamplerOptions } from "../data/dynamic_batching.ts";
import { readLibriSpeechCsv } from "../data/librispeech.ts";
import { ctcGreedy } from "../decode/ctc_greedy.ts";
import { formatSafetensors, parseSafetensors, type SafeTensor } from "../io/safetensors.ts";
import type { AsrModel } from "../nn/asr_model.ts";
import { initialize } from "../nn/init.ts";
import { buildModel, MODEL_KEYS, type ModelConfig } from "../nn/model_config.ts";
import { evalContext } from "../nn/module.ts";
import { loadStateDict, stateDictTensors } from "../nn/state_dict.ts";
import { UserError } from "../pipeline/errors.ts";
import { sha256Hex } from "../pipeline/hash.ts";
import { defineStage } from "../pipeline/stage.ts";
import { defaultThreads } from "../pipeline/threads.ts";
import { scoreCorpus, splitWords } from "../score/wer.ts";
import { Tape } from "../tensor/autograd.ts";
import { searchBatch } from "../decode/s2s_search.ts";
import { objectives } from "../train/objectives.ts";
import { Tensor } from "../tensor/tensor.ts";
import { SCAN_MAX_STATE } from "../tensor/mamba_ops.ts";
import { createBackend } from "../tensor/compute_backend.ts";
import { CudaBackend } from "../tensor/cuda_backend.ts";
import type { WasmBackend } from "../tensor/wasm_backend.ts";
import { loadTokenizer } from "../text/model_file.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { type Batch, makeBatch, trainEpoch, type Utterance } from "../train/batches.ts";
import { BatchPrep } from "../train/batch_prep.ts";
import { OutOfMemoryError } from "../tensor/linear_allocator.ts";
import { AsrTrainer, stepSettings } from "../train/step.ts";

const OWN_KEYS = [
  "seed",
  "train_splits",
  "dev_splits",
  "number_of_epochs",
  "grad_accumulation_factor",
  "max_grad_norm",
  "loss_reduction",
  "avg_checkpoints",
  "ctc_weight",
  "label_smoothing",
  "optimizer",
  "lr",
  "betas",
  "adam_eps",
  "weight_decay",
  "n_warmup_steps",
  "update_until_epoch",
  "max_batch_length_train",
  "max_batch_length_val",
  "num_bucket",
  "shuffle",
  "batch_ordering",
  "max_batch_ex",
  "blank_index",
  "bos_index",
  "eos_index",
  "speed_changes",
  "time_drop_length_low",
  "time_drop_length_high",
  "time_drop_count_low",
  "time_drop_count_high",
  "freq_drop_length_low",
  "freq_drop_length_high",
  "freq_drop_count_low",
  "freq_drop_count_high",
  "time_warp_window",
  "valid_search_interval",
  "valid_beam_size",
  "ctc_weight_decode",
  "max_decode_ratio",
  "precision",
] as const;

type Keys = (typeof OWN_KEYS)[number] | keyof ModelConfig;

const READS: readonly Keys[] = [...OWN_KEYS, ...MODEL_KEYS];

type Cfg = Pick<Experiment, Keys>;

/** A kept checkpoint with its selection metric (CTC: dev WER, S2S: dev ACC). */
const KeptSchema = z.object({
  epoch: z.number().int(),
  wer: z.number().nullable(),
  acc: z.number().nullable().default(null),
  sha256: z.string(),
});
type Kept = z.infer<typeof KeptSchema>;

const StateSchema = z.object({
  version: z.literal(2),
  epoch: z.number().int().nonnegative(), // epochs completed
  batches_done: z.number().int().nonnegative(), // batches of epoch `epoch + 1` already trained
  counters: z.object({
    updates: z.number().int().nonnegative(),
    micro: z.number().int().nonnegative(),
    epochMicro: z.number().int().nonnegative(),
    nonFinite: z.number().int().nonnegative(),
  }),
  normalizer: z.object({
    count: z.number(),
    glob_mean: z.array(z.number()),
    glob_std: z.array(z.number()),
  }),
  history: z.array(
    z.object({
      epoch: z.number(),
      valid_loss: z.number(),
      wer: z.number().nullable(),
      cer: z.number().nullable(),
      acc: z.number().nullable(),
    }),
  ),
  kept: z.array(KeptSchema),
  log_bytes: z.number().int().nonnegative(),
});
type TrainState = z.infer<typeof StateSchema>;

export interface ValidResult {
  loss: number; // mean over batches of the batchmean loss (the recipe's objective)
  /** Greedy (CTC) or beam-search (S2S) WER and CER; null on S2S epochs without a search. */
  wer: number | null;
  cer: number | null;
  /** S2S: teacher-forced token accuracy in %, else null. */
  acc: number | null;
}

export interface CheckpointInfo {
  epoch: number; // the epoch being trained (end of epoch: the one just validated)
  batchesDone: number; // batches of that epoch trained
  endOfEpoch: boolean;
}

export interface TrainStageOptions {
  /** Compute threads (a run setting, not part of the key). Default: defaultThreads(). */
  threads?: number;
  /**
   * A checkpoint inside an epoch (on an accumulation boundary) once this many minutes have passed
   * since the last one. Default 5. A run setting: where checkpoints fall never changes results.
   */
  checkpointMinutes?: number;
  /** Also a checkpoint inside an epoch every this many micro-batches (tests). */
  checkpointEverySteps?: number;
  /** Called after each checkpoint is durable (tests interrupt runs here). */
  afterCheckpoint?: (at: CheckpointInfo) => void | Promise<void>;
}

/**
 * Why this build's train stage cannot run an experiment, or null when it can. Every experiment
 * of the table trains here; the scan kernels bound the state size.
 */
export function trainUnsupported(c: Readonly<Partial<Cfg>>): string | null {
  if ((c.d_state ?? 16) > SCAN_MAX_STATE) {
    return `d_state ${c.d_state}: the selective-scan kernels hold at most ${SCAN_MAX_STATE} states`;
  }
  return null;
}

function checkSupported(c: Readonly<Partial<Cfg>>): void {
  const why = trainUnsupported(c);
  if (why) throw new UserError(why);
}

/**
 * Utterances of some splits with their token ids. Ids equal to the blank (<unk>: a character the
 * tokenizer never saw in training) cannot be CTC targets: they are left out of the targets (and
 * counted); the references for WER keep the original text.
 */
async function utterances(
  downloadDir: string,
  splits: readonly string[],
  tok: Tokenizer,
  blank: number,
): Promise<{ utts: Utterance[]; text: Map<string, string>; unknown: number }> {
  const utts: Utterance[] = [], text = new Map<string, string>();
  let unknown = 0;
  for (const split of splits) {
    for (const r of await readLibriSpeechCsv(join(downloadDir, "manifests", `${split}.csv`))) {
      const ids = tok.encode(r.wrd).map((t) => t.id);
      const tokens = ids.filter((id) => id !== blank);
      unknown += ids.length - tokens.length;
      utts.push({ id: r.id, split, duration: r.duration, tokens });
      text.set(r.id, r.wrd);
    }
  }
  return { utts, text, unknown };
}

export interface ValidSettings {
  epoch: number;
  blank: number;
  bos: number;
  eos: number;
  /** S2S: the joint objective's settings, and whether this epoch runs the search. */
  ctcWeight: number | null;
  labelSmoothing: number;
  search: { beamSize: number; ctcWeight: number; maxDecodeRatio: number } | null;
}

/**
 * Runs fn with the backend's matrix products in fp32 (validation, G26), then restores the
 * precision (and, on CUDA, the matmul library) the run trains with.
 */
export async function inFp32<T>(be: WasmBackend | CudaBackend, fn: () => Promise<T>): Promise<T> {
  if (be.matmulPrecision === "fp32") return await fn();
  const cublas = be instanceof CudaBackend && be.matmulMode().library === "cublas";
  be.setMatmulPrecision("fp32", { cublas });
  try {
    return await fn();
  } finally {
    be.setMatmulPrecision("bf16", { cublas });
  }
}

/**
 * Validation (§8.9, §9.4, §9.5), model in eval mode, normaliser frozen: the recipe's loss per
 * batch; CTC: greedy WER and CER; S2S: teacher-forced ACC, and WER / CER of the validation
 * searcher when `search` is given (the batch's utterances searched in lockstep by searchBatch,
 * each on its own rows of the padded encoder output, as the original's batched searcher sees
 * them; bit for bit the per-utterance search).
 */
export async function validate(
  model: AsrModel,
  norm: InputNormalization,
  store: FeatureStore,
  utts: readonly Utterance[],
  text: ReadonlyMap<string, string>,
  tok: Tokenizer,
  sampler: SamplerOptions,
  o: ValidSettings,
): Promise<ValidResult> {
  const be = model.backend, s2s = model.isS2S;
  const plan = epochBatches(utts.map((u) => u.duration), sampler, 1);
  const hyps = new Map<string, string[]>();
  const pieces = tok.model.pieces.length;
  const words = (ids: number[]) => splitWords(tok.decodeIds(ids.filter((id) => id < pieces)));
  let lossSum = 0, correct = 0, total = 0;
  for (const idx of plan) {
    const batch = await makeBatch(store, idx.map((i) => utts[i]), idx.map(() => 100), o.bos, o.eos);
    const { B, T, F } = batch;
    norm.apply(batch.feats, B, T, batch.frames, o.epoch, false);
    const ctx = evalContext(new Tape());
    let enc: Float32Array, lp: Float32Array, lens: number[], frames: number, V: number;
    try {
      const r = ctx.tape.noGrad(() => {
        const e = model.encode(ctx, Tensor.from(be, [B, T, F], batch.feats), batch.relLens);
        const U = batch.tokensBos.length / B;
        const d = s2s ? model.decode(ctx, batch.tokensBos, [B, U], e.encOut, e.encLengths) : null;
        return { e, obj: objectives(e, d, batch, { ...o, gradAccumulation: 1 }) };
      });
      lossSum += r.obj.loss;
      if (r.obj.acc) [correct, total] = [correct + r.obj.acc.correct, total + r.obj.acc.total];
      [, frames, V] = r.e.logProbs.shape;
      lens = r.e.encLengths;
      lp = r.e.logProbs.toArray();
      enc = r.e.encOut.toArray();
    } finally {
      be.resetStep();
    }
    if (!s2s) {
      for (let b = 0; b < B; b++) {
        const rows = lp.subarray(b * frames * V, (b + 1) * frames * V);
        hyps.set(batch.ids[b], words(ctcGreedy(rows, V, lens[b], o.blank)));
      }
    } else if (o.search) {
      const res = ctx.tape.noGrad(() =>
        searchBatch(model, ctx, enc, lp, lens, {
          ...o.search!,
          temperature: 1, // the validation searcher (§9.4)
          bos: o.bos,
          eos: o.eos,
          blank: o.blank,
        })
      );
      res.forEach((r, b) => hyps.set(batch.ids[b], words(r.best)));
    }
  }
  const refs = new Map(utts.map((u) => [u.id, splitWords(text.get(u.id)!)]));
  const searched = !s2s || o.search !== null;
  return {
    loss: lossSum / Math.max(1, plan.length),
    wer: searched ? scoreCorpus(refs, hyps).stats.wer : null,
    cer: searched ? scoreCorpus(refs, hyps, { chars: true }).stats.wer : null,
    acc: s2s ? (100 * correct) / Math.max(1, total) : null,
  };
}

/**
 * The kept set after an epoch (G5): the `n` best by the criterion (CTC: min WER; S2S: max ACC;
 * earlier epoch on ties) ∪ the `n` newest.
 */
export function keptAfter(all: readonly Kept[], n: number, by: "wer" | "acc" = "wer"): Kept[] {
  const key = (k: Kept) => by === "wer" ? (k.wer ?? Infinity) : -(k.acc ?? -Infinity);
  const best = [...all].sort((a, b) => key(a) - key(b) || a.epoch - b.epoch).slice(0, n);
  const recent = [...all].sort((a, b) => b.epoch - a.epoch).slice(0, n);
  const epochs = new Set([...best, ...recent].map((k) => k.epoch));
  return all.filter((k) => epochs.has(k.epoch)).sort((a, b) => a.epoch - b.epoch);
}

/** Element-wise arithmetic mean (float64 sums, in file order) of state_dict files. */
export function averageStateDicts(
  files: readonly Map<string, SafeTensor>[],
): Map<string, SafeTensor> {
  const out = new Map<string, SafeTensor>();
  for (const [name, t0] of files[0]) {
    const acc = new Float64Array(t0.data.length);
    for (const f of files) {
      const d = f.get(name)!.data as Float32Array;
      for (let i = 0; i < acc.length; i++) acc[i] += d[i];
    }
    out.set(name, {
      dtype: "F32",
      shape: t0.shape,
      data: Float32Array.from(acc, (x) => x / files.length),
    });
  }
  return out;
}

const keptName = (epoch: number) => `epoch_${String(epoch).padStart(4, "0")}.safetensors`;

export function makeTrainStage(opts: TrainStageOptions = {}) {
  return defineStage<Experiment, Keys>({
    name: "train",
    version: 2,
    description: "trains the model, validates each epoch, averages the kept checkpoints",
    reads: READS,
    after: ["fbank", "tokenizer", "download"],
    usesKernels: true,
    async run(ctx) {
      const c = ctx.config;
      checkSupported(c);
      const tok = await loadTokenizer(join(ctx.inputs.tokenizer.path, "tokenizer.model"));
      const train = await utterances(
        ctx.inputs.download.path,
        c.train_splits!,
        tok,
        c.blank_index!,
      );
      const dev = await utterances(ctx.inputs.download.path, c.dev_splits!, tok, c.blank_index!);
      for (const [what, u] of [["training", train], ["dev", dev]] as const) {
        if (u.unknown > 0) {
          ctx.progress.log(`train: ${u.unknown} unknown tokens left out of the ${what} targets`);
        }
      }
      const store = await FeatureStore.open(ctx.inputs.fbank.path, [
        ...c.train_splits!,
        ...c.dev_splits!,
      ]);
      if (store.nMels !== c.n_mels) {
        throw new UserError(`n_mels is ${c.n_mels} but the feature store holds ${store.nMels}`);
      }
      const trainSampler: SamplerOptions = {
        maxBatchLength: c.max_batch_length_train!,
        numBuckets: c.num_bucket!,
        maxBatchEx: c.max_batch_ex!,
        shuffle: c.shuffle!,
        batchOrdering: c.batch_ordering!,
        // CTC recipes run under DDP, which re-seeds the sampler each epoch; the single-process S2S
        // recipes regenerate the same batches every epoch (G6).
        reseedEachEpoch: c.decoder_module === null,
      };
      const validSampler: SamplerOptions = {
        ...trainSampler,
        maxBatchLength: c.max_batch_length_val!,
        shuffle: false,
        batchOrdering: "ascending", // §8.4: validation sorted by ascending duration
      };
      const settings = stepSettings(c);
      const s2s = c.decoder_module !== null;

      const be = await createBackend(opts.threads ?? defaultThreads());
      if (c.precision === "bf16") {
        // The recipe's bf16 autocast, as far as this build goes: matrix products take bf16 inputs
        // with fp32 accumulation, and what only they read is stored in bf16; weights, optimiser
        // state, norms, softmax and losses stay fp32; validation runs in fp32 (G26: inFp32).
        // Both backends.
        be.setMatmulPrecision("bf16");
      }
      ctx.progress.log(
        `train: computing on ${be.name}` +
          (be instanceof CudaBackend
            ? ` (${be.deviceName}, matmul ${be.matmulMode().precision})`
            : ` (${be.threads} threads, matmul ${be.matmulPrecision})`),
      );
      const keptDir = join(ctx.scratch, "kept");
      const logPath = join(ctx.scratch, "train_log.jsonl");
      await Deno.mkdir(keptDir, { recursive: true });
      try {
        const model = buildModel(be, c);
        initialize(model, c.seed!);
        const norm = new InputNormalization(c.n_mels!, c.update_until_epoch!);
        const trainer = new AsrTrainer(model, norm, settings);
        let state: TrainState = {
          version: 2,
          epoch: 0,
          batches_done: 0,
          counters: { ...trainer.counters },
          normalizer: norm.state(),
          history: [],
          kept: [],
          log_bytes: 0,
        };
        const last = await ctx.checkpoints.latest();
        if (last) {
          const parsed = StateSchema.safeParse(JSON.parse(await last.readText("state.json")));
          if (!parsed.success) {
            throw new Error(`${last.dir}/state.json: ${parsed.error.issues[0].message}`);
          }
          state = parsed.data;
          loadStateDict(
            model,
            parseSafetensors(await last.read("model.safetensors"), "model.safetensors"),
            join(last.dir, "model.safetensors"),
          );
          trainer.loadOptimizer(
            parseSafetensors(await last.read("optimizer.safetensors")).tensors,
            join(last.dir, "optimizer.safetensors"),
          );
          trainer.counters = { ...state.counters };
          norm.load(state.normalizer);
          ctx.progress.log(
            `train: resuming in epoch ${state.epoch + 1} after ${state.batches_done} batches ` +
              `(update ${state.counters.updates})`,
          );
        }
        await truncateLog(logPath, state.log_bytes);
        const log = await Deno.open(logPath, { append: true, create: true });
        // Normalisation and SpecAugment of the next batch run in a worker while this one trains.
        const prep = new BatchPrep(c.n_mels!, c.update_until_epoch!, settings);
        const enc = new TextEncoder();
        const writeLine = async (o: Record<string, unknown>) => {
          await log.write(enc.encode(JSON.stringify(o) + "\n"));
        };
        try {
          const epochs = c.number_of_epochs!;
          const everyMs = (opts.checkpointMinutes ?? 5) * 60_000;
          let lastSave = performance.now();
          const saveCheckpoint = async (modelBytes: Uint8Array, info: CheckpointInfo) => {
            await log.sync();
            state.counters = { ...trainer.counters };
            state.normalizer = norm.state();
            state.log_bytes = (await Deno.stat(logPath)).size;
            await ctx.checkpoints.save(trainer.counters.micro, {
              "model.safetensors": modelBytes,
              "optimizer.safetensors": formatSafetensors(trainer.optimizerTensors()),
              "state.json": JSON.stringify(state, null, 1),
            });
            lastSave = performance.now();
            await opts.afterCheckpoint?.(info);
          };
          for (let epoch = state.epoch + 1; epoch <= epochs; epoch++) {
            let batchesDone = epoch === state.epoch + 1 ? state.batches_done : 0;
            const plan = epochBatches(train.utts.map((u) => u.duration), trainSampler, epoch);
            const bar = ctx.progress.bar(`train epoch ${epoch}/${epochs}`, {
              unit: "steps",
              total: plan.length - batchesDone, // steps left in the epoch: the bar shows an ETA
            });
            prep.reset(norm.state()); // the statistics after the last batch trained on
            const raw = trainEpoch(store, train.utts, trainSampler, {
              epoch,
              seed: c.seed!,
              speeds: c.speed_changes!,
              bos: c.bos_index!,
              eos: c.eos_index!,
              skip: batchesDone,
            });
            for await (
              const { batch, normalizer } of prep.ahead(raw, epoch, trainer.counters.micro)
            ) {
              const t0 = performance.now();
              const r = stepOrExplain(trainer, batch, epoch, c, normalizer);
              const sec = (performance.now() - t0) / 1000;
              await writeLine({
                epoch,
                step: trainer.counters.micro,
                update: r.update?.n ?? null,
                loss: r.loss,
                loss_ctc: r.lossCtc,
                loss_seq: r.lossSeq,
                acc: r.acc ? r.acc.correct / Math.max(1, r.acc.total) : null,
                lr: r.update?.lr ?? null,
                grad_norm: r.update?.gradNorm ?? null,
                batch: batch.B,
                audio_s_per_s: r.audioSeconds / sec,
                memory_mb: Math.round(be.memoryBytes() / 2 ** 20),
                step_ms: Math.round(sec * 1000),
              });
              bar.add(1);
              bar.note(`loss ${r.loss.toFixed(3)}`);
              batchesDone++;
              const due = performance.now() - lastSave >= everyMs ||
                (opts.checkpointEverySteps !== undefined &&
                  trainer.counters.micro % opts.checkpointEverySteps === 0);
              // Only on accumulation boundaries: no half-accumulated gradients to save.
              if (due && trainer.counters.epochMicro % c.grad_accumulation_factor! === 0) {
                state.batches_done = batchesDone;
                const info = { epoch, batchesDone, endOfEpoch: false };
                await saveCheckpoint(formatSafetensors(stateDictTensors(model)), info);
              }
            }
            bar.finish();
            trainer.endEpoch();
            const searchNow = epoch % c.valid_search_interval! === 0 || epoch === epochs;
            // G26: the recipe trains under bf16 autocast but validates (and tests) in fp32
            const v = await inFp32(
              be,
              () =>
                validate(model, norm, store, dev.utts, dev.text, tok, validSampler, {
                  epoch,
                  blank: c.blank_index!,
                  bos: c.bos_index!,
                  eos: c.eos_index!,
                  ctcWeight: settings.ctcWeight,
                  labelSmoothing: settings.labelSmoothing,
                  search: s2s && searchNow
                    ? {
                      beamSize: c.valid_beam_size!,
                      ctcWeight: c.ctc_weight_decode!,
                      maxDecodeRatio: c.max_decode_ratio!,
                    }
                    : null,
                }),
            );
            const modelBytes = formatSafetensors(stateDictTensors(model));
            await Deno.writeFile(join(keptDir, keptName(epoch)), modelBytes);
            const kept = keptAfter(
              [...state.kept, { epoch, wer: v.wer, acc: v.acc, sha256: sha256Hex(modelBytes) }],
              c.avg_checkpoints!,
              s2s ? "acc" : "wer",
            );
            await writeLine({
              epoch,
              valid_loss: v.loss,
              wer: v.wer,
              cer: v.cer,
              acc: v.acc,
              kept: kept.map((k) => k.epoch),
            });
            const pct = (x: number | null, name: string) =>
              x === null ? "" : `, ${name} ${x.toFixed(2)}%`;
            ctx.progress.log(
              `train: epoch ${epoch}: valid loss ${v.loss.toFixed(3)}` + pct(v.acc, "ACC") +
                pct(v.wer, "WER") + pct(v.cer, "CER"),
            );
            const prevKept = state.kept;
            state = {
              ...state,
              epoch,
              batches_done: 0,
              history: [
                ...state.history,
                { epoch, valid_loss: v.loss, wer: v.wer, cer: v.cer, acc: v.acc },
              ],
              kept,
            };
            const info = { epoch, batchesDone, endOfEpoch: true };
            await saveCheckpoint(modelBytes, info);
            // Models referenced by neither this checkpoint nor the one before are no longer needed.
            const needed = new Set([...kept, ...prevKept].map((k) => keptName(k.epoch)));
            for await (const e of Deno.readDir(keptDir)) {
              if (!needed.has(e.name)) await Deno.remove(join(keptDir, e.name));
            }
          }
        } finally {
          prep.close();
          log.close();
        }

        const files: Map<string, SafeTensor>[] = [];
        for (const k of state.kept) {
          const path = join(keptDir, keptName(k.epoch));
          const bytes = await Deno.readFile(path);
          if ((sha256Hex(bytes)) !== k.sha256) {
            throw new Error(
              `${path}: differs from the checkpoint's record; rerun from scratch (gc)`,
            );
          }
          files.push(parseSafetensors(bytes, path).tensors);
        }
        const avg = averageStateDicts(files);
        await ctx.writeFile(
          "model.safetensors",
          formatSafetensors(avg, { averaged_epochs: state.kept.map((k) => k.epoch).join(",") }),
        );
        await ctx.writeFile("normalizer.json", JSON.stringify(state.normalizer) + "\n");
        await ctx.writeFile("train_log.jsonl", await Deno.readFile(logPath));
        await ctx.writeFile(
          "tokens.json",
          JSON.stringify(
            {
              pieces: tok.model.pieces.length,
              output_neurons: c.output_neurons,
              blank_index: c.blank_index,
              bos_index: c.bos_index,
              eos_index: c.eos_index,
              tokenizer: ctx.inputs.tokenizer.contentHash,
            },
            null,
            1,
          ) + "\n",
        );
        await ctx.writeFile(
          "train.json",
          JSON.stringify(
            {
              epochs: state.epoch,
              updates: state.counters.updates,
              micro_batches: state.counters.micro,
              averaged: state.kept,
              history: state.history,
            },
            null,
            1,
          ) + "\n",
        );
        trainer.free();
        model.free();
      } finally {
        be.close();
      }
    },
  });
}

/** One training step; running out of kernel memory becomes an error that says what to lower. */
export function stepOrExplain(
  trainer: Pick<AsrTrainer, "step">,
  batch: Batch,
  epoch: number,
  c: Readonly<Partial<Cfg>>,
  prepared?: NormalizerState,
): ReturnType<AsrTrainer["step"]> {
  try {
    return trainer.step(batch, epoch, prepared);
  } catch (e) {
    if (!(e instanceof OutOfMemoryError)) throw e;
    const seconds = batch.frames.reduce((a, n) => a + n, 0) / 100;
    throw new UserError(
      `out of memory in a training step of epoch ${epoch}: a batch of ${batch.B} utterances, ` +
        `${batch.T} frames padded (${seconds.toFixed(1)} s of audio). Lower ` +
        `max_batch_length_train (now ${c.max_batch_length_train} s) or max_batch_ex (now ` +
        `${c.max_batch_ex}), e.g. --max_batch_length_train ${
          Math.max(1, Math.floor(c.max_batch_length_train! / 2))
        }, and raise grad_accumulation_factor to keep the effective batch`,
      1,
    );
  }
}

async function truncateLog(path: string, bytes: number): Promise<void> {
  try {
    await Deno.truncate(path, bytes);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    if (bytes > 0) throw new Error(`${path}: the training log is missing (rerun from scratch)`);
  }
}
