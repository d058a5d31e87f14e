/**
 * Which strings may be pieces (SentencePiece's IsValidSentencePiece with split_by_whitespace and
 * split_by_unicode_script on): at most maxLength characters, "▁" only first, no U+FFFD, one
 * Unicode script. Every rule is closed under prefixes, so callers extend a candidate one
 * character at a time and stop at the first character that breaks a rule.
 */
import { META } from "./normalize.ts";
import { UNK_CHAR } from "./training_text.ts";
import { scriptOf } from "./unicode_script.ts";

const META_CP = META.codePointAt(0)!;

/**
 * Extends a candidate by `cp` at character position `pos`, given the script of the previous
 * non-"▁" character ("" for none). Returns the new script state, or null when the result is
 * not a valid piece.
 */
export function extendPiece(cp: number, pos: number, prevScript: string): string | null {
  if (cp === UNK_CHAR || cp === 0 || cp === 0x20) return null;
  if (cp === META_CP) return pos === 0 ? prevScript : null;
  const s = scriptOf(cp);
  return prevScript === "" || prevScript === s ? s : null;
}

/** Code points of a string and the UTF-16 offset of each (plus the end), for cheap slicing. */
export function codePoints(s: string): { cps: number[]; offsets: number[] } {
  const cps: number[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < s.length;) {
    const cp = s.codePointAt(i)!;
    cps.push(cp);
    offsets.push(i);
    i += cp > 0xffff ? 2 : 1;
  }
  offsets.push(s.length);
  return { cps, offsets };
}
