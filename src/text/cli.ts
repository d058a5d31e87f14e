/**
 * The tokenizer verbs, for the CLI to wire (`conmamba tokenizer train|encode|decode`). Each
 * returns an exit code: 0 done, 2 bad input (the message names the file and problem), 1 other
 * failures. Streams default to the process's; tests pass their own.
 */
import { exitCodeOf } from "../pipeline/errors.ts";
import { writeFileAtomic } from "../pipeline/fs_util.ts";
import { TokenizerError } from "./errors.ts";
import { loadTokenizer } from "./model_file.ts";
import { encodeModelProto } from "./model_proto.ts";
import { trainTokenizer } from "./train.ts";
import { readTrainingLines } from "./training_text.ts";
import { formatVocab } from "./vocab_file.ts";

export interface CliIO {
  stdin: ReadableStream<Uint8Array>;
  stdout: WritableStream<Uint8Array>;
  /** One message line (errors, summaries). */
  stderr: (line: string) => void;
}

function processIO(): CliIO {
  return {
    stdin: Deno.stdin.readable,
    stdout: Deno.stdout.writable,
    stderr: (line) => console.error(line),
  };
}

async function guarded(io: CliIO, body: () => Promise<void>): Promise<number> {
  try {
    await body();
    return 0;
  } catch (e) {
    io.stderr(`error: ${e instanceof Error ? e.message : String(e)}`);
    return exitCodeOf(e);
  }
}

export interface TrainArgs {
  /** Vocabulary size for unigram models (special pieces included); not used by char models. */
  vocab?: number | null;
  type?: "unigram" | "char";
  /** The model file to write; the vocabulary goes beside it, X.model -> X.vocab. */
  out: string;
  characterCoverage?: number;
}

/** `tokenizer train <text file> --vocab N [--type unigram|char] --out X.model` */
export function tokenizerTrain(
  textFile: string,
  args: TrainArgs,
  io: CliIO = processIO(),
): Promise<number> {
  return guarded(io, async () => {
    const type = args.type ?? "unigram";
    if (type !== "unigram" && type !== "char") {
      throw new TokenizerError(`--type ${type}: expected unigram or char`);
    }
    if (!args.out.endsWith(".model")) {
      throw new TokenizerError(`--out ${args.out}: the model file name must end in .model`);
    }
    const lines = await readTrainingLines(textFile);
    const t0 = performance.now();
    const { model, stats } = trainTokenizer(lines, {
      type,
      vocabSize: args.vocab,
      characterCoverage: args.characterCoverage,
      name: textFile,
    });
    const vocabPath = args.out.slice(0, -".model".length) + ".vocab";
    try {
      await writeFileAtomic(args.out, encodeModelProto(model));
      await writeFileAtomic(vocabPath, formatVocab(model));
    } catch (e) {
      throw new TokenizerError(`${args.out}: cannot write the model (${(e as Error).message})`);
    }
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    io.stderr(
      `${args.out}: ${model.pieces.length} pieces (${type}) from ${stats.sentences} sentences ` +
        `in ${secs} s; vocabulary in ${vocabPath}`,
    );
  });
}

/** Lines of a UTF-8 stream (split on LF bytes, CR LF accepted); invalid UTF-8 names the line. */
async function* lines(stream: ReadableStream<Uint8Array>, name: string): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let n = 0;
  const decode = (bytes: Uint8Array) => {
    n++;
    try {
      return decoder.decode(bytes).replace(/\r$/, "");
    } catch {
      throw new TokenizerError(`${name}: line ${n} is not valid UTF-8`);
    }
  };
  let pending = new Uint8Array(0);
  for await (const chunk of stream) {
    const buf = new Uint8Array(pending.length + chunk.length);
    buf.set(pending);
    buf.set(chunk, pending.length);
    let start = 0;
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, start)) {
      yield decode(buf.subarray(start, i));
      start = i + 1;
    }
    pending = buf.slice(start);
  }
  if (pending.length > 0) yield decode(pending);
}

async function mapLines(io: CliIO, f: (line: string) => string) {
  const writer = io.stdout.getWriter();
  const enc = new TextEncoder();
  try {
    let batch = "";
    for await (const line of lines(io.stdin, "stdin")) {
      batch += f(line) + "\n";
      if (batch.length > 1 << 16) {
        await writer.write(enc.encode(batch));
        batch = "";
      }
    }
    if (batch) await writer.write(enc.encode(batch));
  } finally {
    writer.releaseLock();
  }
}

/** `tokenizer encode X.model`: stdin lines -> space-separated pieces (spm_encode's piece format). */
export function tokenizerEncode(modelPath: string, io: CliIO = processIO()): Promise<number> {
  return guarded(io, async () => {
    const tok = await loadTokenizer(modelPath);
    await mapLines(io, (line) => tok.encode(line).map((t) => t.piece).join(" "));
  });
}

/** `tokenizer decode X.model`: lines of space-separated pieces -> text. */
export function tokenizerDecode(modelPath: string, io: CliIO = processIO()): Promise<number> {
  return guarded(io, async () => {
    const tok = await loadTokenizer(modelPath);
    await mapLines(io, (line) => tok.decodePieces(line.split(" ").filter((p) => p !== "")));
  });
}
