/**
 * Text for the tokenizer tests: the mini corpus's transcripts (planned, no audio needed) and,
 * for a vocabulary of 500, English prose that ships with every Debian system (the licence texts
 * in /usr/share/common-licenses, ~47k words) in LibriSpeech's form: upper case, letters and
 * apostrophes, ten words a line.
 */
import { planCorpus } from "../fixtures/make_mini_corpus.ts";

/** Transcripts of the default mini corpus, by split. */
export function miniCorpusTranscripts(): Map<string, string[]> {
  const bySplit = new Map<string, string[]>();
  for (const u of planCorpus("/nonexistent", { out: "/nonexistent" })) {
    const list = bySplit.get(u.split) ?? [];
    list.push(u.words);
    bySplit.set(u.split, list);
  }
  return bySplit;
}

export const LICENSES = "/usr/share/common-licenses";

/** Null when the licence texts are missing (not a Debian system). */
export function licenseText(): { train: string[]; heldOut: string[] } | null {
  let names: string[];
  try {
    names = [...Deno.readDirSync(LICENSES)].map((e) => e.name).sort();
  } catch {
    return null;
  }
  const seen = new Set<string>();
  const words: string[] = [];
  for (const name of names) {
    const text = Deno.readTextFileSync(`${LICENSES}/${name}`);
    if (seen.has(text)) continue; // GPL is GPL-3, and so on
    seen.add(text);
    words.push(...text.toUpperCase().replace(/[^A-Z']+/g, " ").split(" ").filter((w) => w));
  }
  const lines: string[] = [];
  for (let i = 0; i < words.length; i += 10) lines.push(words.slice(i, i + 10).join(" "));
  return {
    train: lines.filter((_, i) => i % 10 !== 9),
    heldOut: lines.filter((_, i) => i % 10 === 9),
  };
}
