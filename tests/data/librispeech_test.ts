import assert from "node:assert/strict";
import {
  formatLibriSpeechCsv,
  LibriSpeechError,
  type LibriSpeechRow,
  prepareSplit,
  pythonFloat,
  readLibriSpeechCsv,
  writeLibriSpeechCsv,
} from "../../src/data/librispeech.ts";
import { encodeRaw, FLAC_MISSING, haveFlacCli } from "../audio/flac_cli.ts";

const HAVE_FLAC = await haveFlacCli();
if (!HAVE_FLAC) console.warn(FLAC_MISSING);

/** utterance id -> [samples, words]; ids deliberately out of order to test sorting. */
const UTTS: Record<string, [number, string]> = {
  "84-121123-0001": [16000, "GO DO YOU HEAR"],
  "84-121123-0000": [24000, "AND YOU KNOW"],
  "1272-128104-0000": [40000, "MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES"],
  "1272-135031-0010": [8001, "IT'S  A   TEST"], // extra spaces are re-joined with one
  "174-50561-0000": [12345, "FORGOTTEN TOO THE NAME OF GILLIAN"],
};

async function tinyCorpus(dir: string): Promise<string> {
  const root = `${dir}/LibriSpeech`;
  const chapters = new Map<string, string[]>();
  for (const [id, [n, words]] of Object.entries(UTTS)) {
    const [spk, ch] = id.split("-");
    const folder = `${root}/dev-clean/${spk}/${ch}`;
    await Deno.mkdir(folder, { recursive: true });
    const tone = Int32Array.from({ length: n }, (_, i) => Math.round(3000 * Math.sin(i * 0.05)));
    await encodeRaw(folder, id, [tone], 16, 16000, ["-5"]);
    await Deno.remove(`${folder}/${id}.raw`);
    const key = `${folder}/${spk}-${ch}.trans.txt`;
    chapters.set(key, [...(chapters.get(key) ?? []), `${id} ${words}`]);
  }
  for (const [file, lines] of chapters) await Deno.writeTextFile(file, lines.join("\n") + "\n");
  return root;
}

async function withCorpus(f: (root: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cm-libri-" });
  try {
    await f(await tinyCorpus(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function preparationError(root: string, split: string): Promise<string> {
  try {
    await prepareSplit(root, split);
  } catch (e) {
    assert.ok(e instanceof LibriSpeechError, `expected a LibriSpeechError, got ${e}`);
    return e.message;
  }
  throw new assert.AssertionError({ message: "preparation did not fail" });
}

Deno.test({
  name: "librispeech: rows in sorted walk order with header durations",
  ignore: !HAVE_FLAC,
  fn: () =>
    withCorpus(async (root) => {
      const rows = await prepareSplit(root, "dev-clean");
      // Speaker folders sort as names: "1272" < "174" < "84".
      const order = [
        "1272-128104-0000",
        "1272-135031-0010",
        "174-50561-0000",
        "84-121123-0000",
        "84-121123-0001",
      ];
      assert.deepEqual(rows.map((r) => r.id), order);
      for (const r of rows) {
        const [n, words] = UTTS[r.id];
        const [spk, ch] = r.id.split("-");
        assert.equal(r.duration, n / 16000);
        assert.equal(r.wav, `${root}/dev-clean/${spk}/${ch}/${r.id}.flac`);
        assert.equal(r.spk_id, `${spk}-${ch}`);
        assert.equal(r.wrd, words.split(/\s+/).join(" "));
      }
      assert.equal(rows[1].wrd, "IT'S A TEST");
    }),
});

Deno.test({
  name: "librispeech: CSV as the original writes it, and read back",
  ignore: !HAVE_FLAC,
  fn: () =>
    withCorpus(async (root) => {
      const rows = await prepareSplit(root, "dev-clean");
      const text = formatLibriSpeechCsv(rows);
      const lines = text.split("\r\n");
      assert.equal(lines[0], "ID,duration,wav,spk_id,wrd");
      assert.equal(
        lines[1],
        `1272-128104-0000,2.5,${root}/dev-clean/1272/128104/1272-128104-0000.flac,1272-128104,` +
          "MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES",
      );
      assert.ok(lines[3].startsWith("174-50561-0000,0.7715625,"));
      assert.ok(lines[4].startsWith("84-121123-0000,1.5,"));
      assert.equal(lines.length, rows.length + 2); // header, rows, "" after the final CRLF
      const csv = `${root}/dev-clean.csv`;
      await writeLibriSpeechCsv(csv, rows);
      assert.deepEqual(await readLibriSpeechCsv(csv), rows);
    }),
});

Deno.test({
  name: "librispeech: missing split, audio without transcript, transcript without audio",
  ignore: !HAVE_FLAC,
  fn: () =>
    withCorpus(async (root) => {
      assert.equal(
        await preparationError(root, "test-other"),
        `${root}/test-other: split folder not found (data_folder must be the LibriSpeech ` +
          "directory that holds test-other/)",
      );
      const chapter = `${root}/dev-clean/84/121123`;
      const trans = `${chapter}/84-121123.trans.txt`;
      const original = await Deno.readTextFile(trans);

      await Deno.writeTextFile(trans, "84-121123-0000 AND YOU KNOW\n");
      assert.equal(
        await preparationError(root, "dev-clean"),
        `${chapter}/84-121123-0001.flac: no transcript line for 84-121123-0001 ` +
          `(expected in ${trans})`,
      );

      await Deno.writeTextFile(trans, original + "84-121123-0002 A LINE WITHOUT AUDIO\n");
      assert.equal(
        await preparationError(root, "dev-clean"),
        `${trans}:3: utterance 84-121123-0002 has no audio file 84-121123-0002.flac`,
      );

      await Deno.writeTextFile(trans, original + "84-121123-0000 AGAIN\n");
      assert.match(
        await preparationError(root, "dev-clean"),
        /:3: utterance 84-121123-0000 is also transcribed at .*:2$/,
      );

      await Deno.writeTextFile(trans, original);
      await Deno.remove(trans);
      assert.match(
        await preparationError(root, "dev-clean"),
        /no transcript line for 84-121123-0000/,
      );
    }),
});

Deno.test("librispeech: durations print as Python's str(float)", () => {
  assert.equal(pythonFloat(2), "2.0");
  assert.equal(pythonFloat(14.53), "14.53");
  assert.equal(pythonFloat(0.7715625), "0.7715625");
  assert.equal(pythonFloat(0.00005), "5e-05");
  assert.equal(pythonFloat(1e16), "1e+16");
  assert.equal(pythonFloat(0), "0.0");
});

Deno.test("librispeech: a CSV with another header is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cm-libri-" });
  try {
    const path = `${dir}/x.csv`;
    await Deno.writeTextFile(path, "ID,duration,wav\r\na,1.0,b\r\n");
    await assert.rejects(() => readLibriSpeechCsv(path), LibriSpeechError);
    const row: LibriSpeechRow = {
      id: "1-2-0003",
      duration: 1.25,
      wav: "/a,b.flac",
      spk_id: "1-2",
      wrd: "A",
    };
    await writeLibriSpeechCsv(path, [row]);
    assert.equal(
      await Deno.readTextFile(path),
      'ID,duration,wav,spk_id,wrd\r\n1-2-0003,1.25,"/a,b.flac",1-2,A\r\n',
    );
    assert.deepEqual(await readLibriSpeechCsv(path), [row]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
