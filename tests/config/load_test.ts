import assert from "node:assert/strict";
import { join } from "node:path";
import { CONFIG_KEYS, type Experiment } from "../../src/config/experiment.ts";
import {
  ConfigError,
  listExperiments,
  loadExperiment,
  parseOverrides,
} from "../../src/config/load.ts";

const PAPER_EXPERIMENTS = [
  "conformer_large",
  "conformer_large_ctc",
  "conformer_small",
  "conmamba_large",
  "conmamba_large_ctc",
  "conmamba_small",
  "conmambamamba_large",
  "conmambamamba_small",
];

/** Runs `fn`, requires a ConfigError whose message matches every pattern, returns the message. */
function configError(fn: () => unknown, ...patterns: RegExp[]): string {
  let message = "";
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    assert.equal(e.exitCode, 2);
    message = e.message;
    return true;
  });
  assert.ok(!message.includes("\n"), `message is not one line: ${message}`);
  for (const p of patterns) assert.match(message, p);
  return message;
}

/** A temporary hparams folder holding `files` (name -> YAML text). */
function tempDir(files: Record<string, string>): string {
  const dir = Deno.makeTempDirSync({ prefix: "config_test_" });
  for (const [name, text] of Object.entries(files)) {
    Deno.writeTextFileSync(join(dir, `${name}.yaml`), text);
  }
  return dir;
}

const TINY_TEXT = Deno.readTextFileSync(new URL("../../hparams/tiny.yaml", import.meta.url));

/** tiny.yaml with the line of `key` replaced by `line` (or removed when line is ""). */
function tinyWith(key: string, line: string): string {
  const lines = TINY_TEXT.split("\n");
  const i = lines.findIndex((l) => l.startsWith(`${key}:`));
  assert.ok(i >= 0, `tiny.yaml has no key ${key}`);
  lines.splice(i, 1, ...(line === "" ? [] : [line]));
  return lines.join("\n");
}

Deno.test("listExperiments: the eight paper files and the two tiny ones, sorted", () => {
  const names = listExperiments();
  assert.deepEqual(names, [...PAPER_EXPERIMENTS, "tiny", "tiny_ctc"].sort());
});

Deno.test("every experiment file loads, validates, sets every key and is frozen", () => {
  for (const name of listExperiments()) {
    const exp = loadExperiment(name);
    assert.deepEqual(Object.keys(exp).sort(), [...CONFIG_KEYS].sort(), name);
    assert.ok(Object.isFrozen(exp), name);
    assert.ok(Object.isFrozen(exp.train_splits), name);
    assert.equal(exp.lm, null, name);
  }
});

Deno.test("values shared by all eight paper files (§2.1, §2.2)", () => {
  for (const name of PAPER_EXPERIMENTS) {
    const x = loadExperiment(name);
    assert.deepEqual(x.train_splits, ["train-clean-100", "train-clean-360", "train-other-500"]);
    assert.deepEqual(x.dev_splits, ["dev-clean"]);
    assert.deepEqual(x.test_splits, ["test-clean", "test-other"]);
    assert.equal(x.data_folder, null);
    assert.equal(x.sample_rate, 16000);
    assert.equal(x.n_mels, 80);
    assert.equal(x.max_grad_norm, 5);
    assert.equal(x.precision, "bf16");
    assert.equal(x.avg_checkpoints, 10);
    assert.equal(x.max_batch_length_val, 100);
    assert.equal(x.num_bucket, 200);
    assert.deepEqual(x.betas, [0.9, 0.98]);
    assert.equal(x.adam_eps, 1e-9);
    assert.equal(x.input_size, 640);
    assert.deepEqual(x.cnn_out_channels, [64, 32]);
    assert.deepEqual(x.speed_changes, [95, 100, 105]);
    assert.equal(x.transformer_dropout, 0.1);
    assert.deepEqual([x.blank_index, x.bos_index, x.eos_index], [0, 1, 2]);
  }
});

Deno.test("conformer_small keeps its own recipe (§13 G11)", () => {
  const x = loadExperiment("conformer_small");
  assert.equal(x.experiment, "conformer_S_S2S");
  assert.equal(x.seed, 7775);
  assert.equal(x.grad_accumulation_factor, 8);
  assert.equal(x.n_warmup_steps, 3125);
  assert.equal(x.update_until_epoch, 3);
  assert.equal(x.normalizer_name, "normalize");
  assert.equal(x.optimizer, "Adam");
  assert.equal(x.weight_decay, 0);
  assert.equal(x.transformer_class, "speechbrain.TransformerASR");
  assert.equal(x.encoder_module, "conformer");
  assert.equal(x.d_state, null);
});

Deno.test("small ConMamba files: no accumulation, warm-up 25000, n_fft 400 / 25 ms", () => {
  for (const name of ["conmamba_small", "conmambamamba_small"]) {
    const x = loadExperiment(name);
    assert.equal(x.grad_accumulation_factor, 1);
    assert.equal(x.n_warmup_steps, 25000);
    assert.equal(x.update_until_epoch, 4);
    assert.deepEqual([x.n_fft, x.win_length], [400, 25]);
    assert.deepEqual([x.d_model, x.nhead, x.num_encoder_layers, x.num_decoder_layers], [
      144,
      4,
      12,
      4,
    ]);
    assert.equal(x.number_of_epochs, 110);
    assert.equal(x.lr, 0.001);
    assert.equal(x.label_smoothing, 0);
    assert.equal(x.max_batch_length_train, 900);
  }
  assert.equal(loadExperiment("conmamba_small").decoder_module, "transformer");
  assert.equal(loadExperiment("conmambamamba_small").decoder_module, "mamba");
  assert.equal(loadExperiment("conmambamamba_small").experiment, "conmambamamba_S_S2S");
});

Deno.test("conmamba_large: AdamW with default decay, warm-up 30000 // 8 (§8.1, §8.2)", () => {
  const x = loadExperiment("conmamba_large");
  assert.equal(x.experiment, "conmamba_L_S2S");
  assert.equal(x.seed, 3407);
  assert.equal(x.optimizer, "AdamW");
  assert.equal(x.lr, 0.0008);
  assert.equal(x.weight_decay, 0.01);
  assert.equal(x.n_warmup_steps, 3750);
  assert.equal(x.grad_accumulation_factor, 8);
  assert.deepEqual([x.n_fft, x.win_length], [512, 32]);
  assert.equal(x.number_of_epochs, 120);
  assert.equal(x.label_smoothing, 0.1);
  assert.equal(x.max_batch_ex, 256);
  assert.deepEqual([x.d_state, x.expand, x.d_conv, x.bidirectional], [16, 2, 4, true]);
  assert.deepEqual([x.valid_beam_size, x.test_beam_size], [10, 66]);
  assert.deepEqual([x.lm_weight, x.ctc_weight_decode, x.test_temperature], [0.6, 0.4, 1.15]);
  assert.equal(loadExperiment("conmambamamba_large").decoder_module, "mamba");
  assert.equal(loadExperiment("conmambamamba_large").n_warmup_steps, 3750);
});

Deno.test("conformer_large: warm-up 30000 not divided by accumulation (§13 G11)", () => {
  const x = loadExperiment("conformer_large");
  assert.equal(x.n_warmup_steps, 30000);
  assert.equal(x.weight_decay, 0.01);
  assert.equal(x.optimizer, "AdamW");
  assert.equal(x.transformer_class, "speechbrain.TransformerASR");
});

Deno.test("CTC files: 18 x 256, 31 chars, 500 epochs, no shuffle, beam 100 (§2.1, §9.5)", () => {
  for (const name of ["conmamba_large_ctc", "conformer_large_ctc"]) {
    const x = loadExperiment(name);
    assert.equal(x.num_encoder_layers, 18);
    assert.equal(x.d_model, 256);
    assert.equal(x.num_decoder_layers, 0);
    assert.equal(x.decoder_module, null);
    assert.equal(x.output_neurons, 31);
    assert.equal(x.token_type, "char");
    assert.equal(x.vocab_size, null);
    assert.equal(x.number_of_epochs, 500);
    assert.equal(x.shuffle, false);
    assert.equal(x.test_beam_size, 100);
    assert.equal(x.ctc_weight, null);
    assert.equal(x.seed, 3402);
    assert.equal(x.lr, 0.001);
    assert.equal(x.weight_decay, 0.0005);
    assert.equal(x.n_warmup_steps, 7500);
    assert.deepEqual([x.n_fft, x.win_length], [512, 25]);
    assert.deepEqual([x.beam_prune_logp, x.token_prune_min_logp, x.prune_history], [
      -12,
      -1.2,
      false,
    ]);
    assert.equal(x.time_warp_window, null);
    assert.deepEqual([x.time_drop_count_low, x.time_drop_count_high], [1, 5]);
    assert.equal(x.transformer_class, "modules.TransformerASR");
  }
  assert.equal(loadExperiment("conmamba_large_ctc").encoder_module, "conmamba");
  assert.equal(loadExperiment("conformer_large_ctc").d_state, null);
});

Deno.test("tiny experiments use the generated corpus split names", () => {
  for (const name of ["tiny", "tiny_ctc"]) {
    const x = loadExperiment(name);
    assert.deepEqual(x.train_splits, ["train-clean-100"]);
    assert.deepEqual(x.dev_splits, ["dev-clean"]);
    assert.deepEqual(x.test_splits, ["test-clean", "test-other"]);
    assert.equal(x.encoder_module, "conmamba");
    assert.equal(x.precision, "fp32");
  }
  assert.equal(loadExperiment("tiny").token_type, "unigram");
  assert.equal(loadExperiment("tiny_ctc").token_type, "char");
});

Deno.test("overrides are typed as YAML scalars and lists", () => {
  const x: Experiment = loadExperiment("tiny", {
    ctc_weight: "0.5",
    shuffle: "false",
    data_folder: "/data/LibriSpeech",
    speed_changes: "[90,100,110]",
    number_of_epochs: "2",
    d_state: "8",
    experiment: "123",
  });
  assert.equal(x.ctc_weight, 0.5);
  assert.equal(x.shuffle, false);
  assert.equal(x.data_folder, "/data/LibriSpeech");
  assert.deepEqual(x.speed_changes, [90, 100, 110]);
  assert.equal(x.number_of_epochs, 2);
  assert.equal(x.d_state, 8);
  assert.equal(x.experiment, "123", "a text key keeps a numeric-looking string");
  const y = loadExperiment("tiny", { data_folder: "/x/y", lm: "null" });
  assert.equal(y.lm, null);
  assert.equal(loadExperiment("tiny", { data_folder: "null" }).data_folder, null);
});

Deno.test("parseOverrides: --key value and --key=value", () => {
  assert.deepEqual(
    parseOverrides(["--d_model", "32", "--lr=0.5", "--speed_changes=[95, 100]", "--x", "-1.2"]),
    { d_model: "32", lr: "0.5", speed_changes: "[95, 100]", x: "-1.2" },
  );
  assert.deepEqual(parseOverrides([]), {});
  assert.deepEqual(parseOverrides(["--lm="]), { lm: "" });
});

Deno.test("parseOverrides: malformed arguments are ConfigErrors", () => {
  configError(() => parseOverrides(["d_model", "32"]), /"d_model"/);
  configError(() => parseOverrides(["-d", "32"]), /"-d"/);
  configError(() => parseOverrides(["--d_model"]), /--d_model has no value/);
  configError(() => parseOverrides(["--d_model", "--lr", "1"]), /--d_model has no value/);
  configError(() => parseOverrides(["--lr", "1", "--lr=2"]), /--lr is given twice/);
  configError(() => parseOverrides(["--bad-key=1"]), /"--bad-key=1"/);
});

Deno.test("error: unknown experiment lists the available ones", () => {
  configError(() => loadExperiment("conmamba_huge"), /"conmamba_huge"/, /available: .*tiny_ctc/);
  configError(() => loadExperiment("../hparams/tiny"), /unknown experiment/);
});

Deno.test("error: unknown override key names it and the nearest key", () => {
  configError(
    () => loadExperiment("tiny", { d_modle: "32" }),
    /unknown override --d_modle/,
    /did you mean --d_model\?/,
  );
});

Deno.test("error: wrong type in an override names key, value and expectation", () => {
  const msg = configError(() => loadExperiment("tiny", { d_model: "abc" }), /key "d_model"/);
  assert.match(msg, /hparams[/\\]tiny\.yaml/);
  assert.match(msg, /--d_model/);
  assert.match(msg, /expected a positive integer, got "abc"/);
  configError(
    () => loadExperiment("tiny", { transformer_dropout: "1.0" }),
    /"transformer_dropout"/,
    /\[0, 1\)/,
  );
  configError(() => loadExperiment("tiny", { optimizer: "SGD" }), /one of Adam, AdamW/, /"SGD"/);
  configError(() => loadExperiment("tiny", { d_state: "x" }), /positive integer or null/);
  configError(() => loadExperiment("tiny", { test_splits: "[dev-oher]" }), /"test_splits"/);
});

Deno.test("test_search: beam (the recipe's) in every file; greedy by override; nothing else", () => {
  for (const name of listExperiments()) {
    assert.equal(loadExperiment(name).test_search, "beam", name);
  }
  assert.equal(loadExperiment("tiny_ctc", { test_search: "greedy" }).test_search, "greedy");
  configError(() => loadExperiment("tiny", { test_search: "sample" }), /one of beam, greedy/);
});

Deno.test("error: cross-key rules name the key at fault", () => {
  configError(() => loadExperiment("tiny", { nhead: "5" }), /"nhead"/, /divisor of d_model/);
  configError(
    () => loadExperiment("tiny", { num_decoder_layers: "0" }),
    /"num_decoder_layers"/,
  );
  configError(
    () => loadExperiment("tiny_ctc", { token_type: "unigram", vocab_size: "31" }),
    /"token_type"/,
    /char/,
  );
  configError(() => loadExperiment("tiny", { vocab_size: "100" }), /"vocab_size"/);
  configError(() => loadExperiment("tiny", { d_state: "null" }), /"d_state"/, /Mamba/);
  configError(() => loadExperiment("tiny", { input_size: "640" }), /"input_size"/, /320/);
  configError(() => loadExperiment("tiny", { win_length: "50" }), /"win_length"/);
});

Deno.test("error: malformed YAML gives file, line and column", () => {
  const dir = tempDir({ broken: "seed: 1\nd_model: [1, 2\nnhead: 4\n" });
  try {
    configError(
      () => loadExperiment("broken", {}, { dir }),
      /broken\.yaml:\d+:\d+: malformed YAML/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("error: problems inside a file", () => {
  const dir = tempDir({
    unknown: tinyWith("d_model", "d_model: 64\nd_modell: 64"),
    wrongtype: tinyWith("num_encoder_layers", "num_encoder_layers: two"),
    missing: tinyWith("seed", ""),
    duplicate: tinyWith("seed", "seed: 1\nseed: 2"),
    notmapping: "- 1\n- 2\n",
  });
  try {
    configError(
      () => loadExperiment("unknown", {}, { dir }),
      /unknown\.yaml: unknown key "d_modell"/,
      /did you mean "d_model"/,
    );
    configError(
      () => loadExperiment("wrongtype", {}, { dir }),
      /wrongtype\.yaml: key "num_encoder_layers": expected a positive integer, got "two"/,
    );
    configError(() => loadExperiment("missing", {}, { dir }), /key "seed" is missing/);
    configError(() => loadExperiment("duplicate", {}, { dir }), /duplicate\.yaml:\d+:\d+/);
    configError(() => loadExperiment("notmapping", {}, { dir }), /expected a mapping/);
    assert.deepEqual(listExperiments(dir), [
      "duplicate",
      "missing",
      "notmapping",
      "unknown",
      "wrongtype",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
