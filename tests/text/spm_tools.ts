/**
 * The sentencepiece command-line tools (Debian package `sentencepiece`), as the independent
 * implementation our tokenizer answers to. Tests that need them are skipped with a message
 * when they are missing.
 */

export async function spmAvailable(): Promise<boolean> {
  try {
    const r = await new Deno.Command("spm_train", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await p.output();
  if (!r.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(r.stderr).slice(-2000)}`,
    );
  }
  return new TextDecoder().decode(r.stdout);
}

/** spm_train with the recipe's settings (§10.3) and identity normalisation, as ours. */
export async function spmTrain(
  textFile: string,
  prefix: string,
  opts: { type: "unigram" | "char"; vocab?: number },
): Promise<void> {
  await run("spm_train", [
    `--input=${textFile}`,
    `--model_prefix=${prefix}`,
    `--model_type=${opts.type}`,
    ...(opts.vocab ? [`--vocab_size=${opts.vocab}`] : []),
    "--character_coverage=1.0",
    "--unk_id=0",
    "--bos_id=1",
    "--eos_id=2",
    "--pad_id=-1",
    "--max_sentencepiece_length=10",
    "--add_dummy_prefix=true",
    "--normalization_rule_name=identity",
    "--num_threads=1",
  ]);
}

/** spm_encode --output_format=piece: one line of pieces per input line. */
export async function spmEncode(model: string, lines: readonly string[]): Promise<string[]> {
  const out = await run(
    "spm_encode",
    [`--model=${model}`, "--output_format=piece"],
    lines.join("\n") + "\n",
  );
  return out.split("\n").slice(0, lines.length);
}
