/**
 * LibriSpeech preparation (CONMAMBA_SPEC.md §10.2): one row per utterance of a split, with the
 * duration from the FLAC header, and the CSV `ID,duration,wav,spk_id,wrd` the original writes.
 *
 * Order: the original lists files with a recursive os.listdir walk, whose order depends on the
 * file system. Here the walk is the same pre-order descent, with each directory's entries sorted
 * by name (UTF-16 code units), so rows come out identically on every machine: speakers, then
 * chapters, then utterances, in ascending name order.
 */
import { flacInfo } from "../audio/flac.ts";
import { UserError } from "../pipeline/errors.ts";
import { formatCsv, parseCsv } from "./csv.ts";

export interface LibriSpeechRow {
  /** File stem, e.g. "1089-134686-0000". */
  id: string;
  /** Seconds: total samples / sample rate from STREAMINFO. */
  duration: number;
  /** Path of the FLAC file as discovered under the data folder. */
  wav: string;
  /** "<speaker>-<chapter>". */
  spk_id: string;
  /** Transcript words joined by single spaces, as in trans.txt. */
  wrd: string;
}

export const CSV_HEADER = ["ID", "duration", "wav", "spk_id", "wrd"] as const;

/** The corpus on disk does not match the LibriSpeech layout; the message names the path. */
export class LibriSpeechError extends UserError {
  constructor(message: string) {
    super(message, 1);
    this.name = "LibriSpeechError";
  }
}

interface Walk {
  flacs: string[];
  transcripts: string[];
}

async function walk(dir: string, into: Walk): Promise<void> {
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) await walk(path, into);
    else if (e.name.endsWith(".flac")) into.flacs.push(path);
    else if (e.name.endsWith(".trans.txt")) into.transcripts.push(path);
  }
}

/** Reads every trans.txt: utterance id -> words and the transcript file that holds it. */
async function readTranscripts(files: string[]) {
  const words = new Map<string, { wrd: string; file: string; line: number }>();
  for (const file of files) {
    const lines = (await Deno.readTextFile(file)).split("\n");
    lines.forEach((text, k) => {
      const fields = text.trim().split(/\s+/);
      if (fields[0] === "") return; // blank line
      const where = `${file}:${k + 1}`;
      if (fields.length < 2) throw new LibriSpeechError(`${where}: "${fields[0]}" has no words`);
      const prior = words.get(fields[0]);
      if (prior) {
        throw new LibriSpeechError(
          `${where}: utterance ${fields[0]} is also transcribed at ${prior.file}:${prior.line}`,
        );
      }
      words.set(fields[0], { wrd: fields.slice(1).join(" "), file, line: k + 1 });
    });
  }
  return words;
}

/** Runs f over items, `jobs` at a time, keeping the order of the results. */
async function mapLimited<T, R>(items: T[], jobs: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const k = next++;
      out[k] = await f(items[k]);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return out;
}

/**
 * The rows of one split: walks <dataFolder>/<split>/, pairs every FLAC file with its transcript
 * line. Errors (LibriSpeechError) for a missing split folder, audio without a transcript line and
 * a transcript line without audio.
 */
export async function prepareSplit(dataFolder: string, split: string): Promise<LibriSpeechRow[]> {
  const root = `${dataFolder.replace(/\/+$/, "")}/${split}`;
  try {
    if (!(await Deno.stat(root)).isDirectory) throw new Deno.errors.NotFound();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new LibriSpeechError(
      `${root}: split folder not found (data_folder must be the LibriSpeech directory that ` +
        `holds ${split}/)`,
    );
  }
  const found: Walk = { flacs: [], transcripts: [] };
  await walk(root, found);
  const text = await readTranscripts(found.transcripts);
  const ids = new Set<string>();
  const rows = await mapLimited(found.flacs, 32, async (wav) => {
    const id = wav.slice(wav.lastIndexOf("/") + 1, -".flac".length);
    const t = text.get(id);
    if (!t) {
      const dir = wav.slice(0, wav.lastIndexOf("/"));
      const chapter = id.split("-").slice(0, 2).join("-");
      throw new LibriSpeechError(
        `${wav}: no transcript line for ${id} (expected in ${dir}/${chapter}.trans.txt)`,
      );
    }
    ids.add(id);
    const info = await flacInfo(wav);
    return {
      id,
      duration: info.duration,
      wav,
      spk_id: id.split("-").slice(0, 2).join("-"),
      wrd: t.wrd,
    };
  });
  for (const [id, t] of text) {
    if (!ids.has(id)) {
      throw new LibriSpeechError(
        `${t.file}:${t.line}: utterance ${id} has no audio file ${id}.flac`,
      );
    }
  }
  return rows;
}

/** A float as Python's str() writes it ("2.0", "14.53", "5e-05"), as the original's CSV has it. */
export function pythonFloat(x: number): string {
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    const [mantissa, exp] = x.toExponential().split("e");
    return `${mantissa}e${exp[0]}${exp.slice(1).padStart(2, "0")}`;
  }
  return Number.isInteger(x) ? x.toFixed(1) : String(x);
}

/** The CSV text of rows, header `ID,duration,wav,spk_id,wrd`. */
export function formatLibriSpeechCsv(rows: readonly LibriSpeechRow[]): string {
  return formatCsv([
    CSV_HEADER,
    ...rows.map((r) => [r.id, pythonFloat(r.duration), r.wav, r.spk_id, r.wrd]),
  ]);
}

export async function writeLibriSpeechCsv(path: string, rows: readonly LibriSpeechRow[]) {
  await Deno.writeTextFile(path, formatLibriSpeechCsv(rows));
}

/** Reads a CSV written by writeLibriSpeechCsv (or by the original preparation). */
export async function readLibriSpeechCsv(path: string): Promise<LibriSpeechRow[]> {
  const [header, ...records] = parseCsv(await Deno.readTextFile(path), path);
  if (header?.join(",") !== CSV_HEADER.join(",")) {
    throw new LibriSpeechError(`${path}: header is not ${CSV_HEADER.join(",")}`);
  }
  return records.map((r, k) => {
    const duration = Number(r[1]);
    if (r.length !== 5 || r[1] === "" || !Number.isFinite(duration)) {
      throw new LibriSpeechError(`${path}: record ${k + 2} is not ID,duration,wav,spk_id,wrd`);
    }
    return { id: r[0], duration, wav: r[2], spk_id: r[3], wrd: r[4] };
  });
}
