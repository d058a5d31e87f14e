/**
 * The train stage (CTC, and S2S: ConMamba + Transformer decoder) on a very small generated corpus, through the engine: download, fbank,
 * tokenizer and train run; the artifact's averaged model loads with the original's names; a run
 * interrupted after its first epoch checkpoint and resumed ends with weights bitwise identical to
 * an uninterrupted run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadExperiment } from "../../src/config/load.ts";
import { loadStateDictFile } from "../../src/nn/state_dict.ts";
import { runPipeline } from "../../src/pipeline/engine.ts";
import { silentProgress } from "../../src/pipeline/progress.ts";
import { ArtifactStore } from "../../src/pipeline/store.ts";
import { makeDownloadStage } from "../../src/stages/download.ts";
import { makeFbankStage } from "../../src/stages/fbank.ts";
import { makeTokenizerStage } from "../../src/stages/tokenizer.ts";
import {
  averageStateDicts,
  type CheckpointInfo,
  inFp32,
  keptAfter,
  makeTrainStage,
  stepOrExplain,
  type TrainStageOptions,
} from "../../src/stages/train.ts";
import { buildModel } from "../../src/nn/model_config.ts";
import { UserError } from "../../src/pipeline/errors.ts";
import { OutOfMemoryError } from "../../src/tensor/linear_allocator.ts";
import type { Batch } from "../../src/train/batches.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { makeMiniCorpus, toolVersions } from "../fixtures/make_mini_corpus.ts";

let tools = true;
try {
  await toolVersions();
} catch (e) {
  tools = false;
  console.warn(`${(e as Error).message}: skipping the train stage tests`);
}

const TINY = {
  train_splits: "[train-clean-100]",
  dev_splits: "[dev-clean]",
  test_splits: "[test-clean]",
  number_of_epochs: "2",
  avg_checkpoints: "1",
  d_model: "16",
  d_ffn: "32",
  num_encoder_layers: "1",
  cnn_out_channels: "[4, 4]",
  input_size: "80",
  speed_changes: "[95, 100]",
  n_warmup_steps: "4",
};

let corpusRoot: string | null = null;
async function corpus(): Promise<string> {
  if (corpusRoot) return corpusRoot;
  const dir = await Deno.makeTempDir({ prefix: "cm-trainstage-" });
  const c = await makeMiniCorpus({
    out: dir,
    perChapter: { "train-clean-100": 2, "dev-clean": 1, "test-clean": 1 },
    splits: ["train-clean-100", "dev-clean", "test-clean"],
  });
  corpusRoot = c.root;
  return corpusRoot;
}

/** The S2S variant (ConMamba + Transformer decoder) of the same shrunk model. */
const S2S = { ...TINY, num_decoder_layers: "1", vocab_size: "40", output_neurons: "40" };
const VARIANTS: [string, Record<string, string>][] = [["tiny_ctc", TINY], ["tiny", S2S]];

async function run(
  cache: string,
  o: TrainStageOptions = {},
  exp = "tiny_ctc",
  ov: Record<string, string> = TINY,
) {
  const config = loadExperiment(exp, { ...ov, data_folder: await corpus() });
  return await runPipeline({
    experiment: exp,
    config,
    stages: [
      makeDownloadStage(),
      makeFbankStage({ workers: 2 }),
      makeTokenizerStage(),
      makeTrainStage({ threads: 2, ...o }),
    ],
  }, { store: new ArtifactStore(cache), progress: silentProgress });
}

Deno.test("train stage: kept checkpoints are the n best (CTC: WER, S2S: ACC) and the n most recent", () => {
  const k = (epoch: number, wer: number) => ({ epoch, wer, acc: 100 - wer, sha256: "" });
  const all = [k(1, 50), k(2, 30), k(3, 30), k(4, 40), k(5, 60)];
  assert.deepEqual(keptAfter(all, 1).map((x) => x.epoch), [2, 5]);
  assert.deepEqual(keptAfter(all, 2).map((x) => x.epoch), [2, 3, 4, 5]);
  // S2S: max ACC; epochs without a search have no WER.
  const s = all.map((x) => ({ ...x, wer: null }));
  assert.deepEqual(keptAfter(s, 1, "acc").map((x) => x.epoch), [2, 5]);
  s[3].acc = 99;
  assert.deepEqual(keptAfter(s, 1, "acc").map((x) => x.epoch), [4, 5]);
});

Deno.test("train stage: running out of kernel memory names the batch and what to lower", () => {
  const oom = {
    step: () => {
      throw new OutOfMemoryError(1 << 30, null);
    },
  };
  const batch = { B: 12, T: 1500, frames: new Array(12).fill(1000) } as unknown as Batch;
  const cfg = { max_batch_length_train: 120, max_batch_ex: 64 };
  assert.throws(() => stepOrExplain(oom, batch, 3, cfg), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(
      e.message,
      /epoch 3: a batch of 12 utterances, 1500 frames padded \(120\.0 s of audio\)\. Lower max_batch_length_train \(now 120 s\) or max_batch_ex \(now 64\), e\.g\. --max_batch_length_train 60/,
    );
    return true;
  });
  const other = {
    step: () => {
      throw new RangeError("x");
    },
  };
  assert.throws(() => stepOrExplain(other, batch, 3, cfg), RangeError);
});

Deno.test("train stage: the average of checkpoints is element-wise, buffers included", () => {
  const f = (a: number[]) =>
    new Map([["x", { dtype: "F32" as const, shape: [a.length], data: Float32Array.from(a) }]]);
  const avg = averageStateDicts([f([1, 2, 3]), f([2, 2, 0]), f([0, 5, 0])]);
  assert.deepEqual(avg.get("x")!.data, Float32Array.from([1, 3, 1]));
  assert.deepEqual(averageStateDicts([f([0.1, 7])]).get("x")!.data, Float32Array.from([0.1, 7]));
});

for (const [exp, ov] of VARIANTS) {
  Deno.test({
    name:
      `train stage (${exp}): runs, its artifact loads; interrupted and resumed it ends bitwise equal`,
    ignore: !tools,
    async fn() {
      const ref = await Deno.makeTempDir({ prefix: "cm-cache-" });
      const r = await run(ref, {}, exp, ov);
      const tr = r.stages.find((s) => s.stage === "train")!;
      assert.equal(tr.status, "ran");
      const art = new ArtifactStore(ref).artifactDir("train", tr.key);
      for (const f of ["model.safetensors", "normalizer.json", "train_log.jsonl", "tokens.json"]) {
        assert.ok((await Deno.stat(join(art, f))).size > 0, f);
      }
      const lines = (await Deno.readTextFile(join(art, "train_log.jsonl"))).trim().split("\n")
        .map((l) => JSON.parse(l));
      const steps = lines.filter((l) => "loss" in l), epochs = lines.filter((l) => "wer" in l);
      assert.equal(epochs.length, 2);
      assert.ok(steps.length >= 2 && steps.every((l) => Number.isFinite(l.loss)));
      assert.equal(steps[0].lr, 0.002); // G7: the first update at the peak
      console.log(
        `steps: ${steps.length}; losses ${steps.map((l) => l.loss.toFixed(1)).join(" ")}`,
      );
      console.log(`epochs: ${JSON.stringify(epochs)}`);

      const be = await WasmBackend.create({ threads: 1 });
      const config = loadExperiment(exp, { ...ov });
      const model = buildModel(be, config);
      await loadStateDictFile(model, join(art, "model.safetensors"));
      model.free();
      be.close();

      // Interrupted at a checkpoint inside epoch 1, resumed and interrupted again right after the
      // epoch-end checkpoint of epoch 1, then resumed to the end.
      const cache = await Deno.makeTempDir({ prefix: "cm-cache-" });
      const seen: CheckpointInfo[] = [];
      await assert.rejects(
        run(
          cache,
          {
            checkpointEverySteps: 2,
            afterCheckpoint: (at) => {
              seen.push(at);
              throw new Error("interrupted for the test");
            },
          },
          exp,
          ov,
        ),
        /interrupted for the test/,
      );
      assert.deepEqual(seen, [{ epoch: 1, batchesDone: 2, endOfEpoch: false }]);
      await assert.rejects(
        run(
          cache,
          {
            afterCheckpoint: (at) => {
              seen.push(at);
              if (at.endOfEpoch) throw new Error("interrupted for the test");
            },
          },
          exp,
          ov,
        ),
        /interrupted for the test/,
      );
      assert.equal(seen.length, 2);
      assert.equal(seen[1].epoch, 1);
      assert.ok(seen[1].endOfEpoch && seen[1].batchesDone > 2);
      const r2 = await run(cache, {}, exp, ov);
      const tr2 = r2.stages.find((s) => s.stage === "train")!;
      assert.equal(tr2.status, "resumed");
      const art2 = new ArtifactStore(cache).artifactDir("train", tr2.key);
      assert.deepEqual(
        await Deno.readFile(join(art2, "model.safetensors")),
        await Deno.readFile(join(art, "model.safetensors")),
      );
      assert.deepEqual(
        await Deno.readTextFile(join(art2, "normalizer.json")),
        await Deno.readTextFile(join(art, "normalizer.json")),
      );
      const lines2 = (await Deno.readTextFile(join(art2, "train_log.jsonl"))).trim().split("\n");
      assert.equal(lines2.length, lines.length);
      await Deno.remove(ref, { recursive: true });
      await Deno.remove(cache, { recursive: true });
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (corpusRoot) Deno.removeSync(join(corpusRoot, ".."), { recursive: true });
});

Deno.test("train stage: validation runs its products in fp32 and training resumes in bf16 (G26)", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    be.setMatmulPrecision("bf16");
    assert.equal(await inFp32(be, () => Promise.resolve(be.matmulPrecision)), "fp32");
    assert.equal(be.matmulPrecision, "bf16");
    await assert.rejects(inFp32(be, () => Promise.reject(new Error("validation failed"))));
    assert.equal(be.matmulPrecision, "bf16"); // restored after a failure too
    be.setMatmulPrecision("fp32");
    assert.equal(await inFp32(be, () => Promise.resolve(be.matmulPrecision)), "fp32");
    assert.equal(be.matmulPrecision, "fp32");
  } finally {
    be.close();
  }
});
