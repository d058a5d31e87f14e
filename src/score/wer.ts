/**
 * Word (and character) error rates as SpeechBrain's ErrorRateStats computes them —
 * CONMAMBA_SPEC.md §11: per-utterance Levenshtein alignment (align.ts), corpus WER over the
 * summed edits and reference tokens, SER over utterances with at least one edit.
 */
import { UserError } from "../pipeline/errors.ts";
import { align, type AlignedPair } from "./align.ts";

/**
 * Tokens of a transcript: whitespace-separated words. An empty text is the one-element list [""]
 * (SpeechBrain's `"".split(" ")`), so an empty hypothesis is one empty word and scores as
 * 1 substitution + (n - 1) deletions rather than n deletions; the total is the same (§11).
 */
export function splitWords(text: string): string[] {
  const t = text.trim();
  return t === "" ? [""] : t.split(/\s+/);
}

/** Character tokens for CER: the words joined with "_", split into code points (§11). */
export function charTokens(words: readonly string[]): string[] {
  return Array.from(words.join("_"));
}

export interface UtteranceScore {
  id: string;
  ref: readonly string[];
  hyp: readonly string[];
  alignment: AlignedPair[];
  sub: number;
  del: number;
  ins: number;
  /** sub + del + ins */
  errors: number;
  /** reference tokens */
  words: number;
  /** 100 * errors / words (Infinity or NaN for an empty reference token list) */
  wer: number;
}

/** Aligns one utterance and counts its edits. */
export function scoreUtterance(
  id: string,
  ref: readonly string[],
  hyp: readonly string[],
): UtteranceScore {
  const alignment = align(ref, hyp);
  let sub = 0, del = 0, ins = 0;
  for (const { op } of alignment) {
    if (op === "S") sub++;
    else if (op === "D") del++;
    else if (op === "I") ins++;
  }
  const errors = sub + del + ins;
  return {
    id,
    ref,
    hyp,
    alignment,
    sub,
    del,
    ins,
    errors,
    words: ref.length,
    wer: 100 * errors / ref.length,
  };
}

export interface CorpusStats {
  /** 100 * errors / words */
  wer: number;
  /** 100 * erroneous / sentences */
  ser: number;
  errors: number;
  sub: number;
  del: number;
  ins: number;
  /** reference tokens of the scored utterances */
  words: number;
  /** scored utterances (references that have a hypothesis) */
  sentences: number;
  /** scored utterances with at least one edit */
  erroneous: number;
  /** references without a hypothesis (not scored; the report says [PARTIAL]) */
  absent: number;
}

export interface CorpusScore {
  /** scored utterances, in reference order */
  utterances: UtteranceScore[];
  /** ids of references that have no hypothesis, in reference order */
  absentIds: string[];
  stats: CorpusStats;
}

/** Inputs that cannot be scored together (exit code 2 in the CLI). */
export class ScoreError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = "ScoreError";
  }
}

/** Sums utterance scores; `absent` counts references left unscored. */
export function corpusStats(utterances: readonly UtteranceScore[], absent = 0): CorpusStats {
  let sub = 0, del = 0, ins = 0, words = 0, erroneous = 0;
  for (const u of utterances) {
    sub += u.sub;
    del += u.del;
    ins += u.ins;
    words += u.words;
    if (u.errors > 0) erroneous++;
  }
  const errors = sub + del + ins, sentences = utterances.length;
  if (sentences === 0) throw new ScoreError("nothing to score: no reference has a hypothesis");
  if (words === 0) throw new ScoreError("nothing to score: the references hold no tokens");
  return {
    wer: 100 * errors / words,
    ser: 100 * erroneous / sentences,
    errors,
    sub,
    del,
    ins,
    words,
    sentences,
    erroneous,
    absent,
  };
}

export interface ScoreOptions {
  /** score characters (CER, words joined by "_") instead of words; default false */
  chars?: boolean;
}

/**
 * Scores every reference that has a hypothesis, in reference order; references without one are
 * counted as absent (§11: the report says "[PARTIAL]"). A hypothesis id that is not among the
 * references is an error: the two lists do not belong together.
 */
export function scoreCorpus(
  refs: ReadonlyMap<string, readonly string[]>,
  hyps: ReadonlyMap<string, readonly string[]>,
  opts: ScoreOptions = {},
): CorpusScore {
  for (const id of hyps.keys()) {
    if (!refs.has(id)) throw new ScoreError(`hypothesis "${id}" has no reference`);
  }
  const tokens = opts.chars ? charTokens : (w: readonly string[]) => w;
  const utterances: UtteranceScore[] = [];
  const absentIds: string[] = [];
  for (const [id, ref] of refs) {
    const hyp = hyps.get(id);
    if (hyp === undefined) absentIds.push(id);
    else utterances.push(scoreUtterance(id, tokens(ref), tokens(hyp)));
  }
  return { utterances, absentIds, stats: corpusStats(utterances, absentIds.length) };
}
