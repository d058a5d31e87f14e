/**
 * Transcript files: one utterance per line, "<utterance id> <words...>" (Kaldi `text` style).
 * The id runs to the first whitespace; the rest is split into words by `splitWords` (so a line
 * with only an id is the empty transcript [""], §11). Blank lines are skipped.
 */
import { UserError } from "../pipeline/errors.ts";
import { splitWords } from "./wer.ts";

export interface Transcript {
  id: string;
  words: string[];
  /** 1-based line number in its file */
  line: number;
}

/** A transcript file that cannot be used; the message names the file and line. */
export class TranscriptFileError extends UserError {
  constructor(readonly file: string, readonly line: number | null, problem: string) {
    super(`${file}${line === null ? "" : `:${line}`}: ${problem}`, 2);
    this.name = "TranscriptFileError";
  }
}

/** Parses a transcript file's text; `file` names it in errors. Ids must be unique. */
export function parseTranscripts(text: string, file: string): Transcript[] {
  const out: Transcript[] = [];
  const firstLine = new Map<string, number>();
  const lines = text.split("\n");
  for (let k = 0; k < lines.length; k++) {
    const line = k + 1;
    const raw = lines[k].endsWith("\r") ? lines[k].slice(0, -1) : lines[k];
    if (raw.trim() === "") continue;
    const m = /^(\S*)(.*)$/s.exec(raw)!;
    const id = m[1];
    if (id === "") {
      throw new TranscriptFileError(
        file,
        line,
        "empty utterance id (the line starts with a space)",
      );
    }
    const seen = firstLine.get(id);
    if (seen !== undefined) {
      throw new TranscriptFileError(
        file,
        line,
        `duplicate utterance id "${id}" (first on line ${seen})`,
      );
    }
    firstLine.set(id, line);
    out.push({ id, words: splitWords(m[2]), line });
  }
  return out;
}

/** Reads and parses a UTF-8 transcript file; an empty one is an error. */
export async function readTranscripts(file: string): Promise<Transcript[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    throw new TranscriptFileError(file, null, `cannot read: ${e instanceof Error ? e.message : e}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new TranscriptFileError(file, null, "not valid UTF-8");
  }
  const transcripts = parseTranscripts(text, file);
  if (transcripts.length === 0) {
    throw new TranscriptFileError(file, null, "no utterances in the file");
  }
  return transcripts;
}

/**
 * Pairs references with hypotheses by id, in reference order. A hypothesis whose id is not among
 * the references is an error naming its line; references without a hypothesis are left for the
 * scorer to count as absent.
 */
export function pairTranscripts(
  refs: readonly Transcript[],
  hyps: readonly Transcript[],
  refFile: string,
  hypFile: string,
): { refs: Map<string, string[]>; hyps: Map<string, string[]> } {
  const refMap = new Map(refs.map((t) => [t.id, t.words]));
  const hypMap = new Map<string, string[]>();
  for (const t of hyps) {
    if (!refMap.has(t.id)) {
      throw new TranscriptFileError(
        hypFile,
        t.line,
        `utterance "${t.id}" has no reference in ${refFile}`,
      );
    }
    hypMap.set(t.id, t.words);
  }
  return { refs: refMap, hyps: hypMap };
}
