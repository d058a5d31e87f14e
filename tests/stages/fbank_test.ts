/**
 * The fbank stage on a small generated corpus, through the engine: contents against a direct
 * computation, speeds per split, statistics, the reader, bitwise repeatability across worker
 * counts, and resumption after kill -9 (through the real CLI).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fbank, fbankSettings } from "../../src/audio/fbank.ts";
import { readFlac } from "../../src/audio/flac.ts";
import { SpeedPerturb } from "../../src/audio/speed_perturb.ts";
import { loadExperiment } from "../../src/config/load.ts";
import { FeatureStore } from "../../src/data/feature_store.ts";
import { runPipeline } from "../../src/pipeline/engine.ts";
import { silentProgress } from "../../src/pipeline/progress.ts";
import { ArtifactStore } from "../../src/pipeline/store.ts";
import { makeDownloadStage } from "../../src/stages/download.ts";
import { makeFbankStage } from "../../src/stages/fbank.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { makeMiniCorpus, toolVersions } from "../fixtures/make_mini_corpus.ts";

let tools = true;
try {
  await toolVersions();
} catch (e) {
  tools = false;
  console.warn(`${(e as Error).message}: skipping the fbank stage tests`);
}

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const OVERRIDES = {
  train_splits: "[train-clean-100]",
  dev_splits: "[dev-clean]",
  test_splits: "[test-clean]",
};
let corpusRoot: string | null = null;
async function corpus(): Promise<string> {
  if (corpusRoot) return corpusRoot;
  const dir = await Deno.makeTempDir({ prefix: "cm-fbstage-" });
  const c = await makeMiniCorpus({
    out: dir,
    perChapter: { "train-clean-100": 2, "dev-clean": 2, "test-clean": 2, "test-other": 2 },
    splits: ["train-clean-100", "dev-clean", "test-clean"],
  });
  corpusRoot = c.root;
  return corpusRoot;
}

async function run(cache: string, workers: number) {
  const config = loadExperiment("tiny", { ...OVERRIDES, data_folder: await corpus() });
  return await runPipeline(
    { experiment: "tiny", config, stages: [makeDownloadStage(), makeFbankStage({ workers })] },
    { store: new ArtifactStore(cache), progress: silentProgress },
  );
}

Deno.test({
  name: "fbank stage: stored features equal a direct computation; speeds per split; stats",
  ignore: !tools,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "cm-cache-" });
    const r = await run(cache, 2);
    const fb = r.stages.find((s) => s.stage === "fbank")!;
    const art = new ArtifactStore(cache).artifactDir("fbank", fb.key);
    const store = await FeatureStore.open(art, ["train-clean-100", "dev-clean", "test-clean"]);
    assert.deepEqual(store.speeds("train-clean-100").sort(), [100, 105, 95]);
    assert.deepEqual(store.speeds("dev-clean"), [100]);

    const be = await WasmBackend.create({ threads: 1 });
    const s = fbankSettings(loadExperiment("tiny"));
    const fbank = new Fbank(be, s), sp = new SpeedPerturb(be);
    const train = store.index["train-clean-100"].speeds["95"][0];
    for (const id of train.ids.slice(0, 3)) {
      const [spk, ch] = id.split("-");
      const audio = await readFlac(join(await corpus(), "train-clean-100", spk, ch, `${id}.flac`));
      for (const speed of [95, 100, 105]) {
        const want = fbank.compute(sp.apply(audio.channels[0], speed));
        const got = await store.read("train-clean-100", speed, id);
        assert.deepEqual(got, want, `${id} at speed ${speed}`);
      }
    }
    fbank.free();
    sp.free();
    be.close();

    const stats = JSON.parse(await Deno.readTextFile(join(art, "stats.json")));
    assert.equal(stats.mean.length, 80);
    const total = store.index["train-clean-100"].speeds["100"].flatMap((x) => x.frames)
      .reduce((a, b) => a + b, 0);
    assert.equal(stats.frames, total);
    assert.ok(stats.std.every((v: number) => v > 0));
    await Deno.remove(cache, { recursive: true });
  },
});

Deno.test({
  name: "fbank stage: bitwise the same artifact with 1 worker and with 2",
  ignore: !tools,
  async fn() {
    const a = await Deno.makeTempDir({ prefix: "cm-cache-" });
    const b = await Deno.makeTempDir({ prefix: "cm-cache-" });
    const ra = await run(a, 1), rb = await run(b, 2);
    const ha = ra.stages.find((s) => s.stage === "fbank")!.contentHash;
    const hb = rb.stages.find((s) => s.stage === "fbank")!.contentHash;
    assert.equal(ha, hb);
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  },
});

Deno.test({
  name: "fbank stage: killed after some shards, the rerun resumes and converges to the same bytes",
  ignore: !tools,
  async fn() {
    const root = await corpus();
    const ref = await Deno.makeTempDir({ prefix: "cm-cache-" });
    const refHash = (await run(ref, 2)).stages.find((s) => s.stage === "fbank")!.contentHash;
    const cache = await Deno.makeTempDir({ prefix: "cm-cache-" });
    const args = [
      "run",
      "-A",
      MAIN,
      "pipeline",
      "tiny",
      "--until",
      "fbank",
      "--cache",
      cache,
      "--data_folder",
      root,
      ...Object.entries(OVERRIDES).flatMap(([k, v]) => [`--${k}`, v]),
    ];
    const child = new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "null" })
      .spawn();
    // Wait until a first shard has been moved into the stage's output, then kill.
    const partial = join(cache, "partial", "fbank");
    for (let i = 0; i < 2000; i++) {
      const keys = await Array.fromAsync(Deno.readDir(partial)).catch(() => []);
      const shards = keys.length
        ? await Array.fromAsync(Deno.readDir(join(partial, keys[0].name, "scratch"))).catch(
          () => [],
        )
        : [];
      if (shards.some((e) => e.name.endsWith(".result.json"))) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill("SIGKILL");
    await child.status;
    const rerun = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(rerun.stdout);
    assert.equal(rerun.code, 0, new TextDecoder().decode(rerun.stderr));
    assert.match(out, /fbank\s+resumed/);
    const m = /fbank\s+resumed.*content ([0-9a-f]{12})/.exec(out)!;
    assert.equal(m[1], refHash.slice(0, 12));
    await Deno.remove(ref, { recursive: true });
    await Deno.remove(cache, { recursive: true });
  },
});

globalThis.addEventListener("unload", () => {
  if (corpusRoot) Deno.removeSync(join(corpusRoot, ".."), { recursive: true });
});
