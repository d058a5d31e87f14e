/**
 * The model verbs through the real CLI: `params` for all eight experiments of the paper's table
 * against the original's state_dict listings (tests/fixtures/statedicts, CONMAMBA_SPEC.md §5.3),
 * `init` -> `forward` on a fresh model, and `forward` on the original's golden weights and batch
 * (S2S_conmamba_small_d32) reproducing the original's outputs (rel L2 <= 1e-5, golden README).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readNpy } from "../../src/io/npy.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { relL2 } from "../fixtures/compare.ts";
import { cli } from "../fixtures/cli.ts";

const FIX = fileURLToPath(new URL("../fixtures/", import.meta.url));

/** The paper's table (§5.3): totals of the original's listings, parameters only. */
const TOTALS: Record<string, number> = {
  conformer_small: 13_327_296,
  conmamba_small: 14_075_520,
  conmambamamba_small: 14_570_880,
  conformer_large: 109_136_048,
  conmamba_large: 115_187_888,
  conmambamamba_large: 122_917_040,
  conformer_large_ctc: 28_786_111,
  conmamba_large_ctc: 31_555_519,
};

for (const [exp, total] of Object.entries(TOTALS)) {
  Deno.test(`params ${exp}: names, shapes and total equal the original's listing`, async () => {
    const r = await cli(["params", exp, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout) as {
      total: number;
      tensors: { name: string; shape: number[] }[];
    };
    const list = (await Deno.readTextFile(join(FIX, "statedicts", `${exp}.txt`))).trim()
      .split("\n").map((l) => l.split("\t"))
      .filter(([n]) => !n.includes("positional_encoding")); // buffers, not parameters
    assert.deepEqual(
      got.tensors.map((t) => `${t.name} [${t.shape.join(", ")}]`),
      list.map(([n, s]) => `${n} ${s}`),
    );
    assert.equal(got.total, total);
    assert.equal(list.reduce((a, l) => a + Number(l[3]), 0), total);
  });
}

Deno.test("params: the human table ends with the total in millions", async () => {
  const r = await cli(["params", "conmamba_small"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Transformer\.encoder\.layers\.\*\.mamba\s+12\s+192\s+1,997,568/);
  assert.match(r.stdout, /conmamba_small: 14\.1 M trainable parameters \(the paper: 14\.1 M\)/);
  // The one row where the original's yaml and the paper disagree (§5.3, G10).
  const mm = await cli(["params", "conmambamamba_small"]);
  assert.match(
    mm.stdout,
    /conmambamamba_small: 14\.6 M trainable parameters \(the paper prints 15 M/,
  );
});

Deno.test("forward on the original's golden weights reproduces its outputs", async () => {
  const g = join(FIX, "golden", "S2S_conmamba_small_d32");
  const out = await Deno.makeTempDir({ prefix: "cm-forward-" });
  try {
    const r = await cli([
      "forward",
      "conmamba_small",
      ...["--d_model", "32", "--d_ffn", "64", "--num_encoder_layers", "2"],
      ...["--num_decoder_layers", "2", "--output_neurons", "40", "--vocab_size", "40"],
      ...["--weights", join(g, "weights.safetensors"), "--feats", join(g, "feats.npy")],
      ...["--lengths", join(g, "lens.npy"), "--tokens", join(g, "tokens_bos.npy")],
      ...["--out", out],
    ]);
    assert.equal(r.code, 0, r.stderr);
    for (const name of ["enc_out", "ctc_logprobs", "seq_logprobs"]) {
      const ours = await readNpy(join(out, `${name}.npy`)),
        ref = await readNpy(join(g, `${name}.npy`));
      assert.deepEqual(ours.shape, ref.shape);
      const e = relL2(ours.data as Float32Array, ref.data as Float32Array);
      assert.ok(e <= 1e-5, `${name}: rel L2 ${e}`);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("init -> forward: fresh weights load strictly and give log-probabilities", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cm-init-" });
  try {
    const w = join(dir, "w.safetensors");
    const r = await cli(["init", "tiny", "--seed", "3", "--out", w]);
    assert.equal(r.code, 0, r.stderr);
    const st = await readSafetensors(w);
    assert.equal(st.metadata.seed, "3");
    assert.ok(st.tensors.has("Transformer.positional_encoding_decoder.pe"));
    // A (2, 50, 80) batch of normal-ish values and tokens [bos, 5, 6].
    const feats = new Float32Array(2 * 50 * 80).map((_, i) => Math.sin(i * 0.37));
    await Deno.writeFile(join(dir, "x.npy"), npyF32([2, 50, 80], feats));
    await Deno.writeFile(join(dir, "l.npy"), npyF32([2], Float32Array.from([1, 0.8])));
    await Deno.writeFile(join(dir, "t.npy"), npyI64([2, 3], [1, 5, 6, 1, 7, 0]));
    const f = await cli([
      "forward",
      "tiny",
      ...["--weights", w, "--feats", join(dir, "x.npy"), "--lengths", join(dir, "l.npy")],
      ...["--tokens", join(dir, "t.npy"), "--out", join(dir, "out")],
    ]);
    assert.equal(f.code, 0, f.stderr);
    const seq = await readNpy(join(dir, "out", "seq_logprobs.npy"));
    assert.deepEqual(seq.shape, [2, 3, 128]);
    const row = (seq.data as Float32Array).subarray(0, 128);
    assert.ok(Math.abs(row.reduce((a, v) => a + Math.exp(v), 0) - 1) < 1e-5);
    const bad = await cli([
      "forward",
      "tiny",
      ...["--weights", w, "--feats", join(dir, "t.npy"), "--lengths", join(dir, "l.npy")],
      ...["--out", join(dir, "out2")],
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /t\.npy: expected \[B, T, 80\]/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function npyHeader(descr: string, shape: number[]): Uint8Array {
  const s = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${s}, }`;
  while ((10 + h.length + 1) % 64 !== 0) h += " ";
  h += "\n";
  const out = new Uint8Array(10 + h.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 255, h.length >> 8]);
  out.set(new TextEncoder().encode(h), 10);
  return out;
}

function npyF32(shape: number[], data: Float32Array): Uint8Array {
  const h = npyHeader("<f4", shape), out = new Uint8Array(h.length + data.byteLength);
  out.set(h);
  out.set(new Uint8Array(data.buffer), h.length);
  return out;
}

function npyI64(shape: number[], data: number[]): Uint8Array {
  const body = BigInt64Array.from(data.map(BigInt)), h = npyHeader("<i8", shape);
  const out = new Uint8Array(h.length + body.byteLength);
  out.set(h);
  out.set(new Uint8Array(body.buffer), h.length);
  return out;
}
