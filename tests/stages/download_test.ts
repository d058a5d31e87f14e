/**
 * The download stage on the generated mini corpus: in place (--data_folder) and over loopback
 * HTTP from packed archives with injected faults, through the real engine.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadExperiment } from "../../src/config/load.ts";
import { readLibriSpeechCsv } from "../../src/data/librispeech.ts";
import { runPipeline } from "../../src/pipeline/engine.ts";
import { exists } from "../../src/pipeline/fs_util.ts";
import { silentProgress } from "../../src/pipeline/progress.ts";
import { ArtifactStore } from "../../src/pipeline/store.ts";
import { makeDownloadStage } from "../../src/stages/download.ts";
import { makeMiniCorpus, packSplit, toolVersions } from "../fixtures/make_mini_corpus.ts";
import { deadPort, type Fault, startFaultServer } from "../data/fault_server.ts";

let tools = true;
try {
  await toolVersions();
} catch (e) {
  tools = false;
  console.warn(`${(e as Error).message}: skipping the download stage tests`);
}

const SPLITS = {
  train_splits: "[train-clean-100]",
  dev_splits: "[dev-clean]",
  test_splits: "[test-clean]",
};
const PER_CHAPTER = { "train-clean-100": 2, "dev-clean": 2, "test-clean": 2, "test-other": 2 };

/** One small corpus for all tests of this file, packed as OpenSLR archives too. */
let shared: { dir: string; root: string; md5: Record<string, string> } | null = null;
async function corpus() {
  if (shared) return shared;
  const dir = await Deno.makeTempDir({ prefix: "cm-dlstage-" });
  const c = await makeMiniCorpus({
    out: dir,
    perChapter: PER_CHAPTER,
    splits: ["train-clean-100", "dev-clean", "test-clean"],
  });
  const md5: Record<string, string> = {};
  for (const s of ["train-clean-100", "dev-clean", "test-clean"] as const) {
    md5[s] = await packSplit(dir, s);
  }
  shared = { dir, root: c.root, md5 };
  return shared;
}

function run(cache: string, overrides: Record<string, string>, stage = makeDownloadStage()) {
  const config = loadExperiment("tiny", { ...SPLITS, ...overrides });
  return runPipeline(
    { experiment: "tiny", config, stages: [stage] },
    { store: new ArtifactStore(cache), progress: silentProgress },
  );
}

Deno.test({
  name: "download stage: --data_folder is used in place; manifests as the original's CSVs",
  ignore: !tools,
  async fn() {
    const { root } = await corpus();
    const cache = await Deno.makeTempDir({ prefix: "cm-cache-" });
    const r1 = await run(cache, { data_folder: root });
    assert.equal(r1.stages[0].status, "ran");
    const art = new ArtifactStore(cache).artifactDir("download", r1.stages[0].key);
    const dev = await readLibriSpeechCsv(join(art, "manifests", "dev-clean.csv"));
    assert.equal(dev.length, 10); // 5 speakers x 1 chapter x 2
    assert.ok(dev.every((r) => r.wav.startsWith(root + "/dev-clean/") && r.duration > 0.3));
    assert.match(dev[0].wrd, /^[A-Z' ]+$/);
    const train = await readLibriSpeechCsv(join(art, "manifests", "train.csv"));
    assert.deepEqual(
      train,
      await readLibriSpeechCsv(join(art, "manifests", "train-clean-100.csv")),
    );
    assert.equal(await exists(join(art, "LibriSpeech")), false, "in place: nothing copied");

    assert.equal((await run(cache, { data_folder: root })).stages[0].status, "reused");
    // The corpus is an input: a changed transcript changes the key.
    const speaker = [...Deno.readDirSync(join(root, "dev-clean"))][0].name;
    const chapter = [...Deno.readDirSync(join(root, "dev-clean", speaker))][0].name;
    const p = join(root, "dev-clean", speaker, chapter, `${speaker}-${chapter}.trans.txt`);
    const text = await Deno.readTextFile(p);
    await Deno.writeTextFile(p, text.replace(/ (\w+)\n/, " HELLO\n"));
    const r3 = await run(cache, { data_folder: root });
    await Deno.writeTextFile(p, text);
    assert.equal(r3.stages[0].status, "ran");
    assert.notEqual(r3.stages[0].key, r1.stages[0].key);
    await Deno.remove(cache, { recursive: true });
  },
});

Deno.test({
  name: "download stage: a data_folder without the split is a clear error",
  ignore: !tools,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "cm-cache-" });
    const empty = await Deno.makeTempDir();
    await assert.rejects(
      run(cache, { data_folder: empty }),
      new RegExp(`data_folder ${empty}: no train-clean-100, dev-clean, test-clean folder`),
    );
    await Deno.remove(cache, { recursive: true });
  },
});

Deno.test({
  name: "download stage: fetched over HTTP through faults, MD5-checked, extracted, relative paths",
  ignore: !tools,
  async fn() {
    const { dir, md5 } = await corpus();
    const faults: Fault[] = [{ kind: "reset", afterBytes: 20_000 }, { kind: "status", code: 503 }];
    const server = startFaultServer(dir, faults);
    const archives: Record<string, { md5: string; size: number }> = {};
    for (const [s, m] of Object.entries(md5)) {
      archives[s] = { md5: m, size: (await Deno.stat(join(dir, `${s}.tar.gz`))).size };
    }
    const stage = makeDownloadStage({
      mirrors: [server.url, `http://127.0.0.1:${deadPort()}`],
      archives,
      download: { backoffMs: 1, stallMs: 2000 },
    });
    const cache = await Deno.makeTempDir({ prefix: "cm-cache-" });
    try {
      const r = await run(cache, { data_folder: "null" }, stage);
      const art = new ArtifactStore(cache).artifactDir("download", r.stages[0].key);
      const test = await readLibriSpeechCsv(join(art, "manifests", "test-clean.csv"));
      assert.equal(test.length, 10);
      for (const row of test) {
        assert.match(row.wav, /^LibriSpeech\/test-clean\/\d+\/\d+\/[\d-]+\.flac$/);
        assert.ok(await exists(join(art, row.wav)), row.wav);
      }
      // Every archive was requested, one of them resumed with a Range after the reset.
      assert.ok(server.requests.some((q) => q.range !== null));
      // Archives are not part of the artifact, and the scratch dir is gone.
      const manifest = await new ArtifactStore(cache).get("download", r.stages[0].key);
      assert.ok(manifest!.files.every((f) => !f.path.endsWith(".tar.gz")));
      assert.deepEqual([...Deno.readDirSync(join(cache, "partial", "download"))], []);
    } finally {
      await server.close();
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "download stage: an archive whose MD5 never matches fails; nothing is extracted or published",
  ignore: !tools,
  async fn() {
    const { dir } = await corpus();
    const server = startFaultServer(dir);
    const size = (await Deno.stat(join(dir, "dev-clean.tar.gz"))).size;
    const stage = makeDownloadStage({
      mirrors: [server.url],
      archives: { "dev-clean": { md5: "f".repeat(32), size } },
      download: { backoffMs: 1, maxAttempts: 2 },
    });
    const cache = await Deno.makeTempDir({ prefix: "cm-cache-" });
    try {
      await assert.rejects(
        run(cache, {
          data_folder: "null",
          train_splits: "[dev-clean]",
          dev_splits: "[dev-clean]",
          test_splits: "[dev-clean]",
        }, stage),
        /dev-clean\.tar\.gz: failed after 2 attempts; last error: .*MD5/,
      );
      assert.deepEqual([...Deno.readDirSync(join(cache, "artifacts"))], []);
      const partial = join(cache, "partial", "download");
      const key = [...Deno.readDirSync(partial)][0].name;
      assert.equal(await exists(join(partial, key, "out", "LibriSpeech")), false);
    } finally {
      await server.close();
      await Deno.remove(cache, { recursive: true });
    }
  },
});

globalThis.addEventListener("unload", () => {
  if (shared) Deno.removeSync(shared.dir, { recursive: true });
});
