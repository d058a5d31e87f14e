/** The `score` verb's work: reference and hypothesis files in, summary text and JSON out. */
import { pairTranscripts, readTranscripts } from "./files.ts";
import { formatSummary } from "./wer_report.ts";
import { type CorpusScore, scoreCorpus, type ScoreOptions } from "./wer.ts";

export interface ScoreJson {
  /** percent, unrounded */
  wer: number;
  sub: number;
  del: number;
  ins: number;
  /** reference words of the scored utterances */
  words: number;
  /** scored utterances */
  sentences: number;
}

/** Reads both files and scores them (§11); errors name the file and line at fault. */
export async function scoreTranscriptFiles(
  refPath: string,
  hypPath: string,
  opts: ScoreOptions = {},
): Promise<CorpusScore> {
  const [refs, hyps] = await Promise.all([readTranscripts(refPath), readTranscripts(hypPath)]);
  const pairs = pairTranscripts(refs, hyps, refPath, hypPath);
  return scoreCorpus(pairs.refs, pairs.hyps, opts);
}

/**
 * `conmamba score <ref> <hyp> [--json]`. `text` is what the verb prints: the wer.txt summary
 * lines (%WER, %SER, "Scored ..."), or with `json` the JSON object on one line. `json` is that
 * object either way.
 */
export async function scoreFiles(
  refPath: string,
  hypPath: string,
  opts: { json?: boolean },
): Promise<{ text: string; json: ScoreJson }> {
  const { stats } = await scoreTranscriptFiles(refPath, hypPath);
  const json: ScoreJson = {
    wer: stats.wer,
    sub: stats.sub,
    del: stats.del,
    ins: stats.ins,
    words: stats.words,
    sentences: stats.sentences,
  };
  return { text: opts.json ? JSON.stringify(json) + "\n" : formatSummary(stats), json };
}
