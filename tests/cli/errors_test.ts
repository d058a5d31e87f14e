/**
 * Bad input to the real CLI: each mistake is one line naming the problem, exit code 2, and
 * nothing is written (the cache directory is not even created).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exists } from "../../src/pipeline/fs_util.ts";
import { cli } from "../fixtures/cli.ts";

const HPARAMS = fileURLToPath(new URL("../../hparams/", import.meta.url));

/** A copy of hparams/ with tiny.yaml edited by `edit`. */
async function hparamsWith(edit: (yaml: string) => string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "cm-hparams-" });
  for await (const e of Deno.readDir(HPARAMS)) {
    await Deno.copyFile(join(HPARAMS, e.name), join(dir, e.name));
  }
  const p = join(dir, "tiny.yaml");
  await Deno.writeTextFile(p, edit(await Deno.readTextFile(p)));
  return dir;
}

const cases: { name: string; args: string[]; edit?: (y: string) => string; expect: RegExp }[] = [
  {
    name: "malformed YAML",
    args: ["pipeline", "tiny"],
    edit: (y) => y.replace("d_model: 64", "d_model: [64, 128"),
    expect: /tiny\.yaml:\d+:\d+: malformed YAML/,
  },
  {
    name: "unknown key in the file",
    args: ["pipeline", "tiny"],
    edit: (y) => y + "\nd_modle: 64\n",
    expect: /tiny\.yaml: unknown key "d_modle" \(did you mean "d_model"\?\)/,
  },
  {
    name: "wrong type in the file",
    args: ["pipeline", "tiny"],
    edit: (y) => y.replace("d_model: 64", "d_model: sixty-four"),
    expect: /tiny\.yaml: key "d_model": expected a positive integer, got "sixty-four"/,
  },
  {
    name: "wrong type in an override",
    args: ["pipeline", "tiny", "--number_of_epochs", "1.5"],
    expect: /key "number_of_epochs" \(from --number_of_epochs\): expected .*integer.*1\.5/,
  },
  {
    name: "unknown override",
    args: ["pipeline", "tiny", "--d_modle", "3"],
    expect: /unknown override --d_modle \(did you mean --d_model\?\)/,
  },
  {
    name: "an argument that is not an override",
    args: ["pipeline", "tiny", "d_model", "3"],
    expect: /expected an override --key value or --key=value, got "d_model"/,
  },
  {
    name: "unknown experiment",
    args: ["pipeline", "conmamba_huge"],
    expect: /unknown experiment "conmamba_huge" .*available: conformer_large, .*tiny/,
  },
  {
    name: "a thread count that is not a positive integer",
    args: ["pipeline", "tiny", "--threads", "0"],
    expect: /--threads: expected a positive integer, got "0"/,
  },
  {
    name: "a device that is not there",
    args: ["pipeline", "tiny", "--device", "cuda"],
    // The library may be built here (make test builds it where nvcc exists) or not: either way
    // the message says why CUDA cannot run, and what to use instead.
    expect: /--device cuda: (the CUDA driver reports no GPU|cannot load .*); use --device wasm/,
  },
  {
    name: "an unknown device",
    args: ["pipeline", "tiny", "--device", "tpu"],
    expect: /--device: expected wasm or cuda, got "tpu"/,
  },
  {
    name: "unknown stage for --until",
    args: ["pipeline", "tiny", "--until", "frobnicate"],
    expect: /unknown stage "frobnicate" for tiny/,
  },
];

for (const c of cases) {
  Deno.test(`bad input: ${c.name} -> one-line error, exit 2, nothing written`, async () => {
    const cache = join(await Deno.makeTempDir({ prefix: "cm-cache-" }), "cache");
    const hparams = c.edit ? await hparamsWith(c.edit) : undefined;
    const r = await cli(
      [...c.args, "--cache", cache],
      hparams ? { CONMAMBA_HPARAMS: hparams } : {},
    );
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
    assert.match(lines[0], /^error: /);
    assert.match(lines[0], c.expect);
    assert.equal(r.stdout, "");
    assert.equal(await exists(cache), false, "the cache must not be created");
    if (hparams) await Deno.remove(hparams, { recursive: true });
  });
}

Deno.test("status lists the stages this build runs for an experiment and names the rest", async () => {
  const cache = join(await Deno.makeTempDir({ prefix: "cm-cache-" }), "cache");
  const { PLANNED } = await import("../../pipelines/asr.ts");
  const names = (st: { stages: { stage: string }[]; pending: string[] }) => [
    ...st.stages.map((s) => s.stage),
    ...st.pending.map((p) => p.split(" ")[0]),
  ];
  // tiny (S2S) and tiny_ctc: every stage runs; a state size the scan kernels cannot hold
  // leaves train (and what follows it) pending, with the reason.
  for (const exp of ["tiny", "tiny_ctc"]) {
    const st = JSON.parse((await cli(["status", exp, "--json", "--cache", cache])).stdout);
    assert.deepEqual(st.stages.map((s: { stage: string }) => s.stage), [...PLANNED]);
    assert.deepEqual(st.pending, []);
  }
  const big = await cli(["status", "tiny", "--json", "--cache", cache, "--d_state", "128"]);
  assert.equal(big.code, 0, big.stderr);
  const a = JSON.parse(big.stdout);
  assert.deepEqual(a.stages.map((s: { stage: string }) => s.stage), [
    "download",
    "fbank",
    "tokenizer",
  ]);
  assert.match(a.pending[0], /^train \(d_state 128: the selective-scan kernels hold at most 64/);
  assert.deepEqual(names(a), [...PLANNED]);
});
