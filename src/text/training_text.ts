/**
 * Training text as SentencePiece's trainer loads it: one sentence per line, sentences longer
 * than max_sentence_length bytes skipped, each normalised (normalize.ts), empty ones dropped;
 * then the character statistics that decide which characters must be pieces.
 */
import { TokenizerError } from "./errors.ts";
import type { NormalizerSpec } from "./model.ts";
import { normalize } from "./normalize.ts";

/** U+FFFD stands for characters outside the coverage (SentencePiece's kUNKChar). */
export const UNK_CHAR = 0xfffd;

/** The lines of a UTF-8 file; invalid UTF-8 is an error naming the file and line. */
export async function readTrainingLines(path: string): Promise<string[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new TokenizerError(`${path}: cannot read the training text (${(e as Error).message})`);
  }
  return decodeLines(bytes, path);
}

export function decodeLines(bytes: Uint8Array, name: string): string[] {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new TokenizerError(`${name}:${firstBadLine(bytes)}: not valid UTF-8`);
  }
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

function firstBadLine(bytes: Uint8Array): number {
  let line = 1;
  let start = 0;
  const dec = new TextDecoder("utf-8", { fatal: true });
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      try {
        dec.decode(bytes.subarray(start, i));
      } catch {
        return line;
      }
      line++;
      start = i + 1;
    }
  }
  return line;
}

export interface PreparedText {
  /** Normalised sentences, rare characters replaced by U+FFFD. */
  sentences: string[];
  /** Characters that must be pieces, most frequent first (ties: lower code point first). */
  requiredChars: [codePoint: number, count: number][];
  skippedTooLong: number;
}

/** Compares strings by code point (= UTF-8 byte order, as std::string compares). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

export function prepareText(
  lines: readonly string[],
  opts: {
    normalizer: NormalizerSpec;
    characterCoverage: number;
    maxSentenceLength: number;
    name: string;
  },
): PreparedText {
  const enc = new TextEncoder();
  let skippedTooLong = 0;
  const sentences: string[] = [];
  for (const line of lines) {
    if (
      line.length * 3 > opts.maxSentenceLength && enc.encode(line).length > opts.maxSentenceLength
    ) {
      skippedTooLong++;
      continue;
    }
    const s = normalize(line, opts.normalizer);
    if (s !== "") sentences.push(s);
  }
  if (sentences.length === 0) {
    throw new TokenizerError(`${opts.name}: no text to train on (every line is empty)`);
  }
  const counts = new Map<number, number>();
  let total = 0;
  for (const s of sentences) {
    for (const ch of s) {
      const cp = ch.codePointAt(0)!;
      if (cp === 0 || cp === 0x20) continue;
      counts.set(cp, (counts.get(cp) ?? 0) + 1);
      total++;
    }
  }
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  // The most frequent characters until their share reaches character_coverage.
  const requiredChars: [number, number][] = [];
  let covered = 0;
  for (const entry of sorted) {
    if (covered / total >= opts.characterCoverage) break;
    covered += entry[1];
    requiredChars.push(entry);
  }
  if (requiredChars.length < sorted.length) {
    const keep = new Set(requiredChars.map(([c]) => c));
    for (let i = 0; i < sentences.length; i++) {
      let out = "";
      for (const ch of sentences[i]) {
        out += keep.has(ch.codePointAt(0)!) ? ch : String.fromCodePoint(UNK_CHAR);
      }
      sentences[i] = out;
    }
  }
  return { sentences, requiredChars, skippedTooLong };
}
