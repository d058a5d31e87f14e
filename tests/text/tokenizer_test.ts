/**
 * The tokenizer without sentencepiece: round trips on every mini-corpus transcript, determinism,
 * the char model's pieces, unknown characters, bad input.
 */
import assert from "node:assert/strict";
import { TokenizerError } from "../../src/text/errors.ts";
import { encodeModelProto } from "../../src/text/model_proto.ts";
import { PieceType } from "../../src/text/model.ts";
import { Tokenizer } from "../../src/text/tokenizer.ts";
import { trainTokenizer } from "../../src/text/train.ts";
import { readTrainingLines } from "../../src/text/training_text.ts";
import { licenseText, miniCorpusTranscripts } from "./corpora.ts";

const corpus = miniCorpusTranscripts();
const train = corpus.get("train-clean-100")!;
const all = [...corpus.values()].flat();

Deno.test("unigram: decode(encode(x)) == x on every transcript of the mini corpus", () => {
  const { model } = trainTokenizer(train, { type: "unigram", vocabSize: 128 }); // tiny.yaml's
  assert.equal(model.pieces.length, 128);
  const tok = new Tokenizer(model);
  assert.equal(all.length, 1500);
  let pieces = 0;
  for (const x of all) {
    const t = tok.encode(x);
    assert.ok(t.every((p) => p.id !== tok.unkId), `no unknown piece in ${x}`);
    assert.equal(tok.decodeIds(t.map((p) => p.id)), x);
    assert.equal(tok.decodePieces(t.map((p) => p.piece)), x);
    pieces += t.length;
  }
  // Subwords, not characters: far fewer pieces than characters.
  assert.ok(pieces < all.join(" ").length / 2, `${pieces} pieces`);
});

Deno.test("char: decode(encode(x)) == x, one piece per character, ▁ for spaces", () => {
  const { model } = trainTokenizer(train, { type: "char" });
  const tok = new Tokenizer(model);
  for (const x of all) {
    const t = tok.encode(x);
    assert.equal(t.length, x.length + 1); // the dummy prefix "▁"
    assert.equal(t.map((p) => p.piece).join(""), "▁" + x.replaceAll(" ", "▁"));
    assert.equal(tok.decodeIds(t.map((p) => p.id)), x);
  }
});

Deno.test("training is deterministic: same text, same model bytes", () => {
  const a = encodeModelProto(trainTokenizer(train, { type: "unigram", vocabSize: 150 }).model);
  const b = encodeModelProto(trainTokenizer([...train], { type: "unigram", vocabSize: 150 }).model);
  assert.deepEqual(a, b);
  // ... and different text gives a different model (the test can fail).
  const c = encodeModelProto(
    trainTokenizer(train.slice(1), { type: "unigram", vocabSize: 150 }).model,
  );
  assert.notDeepEqual(a, c);
});

Deno.test("char model: <unk> <s> </s>, then ▁, letters and apostrophe by frequency (§10.3)", () => {
  const lic = licenseText();
  // Text with all 26 letters and the apostrophe: the licences, or the alphabet spelled out.
  const text = lic?.train ?? [...train, "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG'S BACK"];
  const { model } = trainTokenizer(text, { type: "char" });
  assert.equal(model.pieces.length, 31);
  assert.deepEqual(
    model.pieces.slice(0, 3).map((p) => [p.piece, p.type]),
    [["<unk>", PieceType.UNKNOWN], ["<s>", PieceType.CONTROL], ["</s>", PieceType.CONTROL]],
  );
  // Expected order from our own count: descending frequency, ties by code point.
  const counts = new Map<string, number>();
  for (const line of text) {
    for (const ch of "▁" + line.replaceAll(" ", "▁")) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  const expected = [...counts].sort((a, b) =>
    b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!
  );
  assert.deepEqual(model.pieces.slice(3).map((p) => p.piece), expected.map(([c]) => c));
  assert.equal(model.pieces[3].piece, "▁");
  assert.deepEqual(
    new Set(model.pieces.slice(3).map((p) => p.piece)),
    new Set(["▁", "'", ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ"]),
  );
  const total = expected.reduce((s, [, c]) => s + c, 0);
  for (const [k, [, c]] of expected.entries()) {
    assert.ok(Math.abs(model.pieces[k + 3].score - Math.log(c / total)) < 1e-6);
  }
  assert.equal(model.trainerSpec.modelType, "char");
});

Deno.test("unknown characters: one <unk> per run, surface kept, decoded as ' ⁇ '", () => {
  const tok = new Tokenizer(trainTokenizer(train, { type: "unigram", vocabSize: 128 }).model);
  const t = tok.encode("THE ÉÉ CAT");
  const unk = t.filter((p) => p.id === tok.unkId);
  assert.deepEqual(unk.map((p) => p.piece), ["ÉÉ"]);
  assert.equal(tok.decodeIds(t.map((p) => p.id)), "THE  \u2047  CAT");
  assert.deepEqual(tok.encode("   "), []);
  assert.deepEqual(
    tok.encode("  THE   CAT ").map((p) => p.piece),
    tok.encode("THE CAT").map((p) => p.piece),
  );
});

Deno.test("bad input: empty text, too large a vocabulary, invalid UTF-8, bad settings", async () => {
  assert.throws(
    () => trainTokenizer(["", "   "], { type: "unigram", vocabSize: 100, name: "x.txt" }),
    (e) => e instanceof TokenizerError && /x\.txt: no text to train on/.test(e.message),
  );
  assert.throws(
    () => trainTokenizer(train, { type: "unigram", vocabSize: 5000, name: "x.txt" }),
    (e) =>
      e instanceof TokenizerError &&
      /x\.txt: vocabulary size 5000 is too large for this text.*<= \d+/.test(e.message),
  );
  assert.throws(
    () => trainTokenizer(["AB CD"], { type: "unigram", vocabSize: 7, name: "x.txt" }),
    (e) => e instanceof TokenizerError && /leaves no room for subwords/.test(e.message),
  );
  assert.throws(
    () => trainTokenizer(train, { type: "unigram", vocabSize: null }),
    (e) => e instanceof TokenizerError && /needs a vocabulary size/.test(e.message),
  );
  const dir = await Deno.makeTempDir({ prefix: "cm-tok-" });
  const bad = `${dir}/bad.txt`;
  await Deno.writeFile(bad, new Uint8Array([0x41, 0x0a, 0x42, 0xff, 0x43, 0x0a]));
  await assert.rejects(
    () => readTrainingLines(bad),
    (e) => e instanceof TokenizerError && e.message === `${bad}:2: not valid UTF-8`,
  );
  await assert.rejects(
    () => readTrainingLines(`${dir}/missing.txt`),
    (e) => e instanceof TokenizerError && e.message.startsWith(`${dir}/missing.txt: cannot read`),
  );
  await Deno.remove(dir, { recursive: true });
});
