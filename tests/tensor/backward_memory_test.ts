/**
 * The tape frees step buffers (src/tensor/autograd.ts): at the end of each layer's forward
 * (Tape.scope: intermediates no backward reads) and during backward (after their last use). Every
 * model family's gradients are bitwise those of a tape that frees nothing, the step's peak memory
 * is lower, and any use of a freed buffer throws instead of reading whatever reused the memory.
 * Gradients added in place (Tape.accumulateInPlace) match fresh ones with fewer adds.
 */
import { InputNormalization } from "../../src/audio/input_normalization.ts";
import { loadExperiment } from "../../src/config/load.ts";
import { initialize, Rng } from "../../src/nn/init.ts";
import { buildModel } from "../../src/nn/model_config.ts";
import { Tape, zeroGrad } from "../../src/tensor/autograd.ts";
import * as ag from "../../src/tensor/autograd_ops.ts";
import { UseAfterFreeError } from "../../src/tensor/backend.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { objectives } from "../../src/train/objectives.ts";
import { stepSettings } from "../../src/train/step.ts";
import { patternedBatch, tokenPatterns } from "../fixtures/patterned_batch.ts";

/** The four families, shrunk (S2S with each decoder, Conformer with RelPosMHAXL, CTC only). */
const SMALL = { d_model: "32", d_ffn: "64", num_encoder_layers: "1" };
const VOCAB = { vocab_size: "30", output_neurons: "30" };
const DEC = { ...VOCAB, num_decoder_layers: "1" };
const LAYERS_DOMINATE = { num_encoder_layers: "3", cnn_out_channels: "[4, 4]", input_size: "80" };
const CASES: [string, Record<string, string>][] = [
  ["tiny", { num_encoder_layers: "2", ...DEC }],
  ["conmambamamba_small", { ...SMALL, ...DEC }],
  ["conformer_large", { ...SMALL, nhead: "4", ...DEC }],
  ["conmamba_large_ctc", { ...SMALL, output_neurons: "30" }],
];

interface Run {
  loss: number;
  peak: number;
  grads: (Float32Array | null)[];
  names: string[];
  adds: number; // "add" kernel calls (forward and backward)
}

/** One forward + backward of family `name` on a fixed batch, once per tape setting in `modes`. */
async function runFamily(
  name: string,
  over: Record<string, string>,
  modes: { free: boolean; pack?: boolean; bf16?: boolean; inPlace?: boolean; probe?: boolean }[],
): Promise<Run[]> {
  const be = await WasmBackend.create({ threads: 1 });
  let adds = 0;
  const run = be.run.bind(be);
  be.run = (op, p, args) => {
    if (op === "add") adds++;
    return run(op, p, args);
  };
  try {
    const c = loadExperiment(name, over);
    const model = buildModel(be, c);
    initialize(model, c.seed!);
    const named = [...model.namedParameters()], params = named.map(([, p]) => p);
    const rng = new Rng(5);
    const patterns = tokenPatterns(30, c.n_mels!, rng);
    const batch = patternedBatch([[5, 9, 12, 7], [3, 8, 20]], patterns, rng, 12);
    new InputNormalization(c.n_mels!, 4).apply(
      batch.feats,
      batch.B,
      batch.T,
      batch.frames,
      1,
      true,
    );
    const s = stepSettings(c);
    return modes.map((m) => {
      // A no-op probe: the layers run their ops in sequence (no fused residual, no scopes).
      const capture = m.probe ? () => {} : undefined;
      const tape = new Tape(), ctx = { tape, training: true, seed: 11, stream: 0, capture };
      tape.freeBuffers = m.free;
      tape.packSaved = m.pack ?? true;
      tape.accumulateInPlace = m.inPlace ?? true;
      adds = 0;
      be.setMatmulPrecision(m.bf16 ? "bf16" : "fp32");
      be.resetPeak();
      try {
        const rel = batch.frames.map((n) => Math.fround(n / batch.T));
        const feats = Tensor.from(be, [batch.B, batch.T, batch.F], batch.feats);
        const enc = model.encode(ctx, feats, rel);
        const U = batch.tokensBos.length / batch.B;
        const dec = model.isS2S
          ? model.decode(ctx, batch.tokensBos, [batch.B, U], enc.encOut, enc.encLengths)
          : null;
        const r = objectives(enc, dec, batch, { ...s, gradAccumulation: 1 });
        tape.backwardFrom(r.seeds);
        return {
          loss: r.loss,
          peak: be.memoryStats().peakBytes,
          grads: params.map((p) => p.grad ? p.grad.toArray() : null),
          names: named.map(([n]) => n),
          adds,
        };
      } finally {
        tape.reset();
        be.resetStep();
        zeroGrad(params);
      }
    });
  } finally {
    be.close();
  }
}

/**
 * Loss and every gradient bitwise equal; parameters whose names match `sumOrder` only to 1e-6
 * relative L2 (their gradient is a float32 sum over the batch's rows taken in another order: a
 * few ulp of the sum, while a missing or doubled term is O(1)).
 */
function assertBitwise(what: string, x: Run, y: Run, sumOrder?: RegExp): void {
  if (!Object.is(x.loss, y.loss)) throw new Error(`${what}: loss ${x.loss} vs ${y.loss}`);
  x.grads.forEach((g, i) => {
    const h = y.grads[i];
    if (!g || !h) throw new Error(`${what}: parameter ${i} got no gradient`);
    if (sumOrder?.test(x.names[i])) {
      let num = 0, den = 0;
      for (let j = 0; j < g.length; j++) num += (g[j] - h[j]) ** 2, den += g[j] ** 2;
      if (!(Math.sqrt(num) <= 1e-6 * Math.sqrt(den))) {
        throw new Error(`${what}: ${x.names[i]}: relative L2 ${Math.sqrt(num / den)}`);
      }
      return;
    }
    const a = new Uint32Array(g.buffer), b = new Uint32Array(h.buffer);
    for (let j = 0; j < a.length; j++) {
      if (a[j] !== b[j]) {
        throw new Error(`${what}: parameter ${i} element ${j}: ${g[j]} vs ${h[j]}`);
      }
    }
  });
}

for (const [name, over] of CASES) {
  // Gradients added in place (matmul's and LayerNorm's accumulate flags onto the gradient so
  // far) instead of by a separate add: the same sums in another order of float32 additions, so
  // equal to ~1e-6 relative (the backward's own error is ~1e-6, golden tests use 1e-4), with
  // fewer add kernels. A gradient shared by two inputs and written in place would be off by
  // O(1); a skipped accumulation by the whole gradient.
  Deno.test(`backward adds in place: ${name} gradients equal to 1e-5, fewer adds`, async () => {
    const [fresh, inPlace] = await runFamily(name, over, [
      { free: true, inPlace: false },
      { free: true, inPlace: true },
    ]);
    if (!Object.is(fresh.loss, inPlace.loss)) throw new Error("the forward changed");
    fresh.grads.forEach((g, i) => {
      const h = inPlace.grads[i]!;
      let num = 0, den = 0;
      for (let j = 0; j < g!.length; j++) num += (g![j] - h[j]) ** 2, den += g![j] ** 2;
      if (!(Math.sqrt(num) <= 1e-5 * Math.sqrt(den) + 1e-30)) {
        throw new Error(`parameter ${i}: relative L2 ${Math.sqrt(num / den)}`);
      }
    });
    if (!(inPlace.adds < fresh.adds)) {
      throw new Error(`adds in place ${inPlace.adds}, fresh ${fresh.adds}`);
    }
  });

  // The residuals around dropped-out branches (FFN half steps, the convolution module, the
  // Transformer decoder's attentions and feed-forward) as one node in training (the branch's last
  // Linear, then one dropout_add kernel): the same bits as matmul, dropout, scale and add in
  // sequence, except that the branch's last bias gradient comes from scale_dropout's column sums
  // (chunk order) instead of sum_rows (row order).
  Deno.test(`fused residual dropout: ${name} loss and gradients bitwise the ops in sequence`, async () => {
    const [seq, fused] = await runFamily(name, over, [
      { free: true, probe: true },
      { free: true },
    ]);
    const branchBias =
      /(ffn_module\d\.1\.ffn\.3|after_conv\.2|decoder\.layers\.\d+\.(pos_ffn\.ffn\.3|\w+\.att\.out_proj))\.bias$/;
    assertBitwise("fused residual", seq, fused, branchBias);
    if (!(fused.adds < seq.adds)) {
      throw new Error(`adds fused ${fused.adds}, in sequence ${seq.adds}`);
    }
  });

  Deno.test(`backward frees dead buffers: ${name} gradients bitwise equal, lower peak`, async () => {
    const [kept, freed] = await runFamily(name, over, [{ free: false }, { free: true }]);
    assertBitwise("freeing", kept, freed);
    // The peak includes parameters and their gradients; the step's own share must shrink.
    if (!(freed.peak < kept.peak)) {
      throw new Error(`peak with freeing ${freed.peak} B, without ${kept.peak} B`);
    }
  });

  // bf16 matmul mode: saved matmul operands packed in bf16 give the same bits (the backward's
  // products round them to bf16 anyway) at a lower peak; and bf16 is near fp32 (a sanity bound:
  // 8-bit mantissas on the products' inputs, relative L2 of the gradient ~1e-2 at most here).
  Deno.test(`bf16 mode: ${name} packed saved operands bitwise equal, lower peak`, async () => {
    // Three encoder layers and a 4-channel CNN: otherwise the front end's buffers set the peak.
    const [fp32, unpacked, packed] = await runFamily(name, { ...over, ...LAYERS_DOMINATE }, [
      { free: true },
      { free: true, bf16: true, pack: false },
      { free: true, bf16: true, pack: true },
    ]);
    assertBitwise("packing", unpacked, packed);
    if (!(packed.peak < unpacked.peak)) {
      throw new Error(`peak packed ${packed.peak} B, unpacked ${unpacked.peak} B`);
    }
    let num = 0, den = 0, same = true;
    fp32.grads.forEach((g, i) => {
      const h = packed.grads[i]!;
      for (let j = 0; j < g!.length; j++) {
        num += (g![j] - h[j]) ** 2, den += g![j] ** 2;
        same &&= g![j] === h[j];
      }
    });
    const rel = Math.sqrt(num / den);
    if (same || !(rel < 3e-2)) throw new Error(`bf16 vs fp32 gradient rel L2 ${rel}`);
  });
}

Deno.test("freed buffers: use after the tape freed it, after resetStep, double free all throw", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const tape = new Tape();
    const w = Tensor.param(be, [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const x = Tensor.from(be, [2, 3], [1, -1, 2, 0.5, 3, -2]);
    const h = ag.gelu(tape, ag.matmul(tape, x, w, { transB: true })); // h: (2, 3)
    const y = ag.scale(tape, h, 2);
    const keep = ag.add(tape, h, y); // read after backward: kept by `keep`
    const loss = ag.mul(tape, keep, keep);
    tape.backwardFrom([[loss, Tensor.from(be, [2, 3], new Float32Array(6).fill(1))]], {
      keep: [keep],
    });
    keep.toArray(); // pinned: still readable
    loss.toArray(); // a seed: still readable
    const throws = (what: string, fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        if (e instanceof UseAfterFreeError) return;
        throw e;
      }
      throw new Error(`${what}: no UseAfterFreeError`);
    };
    throws("download of a freed activation", () => h.toArray());
    throws("kernel on a freed activation", () => ag.scale(new Tape(), y, 1));
    if (!w.grad) throw new Error("no parameter gradient");
    tape.reset();
    be.resetStep();
    throws("download after resetStep", () => keep.toArray());
    const p = Tensor.from(be, [4], [1, 2, 3, 4], "param");
    p.free();
    throws("double free", () => p.free());
    w.grad.toArray(); // parameter gradients are not step buffers
  } finally {
    be.close();
  }
});

Deno.test("Tape.scope frees what no backward reads, keeps saved tensors, inputs and the result", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const tape = new Tape();
    const w = Tensor.param(be, [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const x = Tensor.from(be, [2, 3], [1, -1, 2, 0.5, 3, -2]); // from outside the scope
    let h!: Tensor, g!: Tensor, d!: Tensor, xv!: Tensor;
    const y = tape.scope(() => {
      xv = ag.reshape(tape, x, [3, 2]); // a view of the outside tensor: must survive
      h = ag.matmul(tape, ag.reshape(tape, xv, [2, 3]), w, { transB: true }); // GELU saves it
      g = ag.gelu(tape, h); // read by dropout only, whose backward needs nothing: freed
      d = ag.dropout(tape, g, { p: 0.5, seed: 1, stream: 0 }); // read by mul (saved): kept
      return ag.mul(tape, d, h);
    });
    const state = (t: Tensor) => t.storage.released ? "freed" : "live";
    const got = [x, xv, h, g, d, y].map(state).join(" ");
    if (got !== "live live live freed live live") throw new Error(`x xv h g d y: ${got}`);
    tape.backward(ag.sum(tape, y));
    if (!w.grad) throw new Error("no gradient reached w");
  } finally {
    be.close();
  }
});
