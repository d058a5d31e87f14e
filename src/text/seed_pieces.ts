/**
 * The seed vocabulary of the unigram trainer, as SentencePiece builds it from a suffix array:
 * every character of the text, then every valid piece (piece_rules.ts) of 2..maxLength characters
 * that is a branching node of the text's suffix tree (it occurs with at least two different next
 * characters, the sentence end counting as one), ranked by occurrences x length. Seeds never cross
 * a word boundary, so we count per distinct (word, ends-sentence) pair instead of building the
 * suffix array: same substrings, same counts.
 */
import { META } from "./normalize.ts";
import { codePoints, extendPiece } from "./piece_rules.ts";
import { UNK_CHAR } from "./training_text.ts";

const SENTENCE_END = -1;
const META_CP = META.codePointAt(0)!;

export interface Seeds {
  pieces: string[];
  /** Log probabilities: log(score) - log(sum of scores); characters score by count. */
  scores: number[];
}

/**
 * `words`: (word, count) for every distinct word with a flag saying whether it ended its
 * sentence: key "1"+word when it did, "0"+word when another word followed.
 */
export function seedPieces(
  words: ReadonlyMap<string, number>,
  opts: { maxLength: number; limit: number },
): Seeds {
  const chars = new Map<number, number>();
  const index = new Map<string, number>();
  const count: number[] = [];
  const length: number[] = [];
  const follower: number[] = [];
  const branching: boolean[] = [];
  for (const [key, freq] of words) {
    const word = key.slice(1);
    const ends = key[0] === "1";
    const { cps, offsets } = codePoints(word);
    const n = cps.length;
    for (const cp of cps) if (cp !== UNK_CHAR) chars.set(cp, (chars.get(cp) ?? 0) + freq);
    for (let i = 0; i < n; i++) {
      let script = extendPiece(cps[i], 0, "");
      if (script === null) continue;
      for (let j = i + 1; j < n && j - i < opts.maxLength; j++) {
        script = extendPiece(cps[j], j - i, script);
        if (script === null) break;
        const next = j + 1 < n ? cps[j + 1] : ends ? SENTENCE_END : META_CP;
        const s = word.slice(offsets[i], offsets[j + 1]);
        let k = index.get(s);
        if (k === undefined) {
          k = count.length;
          index.set(s, k);
          count.push(0);
          length.push(j + 1 - i);
          follower.push(next);
          branching.push(false);
        } else if (follower[k] !== next) branching[k] = true;
        count[k] += freq;
      }
    }
  }
  const pieces: string[] = [];
  const raw: number[] = [];
  for (const [cp, c] of [...chars].sort((a, b) => b[1] - a[1] || a[0] - b[0])) {
    pieces.push(String.fromCodePoint(cp));
    raw.push(c);
  }
  const subs: [string, number][] = [];
  for (const [s, k] of index) if (branching[k]) subs.push([s, count[k] * length[k]]);
  subs.sort((a, b) => b[1] - a[1] || suffixTreeOrder(a[0], b[0]));
  for (const [s, score] of subs) {
    if (pieces.length >= opts.limit) break;
    pieces.push(s);
    raw.push(score);
  }
  const logSum = Math.log(raw.reduce((a, b) => a + b, 0));
  return { pieces, scores: raw.map((r) => Math.log(r) - logSum) };
}

/**
 * Equal scores keep SentencePiece's order, the order its suffix tree lists nodes: by the last
 * suffix-array row of each substring, which is code point order except that a string comes
 * after its own extensions ("AB" before "A").
 */
function suffixTreeOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return b.length - a.length;
}
