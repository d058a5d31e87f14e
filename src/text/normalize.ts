/**
 * Text to the normalised form pieces are matched against, and back.
 *
 * Our models carry the "identity" normaliser: no character mapping, only SentencePiece's
 * whitespace rules (remove_extra_whitespaces, add_dummy_prefix, escape_whitespaces). The recipe's
 * default, nmt_nfkc, maps the same way on LibriSpeech's upper-case ASCII transcripts (NFKC leaves
 * ASCII alone), so identity loses nothing there and needs no compiled character map in the file.
 * As in SentencePiece's normaliser, only U+0020 counts as whitespace.
 */
import type { NormalizerSpec } from "./model.ts";

/** The word-boundary meta symbol "▁" (U+2581 LOWER ONE EIGHTH BLOCK). */
export const META = "\u2581";

type Rules = Pick<
  NormalizerSpec,
  "addDummyPrefix" | "removeExtraWhitespaces" | "escapeWhitespaces"
>;

/** "  HELLO  WORLD " -> "▁HELLO▁WORLD" (with the default rules); all-space text -> "". */
export function normalize(text: string, rules: Rules): string {
  let s = text;
  if (rules.removeExtraWhitespaces) s = s.replace(/^ +| +$/g, "").replace(/ {2,}/g, " ");
  if (s === "") return "";
  if (rules.addDummyPrefix && !s.startsWith(" ")) s = " " + s;
  return rules.escapeWhitespaces ? s.replaceAll(" ", META) : s;
}

/** Pieces back to text: "▁" becomes a space; the dummy prefix's space is dropped. */
export function denormalize(pieces: readonly string[], rules: Pick<Rules, "addDummyPrefix">) {
  const s = pieces.join("").replaceAll(META, " ");
  return rules.addDummyPrefix && s.startsWith(" ") ? s.slice(1) : s;
}

/**
 * Splits a normalised sentence before every "▁" (SentencePiece's split_by_whitespace):
 * "▁A▁CAT" -> ["▁A", "▁CAT"].
 */
export function splitWords(normalized: string): string[] {
  const words: string[] = [];
  let start = 0;
  for (let i = 1; i < normalized.length; i++) {
    if (normalized[i] === META) {
      words.push(normalized.slice(start, i));
      start = i;
    }
  }
  if (normalized.length > 0) words.push(normalized.slice(start));
  return words;
}
