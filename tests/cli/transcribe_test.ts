/**
 * `conmamba transcribe` through the real CLI on tiny_ctc and tiny (S2S) models trained for one
 * epoch on a very small generated corpus: one "<file> <words>" line per file, the words the decode
 * stage wrote for the same utterance (beam and greedy search), and exit 2 with a clear line when
 * the experiment is not trained (or not for this config) or a file is not mono FLAC at the sample
 * rate.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeMiniCorpus, type MiniCorpus, toolVersions } from "../fixtures/make_mini_corpus.ts";
import { cli, SHRUNK, SHRUNK_S2S } from "../fixtures/cli.ts";

let tools = true;
try {
  await toolVersions();
} catch (e) {
  tools = false;
  console.warn(`${(e as Error).message}: skipping the transcribe tests`);
}

async function sox(args: string[]) {
  const out = await new Deno.Command("sox", { args, stderr: "piped" }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

/** The decode artifact's hypotheses of test-clean, by utterance id (words, empty ones dropped). */
async function hypotheses(
  exp: string,
  cache: string,
  overrides: string[],
): Promise<Map<string, string>> {
  const st = await cli(["status", exp, "--json", "--cache", cache, ...overrides]);
  assert.equal(st.code, 0, st.stderr);
  const key = JSON.parse(st.stdout).stages.find((s: { stage: string }) => s.stage === "decode").key;
  const text = await Deno.readTextFile(
    join(cache, "artifacts", "decode", key, "hyp", "test-clean.txt"),
  );
  return new Map(
    text.trim().split("\n").map((l) => {
      const [id, ...words] = l.split(" ");
      return [id, words.filter((w) => w).join(" ")];
    }),
  );
}

let corpus: MiniCorpus | null = null;
async function miniCorpus(): Promise<MiniCorpus> {
  corpus ??= await makeMiniCorpus({
    out: await Deno.makeTempDir({ prefix: "cm-transcribe-" }),
    perChapter: { "train-clean-100": 2, "dev-clean": 1, "test-clean": 1 },
    splits: ["train-clean-100", "dev-clean", "test-clean"],
  });
  return corpus;
}

/** Runs the pipeline, then transcribes two test files: each line equals the decode stage's. */
async function transcribeMatchesDecode(exp: string, cache: string, overrides: string[]) {
  const c = await miniCorpus();
  const run = await cli(["pipeline", exp, "--cache", cache, ...overrides]);
  assert.equal(run.code, 0, run.stderr);
  const hyps = await hypotheses(exp, cache, overrides);
  const tests = c.utterances.filter((u) => u.split === "test-clean").slice(0, 2);
  assert.ok(tests.some((u) => hyps.get(u.id)), "some words to compare"); // 1 epoch: gibberish
  const files = tests.map((u) => u.path);
  const out = await cli(["transcribe", exp, ...files, "--cache", cache, ...overrides]);
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trimEnd().split("\n");
  assert.equal(lines.length, files.length, out.stdout);
  tests.forEach((u, i) => {
    assert.ok(lines[i] === u.path || lines[i].startsWith(`${u.path} `), lines[i]);
    assert.equal(lines[i].slice(u.path.length).trim(), hyps.get(u.id), `${exp} ${u.id}`);
  });
  return { run, files };
}

Deno.test({
  name: "transcribe tiny_ctc: the decode stage's words for the same audio; clear errors otherwise",
  ignore: !tools,
  async fn() {
    const c = await miniCorpus();
    const dir = join(c.root, "..");
    const cache = join(dir, "cache-ctc");
    const base = [...SHRUNK, "--test_beam_size", "8", "--data_folder", c.root];
    const tests = c.utterances.filter((u) => u.split === "test-clean").slice(0, 2);

    // Not trained yet: exit 2, and the message says how to train it.
    const untrained = await cli([
      "transcribe",
      "tiny_ctc",
      tests[0].path,
      "--cache",
      cache,
      ...base,
    ]);
    assert.equal(untrained.code, 2);
    assert.match(
      untrained.stderr,
      /^error: tiny_ctc has not been trained .*run `deno task pipeline tiny_ctc --until train` first\n$/,
    );

    const { files } = await transcribeMatchesDecode("tiny_ctc", cache, base);

    // Greedy: the decode stage with test_search greedy (decode and score rerun, train reused)
    // and transcribe agree too; the train artifact is the same (test_search is not train's).
    const greedy = [...base, "--test_search", "greedy"];
    const { run: run2 } = await transcribeMatchesDecode("tiny_ctc", cache, greedy);
    assert.match(run2.stdout, /train\s+reused/);

    // A config the cache has no model for: exit 2, naming the difference.
    const d48 = base.map((a, i) => base[i - 1] === "--d_ffn" ? "48" : a);
    const other = await cli(["transcribe", "tiny_ctc", files[0], "--cache", cache, ...d48]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /no trained model for this config .*config d_ffn: 32 -> 48/);
    assert.match(other.stderr, /--until train` first/);

    // Files it cannot use: stereo, another sample rate, not FLAC, missing.
    const stereo = join(dir, "stereo.flac"), khz8 = join(dir, "8k.flac");
    const notFlac = join(dir, "text.flac");
    await sox([files[0], "-c", "2", stereo]);
    await sox([files[0], "-r", "8000", khz8]);
    await Deno.writeTextFile(notFlac, "hello\n");
    for (
      const [f, want] of [
        [stereo, /stereo\.flac: expected mono 16000 Hz FLAC .*got 2 channel\(s\) at 16000 Hz/],
        [khz8, /8k\.flac: expected mono 16000 Hz FLAC .*got 1 channel\(s\) at 8000 Hz/],
        [notFlac, /text\.flac: not a FLAC file/],
        [join(dir, "missing.flac"), /missing\.flac: no such file/],
      ] as const
    ) {
      const r = await cli(["transcribe", "tiny_ctc", files[0], f, "--cache", cache, ...base]);
      assert.equal(r.code, 2, `${f}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(r.stdout, ""); // checked before any transcription
    }
    const none = await cli(["transcribe", "tiny_ctc", "--cache", cache, ...base]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /name at least one audio file/);
  },
});

Deno.test({
  name: "transcribe tiny (S2S): the decode stage's words, joint beam search and greedy",
  ignore: !tools,
  async fn() {
    const c = await miniCorpus();
    const cache = join(c.root, "..", "cache-s2s");
    const base = [...SHRUNK_S2S, "--data_folder", c.root];
    await transcribeMatchesDecode("tiny", cache, base);
    const { run } = await transcribeMatchesDecode("tiny", cache, [
      ...base,
      "--test_search",
      "greedy",
    ]);
    assert.match(run.stdout, /train\s+reused/);
  },
});

globalThis.addEventListener("unload", () => {
  if (corpus) Deno.removeSync(join(corpus.root, ".."), { recursive: true });
});
