/**
 * Our tokenizer against sentencepiece's own tools (Debian package `sentencepiece`, 0.1.97 when
 * written): spm_encode loads our models and segments as we do; our encoder segments as
 * spm_encode with spm_train's models; our vocab listing is spm_train's byte for byte; on the
 * same text, our unigram model is as good as spm_train's (pieces and log-likelihood on held-out
 * text); the char models are identical.
 */
import assert from "node:assert/strict";
import { decodeModelProto, encodeModelProto } from "../../src/text/model_proto.ts";
import { Tokenizer } from "../../src/text/tokenizer.ts";
import { trainTokenizer } from "../../src/text/train.ts";
import { formatVocab } from "../../src/text/vocab_file.ts";
import { LICENSES, licenseText, miniCorpusTranscripts } from "./corpora.ts";
import { spmAvailable, spmEncode, spmTrain } from "./spm_tools.ts";

const spm = await spmAvailable();
if (!spm) {
  console.warn(
    "sentencepiece (spm_train, spm_encode) not found: skipping the compatibility tests; apt-get install sentencepiece",
  );
}
const lic = licenseText();
if (spm && !lic) console.warn(`${LICENSES} not found: skipping the vocabulary-500 comparison`);

/** Text no training saw: unknown characters, extra spaces, an empty line. */
const ODD = ["", "  THE   LICENSE  ", "HÉLLO ÉÉ WORLD", "lower case text", "'S ' ''", "X"];

async function withDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "cm-spm-" });
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function stats(tok: Tokenizer, lines: readonly string[]) {
  let pieces = 0;
  let logLik = 0;
  for (const l of lines) {
    for (const t of tok.encode(l)) {
      pieces++;
      logLik += tok.model.pieces[t.id].score;
    }
  }
  return { pieces, logLik };
}

Deno.test({
  name: "vocab 500: spm_encode segments as we do; as good as spm_train's model on held-out text",
  ignore: !spm || !lic,
  async fn() {
    const { train, heldOut } = lic!;
    await withDir(async (dir) => {
      const ours = trainTokenizer(train, { type: "unigram", vocabSize: 500 }).model;
      await Deno.writeFile(`${dir}/ours.model`, encodeModelProto(ours));
      await Deno.writeTextFile(`${dir}/train.txt`, train.join("\n") + "\n");
      await spmTrain(`${dir}/train.txt`, `${dir}/spm`, { type: "unigram", vocab: 500 });
      const theirs = decodeModelProto(await Deno.readFile(`${dir}/spm.model`));

      const tok = new Tokenizer(ours);
      const text = [...heldOut, ...ODD];
      assert.deepEqual(
        await spmEncode(`${dir}/ours.model`, text),
        text.map((l) => tok.encode(l).map((t) => t.piece).join(" ")),
      );

      const a = stats(tok, heldOut);
      const b = stats(new Tokenizer(theirs), heldOut);
      console.log(
        `  ${train.length} lines, vocab 500: ours ${a.pieces} pieces, log-lik ${
          a.logLik.toFixed(0)
        }` +
          `; spm_train ${b.pieces} pieces, log-lik ${b.logLik.toFixed(0)}` +
          " (timings: deno task bench tokenizer)",
      );
      assert.ok(a.pieces <= b.pieces * 1.03, `${a.pieces} pieces vs spm_train's ${b.pieces}`);
      // Log-likelihoods are negative: ours may be at most 3% lower.
      assert.ok(a.logLik >= b.logLik * 1.03, `log-lik ${a.logLik} vs spm_train's ${b.logLik}`);
      const common = ours.pieces.filter((p) => theirs.pieces.some((q) => q.piece === p.piece));
      assert.ok(common.length >= 450, `${common.length} of 500 pieces in common with spm_train`);
    });
  },
});

Deno.test({
  name: "spm_train's models: our encoder segments as spm_encode; vocab.txt as spm_train's .vocab",
  ignore: !spm,
  async fn() {
    const corpus = miniCorpusTranscripts();
    const text = [...(lic?.train ?? corpus.get("train-clean-100")!)];
    const heldOut = [...(lic?.heldOut ?? []), ...corpus.get("test-other")!, ...ODD];
    await withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/train.txt`, text.join("\n") + "\n");
      await spmTrain(`${dir}/train.txt`, `${dir}/spm`, { type: "unigram", vocab: 200 });
      const model = decodeModelProto(await Deno.readFile(`${dir}/spm.model`));
      const tok = new Tokenizer(model);
      assert.deepEqual(
        heldOut.map((l) => tok.encode(l).map((t) => t.piece).join(" ")),
        await spmEncode(`${dir}/spm.model`, heldOut),
      );
      assert.equal(formatVocab(model), await Deno.readTextFile(`${dir}/spm.vocab`));
    });
  },
});

Deno.test({
  name: "mini corpus, vocab 128: spm_encode loads our model and segments dev/test as we do",
  ignore: !spm,
  async fn() {
    const corpus = miniCorpusTranscripts();
    const model =
      trainTokenizer(corpus.get("train-clean-100")!, { type: "unigram", vocabSize: 128 })
        .model;
    const tok = new Tokenizer(model);
    const heldOut = [...corpus.get("dev-clean")!, ...corpus.get("test-clean")!, ...ODD];
    await withDir(async (dir) => {
      await Deno.writeFile(`${dir}/ours.model`, encodeModelProto(model));
      assert.deepEqual(
        await spmEncode(`${dir}/ours.model`, heldOut),
        heldOut.map((l) => tok.encode(l).map((t) => t.piece).join(" ")),
      );
    });
  },
});

Deno.test({
  name: "char model: the same pieces, scores and ids as spm_train --model_type=char",
  ignore: !spm,
  async fn() {
    const text = lic?.train ?? miniCorpusTranscripts().get("train-clean-100")!;
    await withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/train.txt`, text.join("\n") + "\n");
      await spmTrain(`${dir}/train.txt`, `${dir}/spm`, { type: "char" });
      const theirs = decodeModelProto(await Deno.readFile(`${dir}/spm.model`));
      const ours = trainTokenizer(text, { type: "char" }).model;
      assert.deepEqual(ours.pieces, theirs.pieces);
      assert.equal(ours.trainerSpec.vocabSize, theirs.trainerSpec.vocabSize);
      await Deno.writeFile(`${dir}/ours.model`, encodeModelProto(ours));
      const probe = [...text.slice(0, 50), ...ODD];
      const tok = new Tokenizer(ours);
      assert.deepEqual(
        await spmEncode(`${dir}/ours.model`, probe),
        probe.map((l) => tok.encode(l).map((t) => t.piece).join(" ")),
      );
    });
  },
});
