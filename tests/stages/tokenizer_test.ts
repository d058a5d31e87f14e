/**
 * The tokenizer stage through the real engine: on the download stage's manifests of a generated
 * mini corpus (when espeak-ng, sox and flac are installed), and on a stand-in download stage
 * that writes train.csv directly (always), for the outputs, the cache and the checks.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Experiment } from "../../src/config/experiment.ts";
import { loadExperiment } from "../../src/config/load.ts";
import { formatLibriSpeechCsv } from "../../src/data/librispeech.ts";
import { runPipeline } from "../../src/pipeline/engine.ts";
import { silentProgress } from "../../src/pipeline/progress.ts";
import { defineStage, type Stage } from "../../src/pipeline/stage.ts";
import { ArtifactStore } from "../../src/pipeline/store.ts";
import { makeDownloadStage } from "../../src/stages/download.ts";
import { makeTokenizerStage } from "../../src/stages/tokenizer.ts";
import { loadTokenizer } from "../../src/text/model_file.ts";
import { makeMiniCorpus, toolVersions } from "../fixtures/make_mini_corpus.ts";
import { miniCorpusTranscripts } from "../text/corpora.ts";

let tools = true;
try {
  await toolVersions();
} catch (e) {
  tools = false;
  console.warn(`${(e as Error).message}: skipping the tokenizer stage test on a real download`);
}

/** A "download" stage that only writes manifests/train.csv with these transcripts. */
function fakeDownload(transcripts: readonly string[]): Stage<Experiment> {
  return defineStage<Experiment, never>({
    name: "download",
    version: 1,
    description: "stand-in: train.csv only",
    reads: [],
    after: [],
    async run(ctx) {
      const rows = transcripts.map((wrd, i) => ({
        id: `1-1-${String(i).padStart(4, "0")}`,
        duration: 1,
        wav: `x/${i}.flac`,
        spk_id: "1",
        wrd,
      }));
      await ctx.writeFile("manifests/train.csv", formatLibriSpeechCsv(rows));
    },
  });
}

async function run(
  experiment: string,
  download: Stage<Experiment>,
  overrides: Record<string, string> = {},
  cache?: string,
) {
  cache ??= await Deno.makeTempDir({ prefix: "cm-tokstage-" });
  const config = loadExperiment(experiment, overrides);
  const record = await runPipeline(
    { experiment, config, stages: [download, makeTokenizerStage()] },
    { store: new ArtifactStore(cache), progress: silentProgress },
  );
  const tok = record.stages.find((s) => s.stage === "tokenizer")!;
  return { cache, record, tok, dir: new ArtifactStore(cache).artifactDir("tokenizer", tok.key) };
}

const train = miniCorpusTranscripts().get("train-clean-100")!;

Deno.test("tokenizer stage: tiny (unigram 128) writes a loadable model, vocab.txt, summary", async () => {
  const r = await run("tiny", fakeDownload(train));
  assert.equal(r.tok.status, "ran");
  const tok = await loadTokenizer(join(r.dir, "tokenizer.model"));
  assert.equal(tok.size, 128);
  assert.equal(tok.decodePieces(tok.encode(train[0]).map((t) => t.piece)), train[0]);
  const vocab = (await Deno.readTextFile(join(r.dir, "vocab.txt"))).trimEnd().split("\n");
  assert.deepEqual(vocab.slice(0, 3), ["<unk>\t0", "<s>\t0", "</s>\t0"]);
  assert.equal(vocab.length, 128);
  const summary = JSON.parse(await Deno.readTextFile(join(r.dir, "tokenizer.json")));
  assert.equal(summary.pieces, 128);
  assert.equal(summary.training.sentences, 1200);

  // Same inputs: reused. Another vocabulary size: a new key.
  const again = await run("tiny", fakeDownload(train), {}, r.cache);
  assert.equal(again.tok.status, "reused");
  const other = await run(
    "tiny",
    fakeDownload(train),
    { vocab_size: "100", output_neurons: "100" },
    r.cache,
  );
  assert.equal(other.tok.status, "ran");
  assert.notEqual(other.tok.key, r.tok.key);
});

Deno.test("tokenizer stage: tiny_ctc (char) has <unk> <s> </s> ▁ and the letters", async () => {
  const r = await run("tiny_ctc", fakeDownload(train));
  const tok = await loadTokenizer(join(r.dir, "tokenizer.model"));
  const chars = new Set(train.join(" ").replaceAll(" ", ""));
  assert.equal(tok.size, 3 + 1 + chars.size);
  assert.equal(tok.model.pieces[3].piece, "▁");
  assert.ok(tok.size <= 31);
});

Deno.test("tokenizer stage: more pieces than output_neurons is a clear error", async () => {
  // Lower-case text adds 26 more characters: 57 char pieces do not fit 31 outputs.
  const text = [...train, ...train.map((s) => s.toLowerCase())];
  await assert.rejects(
    () => run("tiny_ctc", fakeDownload(text)),
    /tokenizer.*has \d+ pieces but output_neurons is 31.*set output_neurons to at least \d+/,
  );
});

Deno.test({
  name: "tokenizer stage: on the download stage's manifests of a generated corpus",
  ignore: !tools,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cm-tokcorpus-" });
    const c = await makeMiniCorpus({
      out: dir,
      perChapter: { "train-clean-100": 3, "dev-clean": 1, "test-clean": 1 },
      splits: ["train-clean-100", "dev-clean", "test-clean"],
    });
    const r = await run("tiny_ctc", makeDownloadStage(), {
      data_folder: c.root,
      train_splits: "[train-clean-100]",
      dev_splits: "[dev-clean]",
      test_splits: "[test-clean]",
    });
    assert.equal(r.tok.status, "ran");
    const tok = await loadTokenizer(join(r.dir, "tokenizer.model"));
    const words = c.utterances.filter((u) => u.split === "train-clean-100").map((u) => u.words);
    assert.equal(words.length, 60);
    for (const w of words) assert.equal(tok.decodeIds(tok.encode(w).map((t) => t.id)), w);
  },
});
