/**
 * Padding (CONMAMBA_SPEC.md 4.14, G2, G3, 4.6, 7): in a padded batch, an utterance's valid
 * positions give what the utterance gives alone wherever the original respects padding, and do
 * NOT where the original ignores it:
 *   - CNN front end: reflect padding at the tensor's end only, so the last valid frame of a
 *     shorter utterance reads padded frames (4.2); every earlier frame equals alone.
 *   - Transformer decoder: with its memory length, the memory's padded frames are masked, and
 *     target padding at the end is invisible to valid positions: equal to alone.
 *   - Mamba decoder: target padding is harmless (causal scan), but the padded memory is scanned
 *     (G3): differs from alone with its own memory.
 *   - Conformer encoder: attention masks keys and the conv module's output is zeroed at padded
 *     frames, but its depthwise conv (zero padding only at the tensor's ends) still reads padded
 *     frames' values (4.6 masks the OUTPUT only): with kernel K, 1 layer, the frames within
 *     (K - 1) / 2 of the valid end differ from alone and all earlier ones are equal; with K = 1
 *     the encoder respects padding completely, over 2 layers.
 *   - ConMamba encoder: ignores padding (G2): every valid frame differs from alone (the backward
 *     scan starts in the padding), and depends on the padded frames' content.
 *   - Objectives: CTC (input and target lengths) and the seq loss (NLL by length, KL by target
 *     value 0) of a padded batch equal the mean over its utterances alone, for smoothing 0 and 0.1.
 * "Equal" is within float32 noise: the kernels may split a batch of 2 and a batch of 1 across the
 * threads differently, and sum in different orders. Bound: max |a - b| <= 1e-5 (outputs O(1),
 * LayerNorm-ed activations and log-probs of magnitude <= ~5: ~20 ulp); measured: exactly 0 in
 * every "equal" comparison (the kernels sum each output element in the same order whatever the
 * batch). "Differs" is a max |a - b| above 1e-3, 100x that bound (one exception, commented).
 */
import {
  AsrModel,
  type AsrModelOptions,
  type DecoderOutputs,
  type EncoderOutputs,
} from "../../src/nn/asr_model.ts";
import { CnnFrontEnd } from "../../src/nn/cnn_frontend.ts";
import { initialize } from "../../src/nn/init.ts";
import { evalContext } from "../../src/nn/module.ts";
import { objectives } from "../../src/train/objectives.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { ctcLoss } from "../../src/tensor/loss_ops.ts";
import type { Backend } from "../../src/tensor/backend.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, withBackend } from "../ops/helpers.ts";

const EQ = 1e-5, NE = 1e-3;
const D = 16, V = 12;

/** max_i |a_i - b_i| (Infinity on NaN). */
function maxDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** Rows [t0, t1) of utterance b of a (B, T, W) array. */
function rows(x: Float32Array, b: number, tMax: number, w: number, t0: number, t1: number) {
  return x.slice((b * tMax + t0) * w, (b * tMax + t1) * w);
}

/** Runs fn without recording and returns its output on the host. */
function run(be: Backend, fn: (ctx: ReturnType<typeof evalContext>) => Tensor): Float32Array {
  const tape = new Tape();
  const y = tape.noGrad(() => fn(evalContext(tape)).toArray());
  be.resetStep();
  return y;
}

/** Batch of 2 (B, S, W): utterance 1 full, utterance 2 valid for `len` frames then `fill`. */
function batch(s: number, w: number, len: number, seed: number, fill: "zero" | "noise") {
  const x = randn(2 * s * w, seed);
  const noise = randn(s * w, seed + 1, 3);
  for (let i = (s + len) * w; i < 2 * s * w; i++) x[i] = fill === "zero" ? 0 : noise[i - s * w];
  return x;
}

const report: string[] = [];
const log = (what: string, v: number) => report.push(`${what}: max |diff| ${v.toExponential(2)}`);

function expectEqual(what: string, a: Float32Array, b: Float32Array): void {
  const d = maxDiff(a, b);
  log(what, d);
  if (!(d <= EQ)) throw new Error(`${what}: max |diff| ${d} > ${EQ} (expected equal)`);
}

function expectDiffer(what: string, a: Float32Array, b: Float32Array, above = NE): void {
  const d = maxDiff(a, b);
  log(what, d);
  if (!(d > above)) throw new Error(`${what}: max |diff| ${d} <= ${above} (expected to differ)`);
}

Deno.test("padding: CNN front end: valid frames equal alone except the last, which reads padding", async () => {
  await withBackend(2, (be) => {
    const cnn = new CnnFrontEnd(be, { nMels: 16, channels: [4, 4] });
    initialize(cnn, 3);
    // T = 40 -> T1 = 20 -> T' = 10; utterance 2 has 30 frames: alone T1 = 15, T' = 8. Block 1's
    // frame 7 reads block-0 frames 13, 14, 15: frame 15 is the reflection of 13 alone, but in the
    // batch a real frame computed from input frames 29 (valid), 30, 31 (zero padding).
    const x = batch(40, 16, 30, 1, "zero");
    const both = run(be, (ctx) => cnn.forward(ctx, Tensor.from(be, [2, 40, 16], x)));
    const alone = run(
      be,
      (ctx) => cnn.forward(ctx, Tensor.from(be, [1, 30, 16], x.slice(40 * 16, 70 * 16))),
    );
    const w = cnn.outFreq * cnn.outChannels; // 16
    if (alone.length !== 8 * w) throw new Error(`alone: ${alone.length / w} frames`);
    expectEqual("CNN utt 2 frames 0..6", rows(both, 1, 10, w, 0, 7), alone.slice(0, 7 * w));
    expectDiffer("CNN utt 2 frame 7", rows(both, 1, 10, w, 7, 8), alone.slice(7 * w));
    const first = run(be, (ctx) => cnn.forward(ctx, Tensor.from(be, [1, 40, 16], x.slice(0, 640))));
    expectEqual("CNN utt 1 (unpadded)", rows(both, 0, 10, w, 0, 10), first);
    cnn.free();
  });
});

const S2S: AsrModelOptions = {
  dModel: D,
  dFfn: 32,
  numEncoderLayers: 1,
  numDecoderLayers: 2,
  heads: 2,
  vocab: V,
  nMels: 16,
  cnnChannels: [4, 4],
};

// The decoders run on a given memory (B, T' = 10, d): utterance 2 has 6 valid frames, its padded
// frames hold N(0, 9) noise. Tokens: utterance 1 [bos] + 4 ids, utterance 2 [bos] + 2 ids + 2 pad.
const TM = 10, LM = 6, UT = 5;
const BOS = [1, 3, 5, 7, 4, 1, 6, 3, 0, 0];

function decodeBoth(be: Backend, model: AsrModel, mem: Float32Array, lens: number[]) {
  return run(
    be,
    (ctx) => model.decode(ctx, BOS, [2, UT], Tensor.from(be, [2, TM, D], mem), lens).seqLogProbs,
  );
}

Deno.test("padding: Transformer decoder: valid targets equal alone (memory and target masks)", async () => {
  await withBackend(2, (be) => {
    const model = new AsrModel(be, { ...S2S, decoder: "transformer" });
    initialize(model, 5);
    const mem = batch(TM, D, LM, 11, "noise");
    const both = decodeBoth(be, model, mem, [TM, LM]);
    const alone2 = run(be, (ctx) =>
      model.decode(
        ctx,
        [1, 6, 3],
        [1, 3],
        Tensor.from(be, [1, LM, D], mem.slice(TM * D, (TM + LM) * D)),
        [LM],
      ).seqLogProbs);
    const alone1 = run(
      be,
      (ctx) =>
        model.decode(
          ctx,
          BOS.slice(0, UT),
          [1, UT],
          Tensor.from(be, [1, TM, D], mem.slice(0, TM * D)),
          [
            TM,
          ],
        ).seqLogProbs,
    );
    expectEqual("transformer dec utt 2, 3 valid positions", rows(both, 1, UT, V, 0, 3), alone2);
    expectEqual("transformer dec utt 1 (unpadded)", rows(both, 0, UT, V, 0, UT), alone1);
    // Control: without the memory length the padded frames reach the valid positions.
    const unmasked = decodeBoth(be, model, mem, [TM, TM]);
    expectDiffer(
      "transformer dec utt 2 without memory length",
      rows(unmasked, 1, UT, V, 0, 3),
      alone2,
    );
    model.free();
  });
});

Deno.test("padding: Mamba decoder: target padding harmless, padded memory scanned (G3)", async () => {
  await withBackend(2, (be) => {
    const model = new AsrModel(be, { ...S2S, decoder: "mamba" });
    initialize(model, 6);
    const mem = batch(TM, D, LM, 12, "noise");
    const both = decodeBoth(be, model, mem, [TM, LM]);
    const alone = (frames: number) =>
      run(be, (ctx) =>
        model.decode(
          ctx,
          [1, 6, 3],
          [1, 3],
          Tensor.from(be, [1, frames, D], mem.slice(TM * D, (TM + frames) * D)),
          [frames],
        ).seqLogProbs);
    // The same (padded) memory, the targets without their padding: equal (causal scan).
    expectEqual(
      "mamba dec utt 2 vs alone on the padded memory",
      rows(both, 1, UT, V, 0, 3),
      alone(TM),
    );
    // Its own memory of 6 frames: differs, the cross scan ran over 4 padded frames first.
    expectDiffer(
      "mamba dec utt 2 vs alone on its own memory",
      rows(both, 1, UT, V, 0, 3),
      alone(LM),
    );
    model.free();
  });
});

/**
 * The encoder of an AsrModel (initialize() gives everything under `Transformer.` the Xavier
 * re-init; a bare ConformerEncoder would keep its zero-filled attention projections).
 */
function encoderOf(be: Backend, o: Partial<AsrModelOptions>, seed: number): AsrModel {
  const model = new AsrModel(be, { ...S2S, decoder: null, ...o });
  initialize(model, seed);
  return model;
}

/** model.Transformer.encoder on x (B, S, d) with lengths (ConMamba ignores them). */
function encode(be: Backend, m: AsrModel, x: Float32Array, b: number, lens: number[]) {
  return run(
    be,
    (ctx) =>
      m.Transformer.encoder.forward(ctx, Tensor.from(be, [b, x.length / (b * D), D], x), lens),
  );
}

Deno.test("padding: Conformer encoder: masked except the depthwise conv's reach into padding (4.6)", async () => {
  await withBackend(2, (be) => {
    const S = 12, L = 8;
    const x = batch(S, D, L, 21, "noise"), x2 = x.slice(S * D, (S + L) * D);
    // Kernel 5, 1 layer: frame t's depthwise conv reads frames t - 2 .. t + 2. Frames 6 and 7
    // read the padded frame 8 (and 9), whose GLU output is not zero (only the module's output is).
    const k5 = encoderOf(be, { encoder: "conformer", kernelSize: 5 }, 7);
    const both = encode(be, k5, x, 2, [S, L]), one = encode(be, k5, x2, 1, [L]);
    expectEqual("conformer K5 utt 2 frames 0..5", rows(both, 1, S, D, 0, 6), one.slice(0, 6 * D));
    expectDiffer("conformer K5 utt 2 frames 6..7", rows(both, 1, S, D, 6, 8), one.slice(6 * D));
    // Control: without its length the attention reads the padding and frames 0..5 differ too.
    const unmasked = encode(be, k5, x, 2, [S, S]);
    expectDiffer(
      "conformer K5 utt 2 frames 0..5, length 12",
      rows(unmasked, 1, S, D, 0, 6),
      one.slice(0, 6 * D),
    );
    // Kernel 1 (no temporal reach), 2 layers: the masks alone make the encoder respect padding.
    const k1 = encoderOf(be, { encoder: "conformer", kernelSize: 1, numEncoderLayers: 2 }, 8);
    expectEqual(
      "conformer K1 2 layers utt 2 all valid frames",
      rows(encode(be, k1, x, 2, [S, L]), 1, S, D, 0, L),
      encode(be, k1, x2, 1, [L]),
    );
    k5.free();
    k1.free();
  });
});

for (const kernelSize of [31, 1]) {
  Deno.test(`padding: ConMamba encoder (kernel ${kernelSize}) ignores padding (G2): every valid frame differs from alone`, async () => {
    await withBackend(2, (be) => {
      const S = 12, L = 8;
      const m = encoderOf(be, { encoder: "conmamba", kernelSize }, 9);
      const x = batch(S, D, L, 31, "noise");
      const both = encode(be, m, x, 2, [S, L]);
      const one = encode(be, m, x.slice(S * D, (S + L) * D), 1, [L]);
      const first = encode(be, m, x.slice(0, S * D), 1, [S]);
      expectEqual(
        `conmamba K${kernelSize} utt 1 (unpadded) vs alone`,
        rows(both, 0, S, D, 0, S),
        first,
      );
      // Frame 0 too: the backward scan starts in the padding. With kernel 1 the conv module has
      // no temporal reach and the FFNs none either, so this is the scans alone; their memory of
      // the padding decays by ~exp(-delta |A|) per frame (dt_proj_b.bias keeps U(+-1), G1):
      // measured 7e-5 at frame 0, 8 frames from the padding, 1.4e-2 at frame 5. There the bound
      // is 2 EQ: still far above float noise (every "equal" comparison here measures exactly 0).
      for (let t = 0; t < L; t++) {
        expectDiffer(
          `conmamba K${kernelSize} utt 2 frame ${t} vs alone`,
          rows(both, 1, S, D, t, t + 1),
          one.slice(t * D, (t + 1) * D),
          kernelSize === 1 ? 2 * EQ : NE,
        );
      }
      // The valid outputs depend on what the padded frames hold (zeros instead of noise).
      const zeros = x.slice();
      zeros.fill(0, (S + L) * D);
      expectDiffer(
        `conmamba K${kernelSize} utt 2 valid frames, padding content changed`,
        rows(encode(be, m, zeros, 2, [S, L]), 1, S, D, 0, L),
        rows(both, 1, S, D, 0, L),
      );
      m.free();
    });
  });
}

Deno.test("padding: objectives of a padded batch = the mean of its utterances alone (CTC, NLL, KL)", async () => {
  await withBackend(2, (be) => {
    // Log-softmax rows of random logits; utterance 2's padded frames / positions get rows that
    // put almost all mass on one id, so counting them would change the losses by O(10).
    const lsm = (n: number, seed: number) => {
      const z = randn(n * V, seed, 2), out = new Float32Array(n * V);
      for (let r = 0; r < n; r++) {
        let m = -Infinity, s = 0;
        for (let k = 0; k < V; k++) m = Math.max(m, z[r * V + k]);
        for (let k = 0; k < V; k++) s += Math.exp(z[r * V + k] - m);
        for (let k = 0; k < V; k++) out[r * V + k] = z[r * V + k] - m - Math.log(s);
      }
      return out;
    };
    const T = 10, LT = 6, U = 5;
    const ctcLp = lsm(2 * T, 41), seqLp = lsm(2 * U, 42);
    const spike = new Float32Array(V).fill(-20);
    spike[9] = 0;
    for (let t = LT; t < T; t++) ctcLp.set(spike, (T + t) * V);
    for (let u = 3; u < U; u++) seqLp.set(spike, (U + u) * V);
    const ids = [[3, 5, 7, 4], [6, 3]];
    const targets = (rowsOf: number[][], s: number) =>
      rowsOf.flatMap((r) => [...r, ...new Array(s - r.length).fill(0)]);
    const lossOf = (
      b: number,
      ctc: Float32Array,
      t: number,
      seq: Float32Array,
      u: number,
      lens: number[],
      utt: number[][],
      smoothing: number,
    ) => {
      const enc = {
        logProbs: Tensor.from(be, [b, t, V], ctc),
        encLengths: lens,
      } as unknown as EncoderOutputs;
      const dec = { seqLogProbs: Tensor.from(be, [b, u, V], seq) } as unknown as DecoderOutputs;
      const r = objectives(enc, dec, {
        B: b,
        tokens: targets(utt, u - 1),
        tokenLens: utt.map((x) => x.length),
        tokensEos: targets(utt.map((x) => [...x, 2]), u),
      }, { blank: 0, ctcWeight: 0.3, labelSmoothing: smoothing, gradAccumulation: 1 });
      be.resetStep();
      return r;
    };
    for (const smoothing of [0, 0.1]) {
      const both = lossOf(2, ctcLp, T, seqLp, U, [T, LT], ids, smoothing);
      const a1 = lossOf(
        1,
        ctcLp.slice(0, T * V),
        T,
        seqLp.slice(0, U * V),
        U,
        [T],
        [ids[0]],
        smoothing,
      );
      const a2 = lossOf(
        1,
        ctcLp.slice(T * V, (T + LT) * V),
        LT,
        seqLp.slice(U * V, (U + 3) * V),
        3,
        [LT],
        [ids[1]],
        smoothing,
      );
      // Per-utterance values are float32 (relative rounding 6e-8), summed in float64: 1e-6.
      for (
        const [what, b, s1, s2] of [
          ["ctc", both.lossCtc, a1.lossCtc, a2.lossCtc],
          ["seq", both.lossSeq!, a1.lossSeq!, a2.lossSeq!],
        ] as const
      ) {
        const e = Math.abs(b - (s1 + s2) / 2) / Math.abs(b);
        report.push(`objectives smoothing ${smoothing} ${what}: rel diff ${e.toExponential(2)}`);
        if (!(e <= 1e-6)) {
          throw new Error(`${what} loss (smoothing ${smoothing}): batch ${b}, alone ${s1}, ${s2}`);
        }
      }
    }
    // The CTC gradient is zero at padded frames and, per valid frame, alone's divided by B = 2.
    const ctcB = ctcLoss(Tensor.from(be, [2, T, V], ctcLp), targets(ids, 4), [T, LT], [4, 2]);
    const ctcA = ctcLoss(Tensor.from(be, [1, LT, V], ctcLp.slice(T * V, (T + LT) * V)), ids[1], [
      LT,
    ], [2]);
    const [pB, pA] = [ctcB.perUtterance[1], ctcA.perUtterance[0]];
    report.push(`ctc per-utterance loss utt 2: batch ${pB}, alone ${pA}`);
    if (!(Math.abs(pB - pA) <= 1e-6 * Math.abs(pA))) throw new Error(`ctc utt 2: ${pB} vs ${pA}`);
    const gB = ctcB.grad.toArray(), gA = ctcA.grad.toArray();
    expectEqual(
      "ctc grad utt 2 padded frames (vs 0)",
      rows(gB, 1, T, V, LT, T),
      new Float32Array((T - LT) * V),
    );
    expectEqual(
      "ctc grad utt 2 valid frames x 2 vs alone",
      rows(gB, 1, T, V, 0, LT).map((g) => 2 * g),
      gA,
    );
    be.resetStep();
  });
});

Deno.test("padding: report", () => {
  console.log(report.join("\n"));
});
