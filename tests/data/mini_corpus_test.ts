/** The generated mini corpus: LibriSpeech layout, transcripts, voices, determinism, archives. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { decodeFlacPcm } from "../../src/audio/flac.ts";
import { prepareSplit } from "../../src/data/librispeech.ts";
import { makeMiniCorpus, packSplit, toolVersions } from "../fixtures/make_mini_corpus.ts";
import { SPLITS } from "../fixtures/mini_corpus_speakers.ts";

let tools = true;
try {
  await toolVersions();
} catch (e) {
  tools = false;
  console.warn(`${(e as Error).message}: skipping the mini corpus tests`);
}

const PER_CHAPTER = { "train-clean-100": 2, "dev-clean": 2, "test-clean": 2, "test-other": 2 };

async function files(dir: string, out: Map<string, string> = new Map(), base = dir) {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) await files(path, out, base);
    else {out.set(
        path.slice(base.length),
        createHash("md5").update(await Deno.readFile(path)).digest("hex"),
      );}
  }
  return out;
}

Deno.test({
  name: "mini corpus: LibriSpeech layout, transcripts, voices; repeatable to the byte",
  ignore: !tools,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "cm-mini-" });
    try {
      const corpus = await makeMiniCorpus({ out: `${dir}/a`, perChapter: PER_CHAPTER });
      const root = corpus.root;

      await t.step("every split prepares: each FLAC has its transcript line and back", async () => {
        const seen = new Set<string>();
        for (const split of SPLITS) {
          const rows = await prepareSplit(root, split);
          const want = corpus.utterances.filter((u) => u.split === split);
          assert.equal(rows.length, want.length);
          for (const r of rows) {
            assert.match(
              r.wav,
              new RegExp(`^${root}/${split}/(\\d+)/(\\d+)/\\1-\\2-\\d{4}\\.flac$`),
            );
            assert.match(r.wrd, /^[A-Z']+( [A-Z']+){2,11}$/, "3 to 12 upper-case words");
            assert.ok(!seen.has(r.wrd), `sentence "${r.wrd}" appears twice`);
            seen.add(r.wrd);
            assert.ok(r.duration > 0.5 && r.duration < 8, `${r.id}: ${r.duration} s`);
          }
        }
      });

      await t.step("16 kHz 16-bit mono FLAC holding speech-like audio", async () => {
        for (const u of corpus.utterances.slice(0, 12)) {
          const pcm = decodeFlacPcm(await Deno.readFile(u.path), { name: u.path });
          assert.equal(pcm.info.sampleRate, 16000);
          assert.equal(pcm.info.channels, 1);
          assert.equal(pcm.info.bitsPerSample, 16);
          let energy = 0;
          for (const v of pcm.channels[0]) energy += v * v;
          const rms = Math.sqrt(energy / pcm.length);
          assert.ok(rms > 300, `${u.id}: rms ${rms} is near silence`);
        }
      });

      await t.step("test-other voices are never heard in training; clean splits share them", () => {
        const voices = (split: string) =>
          new Set(corpus.utterances.filter((u) => u.split === split).map((u) => u.speaker.voice));
        const train = voices("train-clean-100");
        for (const v of voices("test-other")) assert.ok(!train.has(v), v);
        for (const v of voices("dev-clean")) assert.ok(train.has(v), v);
        for (const v of voices("test-clean")) assert.ok(train.has(v), v);
        const speakers = (split: string) =>
          new Set(corpus.utterances.filter((u) => u.split === split).map((u) => u.speaker.id));
        for (const s of speakers("dev-clean")) assert.ok(!speakers("train-clean-100").has(s));
      });

      await t.step("the same seed gives the same bytes; another seed does not", async () => {
        const again = await makeMiniCorpus({ out: `${dir}/b`, perChapter: PER_CHAPTER });
        assert.deepEqual(await files(again.root), await files(root));
        const other = await makeMiniCorpus({ out: `${dir}/c`, perChapter: PER_CHAPTER, seed: 2 });
        assert.notDeepEqual(await files(other.root), await files(root));
      });

      await t.step("archives hold LibriSpeech/<split>/... and match md5sums.txt", async () => {
        const md5 = await packSplit(`${dir}/a`, "dev-clean");
        assert.equal(await packSplit(`${dir}/b`, "dev-clean"), md5, "archives are repeatable");
        const list = await new Deno.Command("tar", {
          args: ["tzf", `${dir}/a/dev-clean.tar.gz`],
          stdout: "piped",
        })
          .output();
        const members = new TextDecoder().decode(list.stdout).trim().split("\n");
        assert.ok(members.every((m) => m.startsWith("LibriSpeech/")), members.join(" "));
        assert.ok(members.includes("LibriSpeech/SPEAKERS.TXT"));
        const flacs = members.filter((m) => m.endsWith(".flac"));
        assert.equal(flacs.length, corpus.utterances.filter((u) => u.split === "dev-clean").length);
        assert.ok(flacs.every((m) => m.startsWith("LibriSpeech/dev-clean/")));
        assert.equal(await Deno.readTextFile(`${dir}/a/md5sums.txt`), `${md5}  dev-clean.tar.gz\n`);
      });

      await t.step("an existing corpus is not overwritten", async () => {
        await assert.rejects(
          () => makeMiniCorpus({ out: `${dir}/a`, perChapter: PER_CHAPTER }),
          /already exists/,
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
