import assert from "node:assert/strict";
import { scoreFiles, scoreTranscriptFiles } from "../../src/score/score_files.ts";
import { TranscriptFileError } from "../../src/score/files.ts";
import { werReport } from "../../src/score/wer_report.ts";

async function withFiles<T>(ref: string, hyp: string, f: (r: string, h: string) => Promise<T>) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ref.txt`, ref);
    await Deno.writeTextFile(`${dir}/hyp.txt`, hyp);
    return await f(`${dir}/ref.txt`, `${dir}/hyp.txt`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const REF = "u1 the cat sat\nu2 a b\nu3 hello\n";
const HYP = "u2\nu1 the bat sat down\n"; // order differs from the references; u3 absent

Deno.test("score_files: summary text, and JSON with wer in percent", async () => {
  const r = await withFiles(REF, HYP, (ref, hyp) => scoreFiles(ref, hyp, {}));
  assert.equal(
    r.text,
    "%WER 80.00 [ 4 / 5, 1 ins, 1 del, 2 sub ] [PARTIAL]\n%SER 100.00 [ 2 / 2 ]\n" +
      "Scored 2 sentences, 1 not present in hyp.\n",
  );
  assert.deepEqual(r.json, { wer: 80, sub: 2, del: 1, ins: 1, words: 5, sentences: 2 });
  const j = await withFiles(REF, HYP, (ref, hyp) => scoreFiles(ref, hyp, { json: true }));
  assert.deepEqual(JSON.parse(j.text), r.json);
  assert.equal(j.text, '{"wer":80,"sub":2,"del":1,"ins":1,"words":5,"sentences":2}\n');
});

Deno.test("score_files: the report follows reference order", async () => {
  const s = await withFiles(REF, HYP, (ref, hyp) => scoreTranscriptFiles(ref, hyp));
  assert.deepEqual(s.utterances.map((u) => u.id), ["u1", "u2"]);
  assert.deepEqual(s.absentIds, ["u3"]);
  assert.match(werReport(s), /\nu1, %WER 66\.67 [^]*\nu2, %WER 100\.00 /);
});

Deno.test("score_files: a stray hypothesis id fails naming the hypothesis file and line", async () => {
  await withFiles(REF, "u1 the cat sat\nu7 x\n", async (ref, hyp) => {
    await assert.rejects(() => scoreFiles(ref, hyp, {}), (e: unknown) => {
      assert.ok(e instanceof TranscriptFileError);
      assert.equal(e.message, `${hyp}:2: utterance "u7" has no reference in ${ref}`);
      return true;
    });
  });
});
