/**
 * decode + score on a tiny CTC model trained for one epoch through the real CLI: hypotheses and
 * n-best files for every test utterance, wer.txt, results.json that `conmamba results` prints.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeMiniCorpus, toolVersions } from "../fixtures/make_mini_corpus.ts";

let tools = true;
try {
  await toolVersions();
} catch (e) {
  tools = false;
  console.warn(`${(e as Error).message}: skipping the decode/score stage tests`);
}

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const OVERRIDES = [
  "--train_splits",
  "[train-clean-100]",
  "--dev_splits",
  "[dev-clean]",
  "--test_splits",
  "[test-clean]",
  "--number_of_epochs",
  "1",
  "--avg_checkpoints",
  "1",
  "--d_model",
  "16",
  "--d_ffn",
  "32",
  "--num_encoder_layers",
  "1",
  "--cnn_out_channels",
  "[4, 4]",
  "--input_size",
  "80",
  "--speed_changes",
  "[100]",
  "--n_warmup_steps",
  "4",
  "--test_beam_size",
  "8",
];

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name:
    "decode and score stages: tiny_ctc end to end through the CLI, results verb reads the table",
  ignore: !tools,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cm-decode-" });
    const c = await makeMiniCorpus({
      out: dir,
      perChapter: { "train-clean-100": 2, "dev-clean": 1, "test-clean": 2 },
      splits: ["train-clean-100", "dev-clean", "test-clean"],
    });
    const cache = join(dir, "cache");
    const r = await cli([
      "pipeline",
      "tiny_ctc",
      "--cache",
      cache,
      "--data_folder",
      c.root,
      ...OVERRIDES,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /decode\s+ran/);
    assert.match(r.stdout, /score\s+ran/);
    assert.match(r.stdout, /tiny_ctc: 6 stage\(s\)/);
    const json = await cli(["results", "tiny_ctc", "--json", "--cache", cache]);
    assert.equal(json.code, 0, json.stderr);
    const res = JSON.parse(json.stdout);
    assert.deepEqual(Object.keys(res), ["test-clean"]);
    assert.equal(res["test-clean"].sentences, 10); // 5 speakers x 1 chapter x 2
    assert.ok(res["test-clean"].words > 20);
    assert.ok(res["test-clean"].wer >= 0);
    // The artifacts: one hypothesis line per test utterance, n-best lists, wer.txt.
    const dec = JSON.parse(
      (await cli([
        "status",
        "tiny_ctc",
        "--json",
        "--cache",
        cache,
        "--data_folder",
        c.root,
        ...OVERRIDES,
      ])).stdout,
    );
    const key = (s: string) => dec.stages.find((x: { stage: string }) => x.stage === s).key;
    const decodeDir = join(cache, "artifacts", "decode", key("decode"));
    const hyps = (await Deno.readTextFile(join(decodeDir, "hyp", "test-clean.txt"))).trim().split(
      "\n",
    );
    assert.equal(hyps.length, 10);
    const nbest = (await Deno.readTextFile(join(decodeDir, "nbest", "test-clean.jsonl"))).trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.ok(nbest.every((n) => n.nbest.length >= 1 && typeof n.nbest[0].score === "number"));
    const wer = await Deno.readTextFile(
      join(cache, "artifacts", "score", key("score"), "wer_test-clean.txt"),
    );
    assert.match(wer, /^%WER \d+\.\d\d \[ \d+ \/ \d+, \d+ ins, \d+ del, \d+ sub \]/);
    await Deno.remove(dir, { recursive: true });
  },
});
