/**
 * decode + score on tiny models trained for one epoch through the real CLI: the CTC recipe, and
 * the three S2S families (ConMamba + Transformer decoder, ConMamba + Mamba decoder, Conformer +
 * Transformer decoder) with the joint CTC/attention search: hypotheses and n-best files for every
 * test utterance, wer.txt, results.json that `conmamba results` prints.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeMiniCorpus, toolVersions } from "../fixtures/make_mini_corpus.ts";
import { cli, SHRUNK, SHRUNK_S2S } from "../fixtures/cli.ts";

let tools = true;
try {
  await toolVersions();
} catch (e) {
  tools = false;
  console.warn(`${(e as Error).message}: skipping the decode/score stage tests`);
}

const OVERRIDES = [...SHRUNK, "--test_beam_size", "8"];

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

/** S2S variants of `tiny`, shrunk like SHRUNK_S2S; the validation search runs at epoch 1. */
const S2S_OVERRIDES = [
  ...SHRUNK_S2S,
  ...["--valid_search_interval", "1", "--valid_beam_size", "3"],
];
const NO_MAMBA = [
  "--d_state",
  "null",
  "--expand",
  "null",
  "--d_conv",
  "null",
  "--bidirectional",
  "null",
];
const FAMILIES: [string, string[]][] = [
  ["conmamba + transformer decoder", []],
  ["conmamba + mamba decoder", ["--decoder_module", "mamba"]],
  ["conformer + transformer decoder", ["--encoder_module", "conformer", ...NO_MAMBA]],
];

Deno.test({
  name: "decode and score stages: the three S2S families end to end with the joint search",
  ignore: !tools,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cm-decode-s2s-" });
    const c = await makeMiniCorpus({
      out: dir,
      perChapter: { "train-clean-100": 2, "dev-clean": 1, "test-clean": 1 },
      splits: ["train-clean-100", "dev-clean", "test-clean"],
    });
    const cache = join(dir, "cache");
    for (const [family, extra] of FAMILIES) {
      const args = ["--cache", cache, "--data_folder", c.root, ...S2S_OVERRIDES, ...extra];
      const r = await cli(["pipeline", "tiny", ...args]);
      assert.equal(r.code, 0, `${family}: ${r.stderr}`);
      assert.match(
        r.stdout + r.stderr,
        /train: epoch 1: valid loss [\d.]+, ACC [\d.]+%, WER [\d.]+%/,
      );
      const st = JSON.parse((await cli(["status", "tiny", "--json", ...args])).stdout);
      const key = (s: string) => st.stages.find((x: { stage: string }) => x.stage === s).key;
      const decodeDir = join(cache, "artifacts", "decode", key("decode"));
      const hyps = (await Deno.readTextFile(join(decodeDir, "hyp", "test-clean.txt"))).trim()
        .split("\n");
      assert.equal(hyps.length, 5, family); // 5 speakers x 1 chapter x 1
      const nbest = (await Deno.readTextFile(join(decodeDir, "nbest", "test-clean.jsonl")))
        .trim().split("\n").map((l) => JSON.parse(l));
      // The joint search finishes valid_beam_size hypotheses, best first.
      for (const n of nbest) {
        assert.equal(n.nbest.length, 3, family);
        const scores = n.nbest.map((h: { score: number }) => h.score);
        assert.deepEqual(scores, [...scores].sort((a, b) => b - a), family);
      }
      const res = JSON.parse(
        (await cli(["results", "tiny", "--json", ...args.slice(0, 2)])).stdout,
      );
      assert.equal(res["test-clean"].sentences, 5, family);
    }
    await Deno.remove(dir, { recursive: true });
  },
});
