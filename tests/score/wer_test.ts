import assert from "node:assert/strict";
import {
  charTokens,
  corpusStats,
  scoreCorpus,
  ScoreError,
  scoreUtterance,
  splitWords,
} from "../../src/score/wer.ts";
import { pyCenter, pyFixed2 } from "../../src/score/_pyformat.ts";

Deno.test("wer: words split on whitespace; an empty text is the one empty word (§11)", () => {
  assert.deepEqual(splitWords("a b  c\t d "), ["a", "b", "c", "d"]);
  assert.deepEqual(splitWords(""), [""]);
  assert.deepEqual(splitWords("   "), [""]);
});

Deno.test("wer: empty hypothesis counts 1 sub + (n-1) del, the same total as n deletions", () => {
  const u = scoreUtterance("u", ["a", "b", "c"], splitWords(""));
  assert.deepEqual([u.sub, u.del, u.ins, u.errors, u.words, u.wer], [1, 2, 0, 3, 3, 100]);
  const one = scoreUtterance("u", ["a"], [""]);
  assert.deepEqual([one.sub, one.del, one.ins], [1, 0, 0]);
  // A token list that is truly empty (what CER makes of it) is all deletions.
  const none = scoreUtterance("u", ["a", "b"], []);
  assert.deepEqual([none.sub, none.del, none.ins], [0, 2, 0]);
});

Deno.test("wer: per-utterance and corpus statistics", () => {
  const refs = new Map([["u1", ["a", "b", "c"]], ["u2", ["d", "e"]], ["u3", ["f"]]]);
  const hyps = new Map([["u1", ["a", "x", "c", "y"]], ["u2", ["d", "e"]], ["u3", ["g"]]]);
  const { utterances, absentIds, stats } = scoreCorpus(refs, hyps);
  assert.deepEqual(utterances.map((u) => [u.id, u.sub, u.del, u.ins]), [
    ["u1", 1, 0, 1],
    ["u2", 0, 0, 0],
    ["u3", 1, 0, 0],
  ]);
  assert.deepEqual(absentIds, []);
  assert.deepEqual(stats, {
    wer: 50,
    ser: 100 * 2 / 3,
    errors: 3,
    sub: 2,
    del: 0,
    ins: 1,
    words: 6,
    sentences: 3,
    erroneous: 2,
    absent: 0,
  });
});

Deno.test("wer: references without a hypothesis are absent, not scored", () => {
  const refs = new Map([["u1", ["a", "b"]], ["u2", ["c"]], ["u3", ["d"]]]);
  const { utterances, absentIds, stats } = scoreCorpus(refs, new Map([["u2", ["c"]]]));
  assert.deepEqual(utterances.map((u) => u.id), ["u2"]);
  assert.deepEqual(absentIds, ["u1", "u3"]);
  assert.deepEqual([stats.words, stats.sentences, stats.absent, stats.wer], [1, 1, 2, 0]);
});

Deno.test("wer: unusable inputs are errors", () => {
  const refs = new Map([["u1", ["a"]]]);
  assert.throws(() => scoreCorpus(refs, new Map([["u9", ["a"]]])), ScoreError);
  assert.throws(() => scoreCorpus(refs, new Map()), /no reference has a hypothesis/);
  assert.throws(() => corpusStats([]), ScoreError);
});

Deno.test("wer: CER on characters with '_' between words (§11)", () => {
  assert.deepEqual(charTokens(["ab", "c"]), ["a", "b", "_", "c"]);
  assert.deepEqual(charTokens([""]), []);
  assert.deepEqual(charTokens(["né", "😀"]), ["n", "é", "_", "😀"]);
  const refs = new Map([["u1", ["the", "cat"]], ["u2", ["ab"]]]);
  const hyps = new Map([["u1", ["the", "bat"]], ["u2", [""]]]);
  const { stats, utterances } = scoreCorpus(refs, hyps, { chars: true });
  // u1: 7 chars, 1 sub; u2: 2 chars, the empty hypothesis has no characters: 2 deletions.
  assert.deepEqual([utterances[1].sub, utterances[1].del], [0, 2]);
  assert.deepEqual([stats.errors, stats.words, stats.sub, stats.del], [3, 9, 1, 2]);
});

Deno.test("pyformat: str.center and '{:.2f}' as CPython writes them", () => {
  assert.equal(pyCenter("ab", 5), "  ab ");
  assert.equal(pyCenter("a", 4), " a  ");
  assert.equal(pyCenter("line", 5), " line");
  assert.equal(pyCenter("", 1), " ");
  assert.equal(pyCenter("é", 3), " é ");
  assert.equal(pyCenter("long", 2), "long");
  // Exact binary ties go to even in Python; toFixed would round them up.
  assert.equal(pyFixed2(0.125), "0.12");
  assert.equal(pyFixed2(0.375), "0.38");
  assert.equal(pyFixed2(100 * 1 / 800), "0.12");
  assert.equal(pyFixed2(2.625), "2.62");
  assert.equal(pyFixed2(2.675), "2.67"); // 2.67499999... in binary
  assert.equal(pyFixed2(100 * 2 / 3), "66.67");
  assert.equal(pyFixed2(100), "100.00");
  assert.equal(pyFixed2(0), "0.00");
  assert.equal(pyFixed2(Infinity), "inf");
});
