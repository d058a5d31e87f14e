/** `score <ref file> <hyp file> [--json]`: WER of "<utterance id> <words...>" files (§11). */
import { scoreFiles } from "../score/score_files.ts";
import { print } from "./format.ts";

export async function scoreVerb(
  ref: string,
  hyp: string,
  opts: { json?: boolean },
): Promise<number> {
  const r = await scoreFiles(ref, hyp, { json: opts.json });
  print(r.text.trimEnd());
  return 0;
}
