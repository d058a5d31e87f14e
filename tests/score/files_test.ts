import assert from "node:assert/strict";
import {
  pairTranscripts,
  parseTranscripts,
  readTranscripts,
  TranscriptFileError,
} from "../../src/score/files.ts";

const fails = (message: string) => (e: unknown) => {
  assert.ok(e instanceof TranscriptFileError, String(e));
  assert.equal(e.message, message);
  assert.equal(e.exitCode, 2);
  return true;
};

Deno.test("files: id then words; CRLF, tabs and blank lines; an id alone is the empty text", () => {
  const t = parseTranscripts("u1 the cat\r\n\n  \nu2\tsat  on\nu3\nu4   \n", "x.txt");
  assert.deepEqual(t, [
    { id: "u1", words: ["the", "cat"], line: 1 },
    { id: "u2", words: ["sat", "on"], line: 4 },
    { id: "u3", words: [""], line: 5 },
    { id: "u4", words: [""], line: 6 },
  ]);
});

Deno.test("files: duplicate and empty ids are errors naming file and line", () => {
  assert.throws(
    () => parseTranscripts("a x\nb y\na z\n", "refs.txt"),
    fails('refs.txt:3: duplicate utterance id "a" (first on line 1)'),
  );
  assert.throws(
    () => parseTranscripts("a x\n b y\n", "hyp.txt"),
    fails("hyp.txt:2: empty utterance id (the line starts with a space)"),
  );
});

Deno.test("files: a hypothesis without a reference is an error naming the hypothesis line", () => {
  const refs = parseTranscripts("a x\nb y\n", "refs.txt");
  const hyps = parseTranscripts("b y\n\nc z\n", "hyp.txt");
  assert.throws(
    () => pairTranscripts(refs, hyps, "refs.txt", "hyp.txt"),
    fails('hyp.txt:3: utterance "c" has no reference in refs.txt'),
  );
  const ok = pairTranscripts(refs, parseTranscripts("b y\n", "hyp.txt"), "refs.txt", "hyp.txt");
  assert.deepEqual([...ok.refs.keys()], ["a", "b"]);
  assert.deepEqual([...ok.hyps.entries()], [["b", ["y"]]]);
});

Deno.test("files: missing, empty and non-UTF-8 files are errors naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/none.txt`;
    await assert.rejects(() => readTranscripts(missing), (e: unknown) => {
      assert.ok(
        e instanceof TranscriptFileError && e.message.startsWith(`${missing}: cannot read`),
      );
      return true;
    });
    await Deno.writeTextFile(`${dir}/empty.txt`, "\n\n");
    await assert.rejects(
      () => readTranscripts(`${dir}/empty.txt`),
      fails(`${dir}/empty.txt: no utterances in the file`),
    );
    await Deno.writeFile(`${dir}/bad.txt`, new Uint8Array([0x75, 0x20, 0xff, 0x0a]));
    await assert.rejects(
      () => readTranscripts(`${dir}/bad.txt`),
      fails(`${dir}/bad.txt: not valid UTF-8`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
