/**
 * Tokenizer training: 5000 unigram pieces on 100k sentences, ours (in process) against spm_train
 * (Debian sentencepiece, one thread, same settings) on the same text in the same run.
 * The text is generated: words drawn from a Zipf distribution over a 30k-word lexicon of
 * pronounceable pseudo-words, so the vocabulary is large and heavy-tailed like real transcripts.
 */
import { join } from "node:path";
import { encodeModelProto } from "../src/text/model_proto.ts";
import { trainTokenizer } from "../src/text/train.ts";
import { mulberry32 } from "../src/util/rng.ts";
import type { Row } from "./pipeline_bench.ts";

export function benchSentences(count = 100_000, seed = 5): string[] {
  const r = mulberry32(seed);
  const C = "BCDFGHJKLMNPRSTVWZ", V = "AEIOU";
  const pick = (s: string) => s[Math.floor(r() * s.length)];
  const lexicon: string[] = [];
  for (let i = 0; i < 30_000; i++) {
    let w = "";
    const syl = 1 + Math.floor(r() * 3);
    for (let k = 0; k < syl; k++) w += pick(C) + pick(V) + (r() < 0.3 ? pick(C) : "");
    lexicon.push(w);
  }
  // Zipf(1): P(rank k) ~ 1/k, sampled through the cumulative weights.
  const cum = new Float64Array(lexicon.length);
  let s = 0;
  for (let k = 0; k < lexicon.length; k++) cum[k] = s += 1 / (k + 1);
  const word = () => {
    const u = r() * s;
    let lo = 0, hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lexicon[lo];
  };
  return Array.from({ length: count }, () => {
    const n = 5 + Math.floor(r() * 16);
    return Array.from({ length: n }, word).join(" ");
  });
}

export async function tokenizerBench(): Promise<Row[]> {
  const lines = benchSentences();
  const dir = await Deno.makeTempDir({ prefix: "cm-bench-tok-" });
  try {
    const text = join(dir, "text.txt");
    await Deno.writeTextFile(text, lines.join("\n") + "\n");
    const t0 = performance.now();
    const { model } = trainTokenizer(lines, { type: "unigram", vocabSize: 5000 });
    const ours = (performance.now() - t0) / 1000;
    await Deno.writeFile(join(dir, "ours.model"), encodeModelProto(model));
    let theirs: number | null = null;
    try {
      const t1 = performance.now();
      const out = await new Deno.Command("spm_train", {
        args: [
          `--input=${text}`,
          `--model_prefix=${join(dir, "spm")}`,
          "--vocab_size=5000",
          "--model_type=unigram",
          "--character_coverage=1.0",
          "--num_threads=1",
          "--unk_id=0",
          "--bos_id=1",
          "--eos_id=2",
          "--pad_id=-1",
          "--max_sentencepiece_length=10",
          "--input_sentence_size=0",
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      if (out.success) theirs = (performance.now() - t1) / 1000;
    } catch { /* spm_train missing */ }
    return [{
      what: "train 5000 unigram pieces on 100k sentences (vs spm_train, 1 thread)",
      ours: `${ours.toFixed(2)} s`,
      baseline: theirs === null ? "n/a (apt-get install sentencepiece)" : `${theirs.toFixed(2)} s`,
      ratio: theirs === null ? "n/a" : `${(theirs / ours).toFixed(2)}x`,
    }];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
