/**
 * The `conmamba` command line: verbs pipeline, status, explain, verify, gc, results, fbank, score,
 * params, init, forward, transcribe, tokenizer.
 * Returns the exit code; errors become one line `error: ...` with code 2 (bad request) or 1.
 */
import { Command, CommanderError } from "commander";
import { exitCodeOf, UserError } from "../pipeline/errors.ts";
import { explainVerb } from "./explain_verb.ts";
import { fbankVerb } from "./fbank_verb.ts";
import { gcVerb } from "./gc_verb.ts";
import { forwardVerb, initVerb, paramsVerb } from "./model_verbs.ts";
import { pipelineVerb } from "./pipeline_verb.ts";
import type { Product } from "./product.ts";
import { resultsVerb } from "./results_verb.ts";
import { scoreVerb } from "./score_verb.ts";
import { tokenizerDecode, tokenizerEncode, tokenizerTrain } from "../text/cli.ts";
import { statusVerb } from "./status_verb.ts";
import { transcribeVerb } from "./transcribe_verb.ts";
import { verifyVerb } from "./verify_verb.ts";

const CACHE_HELP = "cache directory (default: $CONMAMBA_CACHE, else .cache)";

export async function runCli<C extends object>(
  product: Product<C>,
  argv: string[],
): Promise<number> {
  let code = 0;
  const program = new Command("conmamba")
    .description("ConMamba speech recognition: reproducible pipeline")
    .exitOverride()
    .configureOutput({ writeErr: (s) => console.error(s.trimEnd()) });
  const overridesHelp = "[--<hparam> <value>...]";

  program.command("pipeline")
    .description("run an experiment's stages in order, reusing what is done")
    .argument("<experiment>", `one of: ${product.listExperiments().join(", ")}`)
    .usage(`<experiment> [--until <stage>] [--force <stage>] [--cache <dir>] ${overridesHelp}`)
    .option("--until <stage>", "stop after this stage")
    .option("--force <stage>", "rebuild this stage even if done (repeatable)", collect, [])
    .option("--cache <dir>", CACHE_HELP)
    .option("--threads <n>", "compute threads (default: all cores; results do not depend on it)")
    .option("--device <d>", "wasm or cuda (default: CUDA when its library and a GPU are present)")
    .allowUnknownOption().allowExcessArguments()
    .action(async (exp: string, o, cmd: Command) => {
      setThreads(o.threads);
      if (o.device !== undefined) Deno.env.set("CONMAMBA_DEVICE", o.device);
      code = await pipelineVerb(product, exp, cmd.args.slice(1), o);
    });

  program.command("status")
    .description("each stage: done / partial / missing, key, content hash, size")
    .argument("<experiment>")
    .option("--json", "machine-readable output")
    .option("--cache <dir>", CACHE_HELP)
    .allowUnknownOption().allowExcessArguments()
    .action(async (exp: string, o, cmd: Command) => {
      code = await statusVerb(product, exp, cmd.args.slice(1), o);
    });

  program.command("explain")
    .description("the ingredients of a stage's key and how they differ from its newest artifact")
    .argument("<experiment>")
    .argument("<stage>")
    .option("--cache <dir>", CACHE_HELP)
    .allowUnknownOption().allowExcessArguments()
    .action(async (exp: string, stage: string, o, cmd: Command) => {
      code = await explainVerb(product, exp, stage, cmd.args.slice(2), o);
    });

  program.command("verify")
    .description("rehash every artifact; list corrupt ones; exit 1 if any")
    .option("--cache <dir>", CACHE_HELP)
    .action(async (o) => {
      code = await verifyVerb(o);
    });

  program.command("gc")
    .description("delete artifacts that no current experiment reaches")
    .option("--dry-run", "list what would be deleted, delete nothing")
    .option("--cache <dir>", CACHE_HELP)
    .action(async (o) => {
      code = await gcVerb(product, o);
    });

  program.command("results")
    .description("the score table of an experiment's newest complete run")
    .argument("<experiment>")
    .option("--json", "print {split: {wer, sub, del, ins, words, sentences}}")
    .option("--cache <dir>", CACHE_HELP)
    .action(async (exp: string, o) => {
      code = await resultsVerb(product, exp, o);
    });

  program.command("fbank")
    .description("one audio file's features [T, n_mels] with an experiment's settings, as .npy")
    .argument("<experiment>")
    .argument("<audio>", "a FLAC file (mono, the experiment's sample rate)")
    .requiredOption("--out <file.npy>", "where to write the features")
    .option("--speed <n>", "speed perturbation 95, 100 or 105 (default 100)")
    .allowUnknownOption().allowExcessArguments()
    .action(async (exp: string, audio: string, o, cmd: Command) => {
      code = await fbankVerb(product, exp, audio, cmd.args.slice(2), o);
    });

  program.command("score")
    .description("WER of hypotheses against references (lines: <utterance id> <words...>)")
    .argument("<ref>", "reference transcripts")
    .argument("<hyp>", "hypotheses")
    .option("--json", 'print {"wer", "sub", "del", "ins", "words", "sentences"}')
    .action(async (ref: string, hyp: string, o) => {
      code = await scoreVerb(ref, hyp, o);
    });

  program.command("params")
    .description("trainable parameters of an experiment's model: total and per module")
    .argument("<experiment>")
    .option("--json", 'print {"total", "tensors": [{"name", "shape"}]}')
    .allowUnknownOption().allowExcessArguments()
    .action(async (exp: string, o, cmd: Command) => {
      code = await paramsVerb(product, exp, cmd.args.slice(1), o);
    });

  program.command("init")
    .description("freshly initialised weights of an experiment's model, as safetensors")
    .argument("<experiment>")
    .requiredOption("--seed <n>", "random seed")
    .requiredOption("--out <W.safetensors>", "file to write")
    .allowUnknownOption().allowExcessArguments()
    .action(async (exp: string, o, cmd: Command) => {
      code = await initVerb(product, exp, cmd.args.slice(1), o);
    });

  program.command("forward")
    .description("eval-mode forward on normalised features; writes .npy outputs")
    .argument("<experiment>")
    .requiredOption("--weights <W.safetensors>", "weights (state_dict names or the index form)")
    .requiredOption("--feats <X.npy>", "features [B, T, n_mels] float32, already normalised")
    .requiredOption("--lengths <L.npy>", "relative lengths [B] in (0, 1]")
    .option("--tokens <T.npy>", "S2S: target tokens [B, U] int64 starting with bos")
    .requiredOption("--out <dir>", "output folder")
    .allowUnknownOption().allowExcessArguments()
    .action(async (exp: string, o, cmd: Command) => {
      code = await forwardVerb(product, exp, cmd.args.slice(1), o);
    });

  program.command("transcribe")
    .description("each audio file's words with the experiment's trained model (\"<file> <words>\")")
    .argument("<experiment>")
    .usage(`<experiment> <audio files...> [--cache <dir>] [--threads <n>] ${overridesHelp}`)
    .option("--cache <dir>", CACHE_HELP)
    .option("--threads <n>", "compute threads (default: all cores; results do not depend on it)")
    .allowUnknownOption().allowExcessArguments()
    .action(async (exp: string, o, cmd: Command) => {
      setThreads(o.threads);
      code = await transcribeVerb(product, exp, cmd.args.slice(1), o);
    });

  const tok = program.command("tokenizer")
    .description("SentencePiece-compatible tokenizers: train, encode, decode");
  tok.command("train")
    .description("train a unigram (or char) model on a text file, one sentence per line")
    .argument("<text>")
    .option("--vocab <n>", "vocabulary size (unigram; not used by --type char)")
    .option("--type <type>", "unigram or char", "unigram")
    .requiredOption("--out <X.model>", "model file to write (X.vocab beside it)")
    .action(async (text: string, o) => {
      const vocab = o.vocab === undefined ? null : Number(o.vocab);
      code = await tokenizerTrain(text, { vocab, type: o.type, out: o.out });
    });
  tok.command("encode")
    .description("stdin lines -> space-separated pieces, as spm_encode --output_format=piece")
    .argument("<model>")
    .action(async (model: string) => {
      code = await tokenizerEncode(model);
    });
  tok.command("decode")
    .description("stdin lines of space-separated pieces -> text")
    .argument("<model>")
    .action(async (model: string) => {
      code = await tokenizerDecode(model);
    });

  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      return e.exitCode === 0 ? 0 : 2;
    }
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    if (Deno.env.get("CONMAMBA_DEBUG") && e instanceof Error) console.error(e.stack);
    return exitCodeOf(e);
  }
}

/** `--threads N`: checked here, handed to every backend of this run through CONMAMBA_THREADS. */
function setThreads(value: string | undefined): void {
  if (value === undefined) return;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new UserError(`--threads: expected a positive integer, got "${value}"`);
  }
  Deno.env.set("CONMAMBA_THREADS", String(n));
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
