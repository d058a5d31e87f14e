/** The tokenizer verbs (src/text/cli.ts) with in-memory streams, as the CLI will call them. */
import assert from "node:assert/strict";
import {
  type CliIO,
  tokenizerDecode,
  tokenizerEncode,
  tokenizerTrain,
} from "../../src/text/cli.ts";
import { miniCorpusTranscripts } from "./corpora.ts";

function io(input: string | Uint8Array) {
  const errors: string[] = [];
  const chunks: Uint8Array[] = [];
  const data = typeof input === "string" ? new TextEncoder().encode(input) : input;
  const cli: CliIO = {
    stdin: ReadableStream.from([data]),
    stdout: new WritableStream({ write: (c) => void chunks.push(c) }),
    stderr: (l) => void errors.push(l),
  };
  const out = () => new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  return { cli, errors, out };
}

Deno.test("tokenizer train / encode / decode: a round trip through the verbs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cm-tokcli-" });
  const corpus = miniCorpusTranscripts();
  await Deno.writeTextFile(`${dir}/train.txt`, corpus.get("train-clean-100")!.join("\n") + "\n");
  const t = io("");
  assert.equal(
    await tokenizerTrain(`${dir}/train.txt`, { vocab: 100, out: `${dir}/m.model` }, t.cli),
    0,
  );
  assert.match(t.errors[0], /m\.model: 100 pieces \(unigram\) from 1200 sentences/);
  const vocab = (await Deno.readTextFile(`${dir}/m.vocab`)).split("\n");
  assert.equal(vocab[0], "<unk>\t0");
  assert.equal(vocab.length, 101);

  const text = corpus.get("dev-clean")!.join("\n") + "\n";
  const e = io(text);
  assert.equal(await tokenizerEncode(`${dir}/m.model`, e.cli), 0);
  const pieces = e.out();
  assert.equal(pieces.split("\n").length, text.split("\n").length);
  assert.match(pieces.split("\n")[0], /^▁\S*( \S+)+$/);
  const d = io(pieces);
  assert.equal(await tokenizerDecode(`${dir}/m.model`, d.cli), 0);
  assert.equal(d.out(), text);

  const c = io("");
  assert.equal(
    await tokenizerTrain(`${dir}/train.txt`, { type: "char", out: `${dir}/c.model` }, c.cli),
    0,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokenizer verbs: errors name the file and the problem (exit 2)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cm-tokcli-" });
  let r = io("");
  assert.equal(
    await tokenizerTrain(`${dir}/none.txt`, { vocab: 100, out: `${dir}/m.model` }, r.cli),
    2,
  );
  assert.match(r.errors[0], new RegExp(`^error: ${dir}/none.txt: cannot read the training text`));

  await Deno.writeTextFile(`${dir}/t.txt`, "A B\n");
  r = io("");
  assert.equal(await tokenizerTrain(`${dir}/t.txt`, { vocab: 100, out: `${dir}/m.bin` }, r.cli), 2);
  assert.match(r.errors[0], /--out .*m\.bin: the model file name must end in \.model/);

  await Deno.writeTextFile(`${dir}/bad.model`, "not a model");
  r = io("A\n");
  assert.equal(await tokenizerEncode(`${dir}/bad.model`, r.cli), 2);
  assert.match(r.errors[0], new RegExp(`^error: ${dir}/bad.model: not a SentencePiece model`));

  await Deno.writeTextFile(`${dir}/t.txt`, "THE CAT SAT\nTHE DOG\n");
  assert.equal(
    await tokenizerTrain(`${dir}/t.txt`, { type: "char", out: `${dir}/c.model` }, io("").cli),
    0,
  );
  r = io(new Uint8Array([0x41, 0x0a, 0xc3, 0x28, 0x0a]));
  assert.equal(await tokenizerEncode(`${dir}/c.model`, r.cli), 2);
  assert.equal(r.errors[0], "error: stdin: line 2 is not valid UTF-8");
  await Deno.remove(dir, { recursive: true });
});
