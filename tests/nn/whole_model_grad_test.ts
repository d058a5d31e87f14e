/**
 * Whole-model checks on tiny models of the four families (CONMAMBA_SPEC.md 1, 4.1, 7):
 * ConMamba + Transformer (NLL, label smoothing 0), ConMamba + Mamba (KL, smoothing 0.1),
 * Conformer + Transformer (KL, smoothing 0.1) and the ConMamba CTC model (CTC only). Each has
 * d 16, d_ffn 32, 1 encoder (+ 1 decoder) layer, 2 heads, V 12, 16 mels, CNN channels [4, 4],
 * kernel 31, is initialised with initialize() and then has its 1-D parameters and LayerNorm
 * affines moved off 1 / 0 (so that a backward that ignores gamma, or swaps weight and bias,
 * cannot hide), and runs in eval mode (dropout off) on a padded batch of 2 (relative lengths
 * [1, 0.75]: encoder lengths [10, 8] of T' = 10; 4 and 2 tokens).
 *
 * 1. The tape gradient of the recipe's objective (src/train/objectives.ts: CTC weight 0.3, seeds
 *    through Tape.backwardFrom) with respect to EVERY parameter tensor equals finite differences
 *    of the scalar loss along three directions per tensor: a random unit direction, its
 *    largest-gradient element, and g / |g| (steps and tolerances: see `probe` and EPS).
 * 2. The forward in float64 where it is cheap. We do NOT compose a full float64 reference model
 *    (the goldens in golden_s2s_test.ts / golden_ctc_test.ts pin the forward against the original
 *    code layer by layer); instead what lies downstream of captured activations is recomputed in
 *    float64 on the host from the float32 values the model produced, and invariants are checked:
 *    src_proj = flatten(cnnOut) W^T + b; encOut = LN_enc(last encoder layer) and its rows before
 *    the affine have mean 0 and variance v / (v + eps); ctc logits = ctc_lin(encOut); p_ctc =
 *    log_softmax(logits) with probabilities summing to 1 per row within 1e-6; the same for
 *    decOut (decoder final LN), seq logits and p_seq; and the objective's values against the
 *    float64 CTC alpha recursion and smoothed NLL / KL of tests/ops/reference.ts.
 */
import { AsrModel, type AsrModelOptions } from "../../src/nn/asr_model.ts";
import { initialize } from "../../src/nn/init.ts";
import type { LayerNorm, SbLayerNorm } from "../../src/nn/layer_norm.ts";
import type { SbLinear } from "../../src/nn/linear.ts";
import { evalContext } from "../../src/nn/module.ts";
import { type ObjectiveResult, objectives } from "../../src/train/objectives.ts";
import { Tape } from "../../src/tensor/autograd.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { randn } from "../ops/helpers.ts";
import {
  ctcNllRef,
  layerNormRef,
  logSoftmaxRef,
  matmulRef,
  type Result,
  smoothedNllRef,
} from "../ops/reference.ts";

const BASE: AsrModelOptions = {
  dModel: 16,
  dFfn: 32,
  numEncoderLayers: 1,
  numDecoderLayers: 1,
  heads: 2,
  vocab: 12,
  nMels: 16,
  cnnChannels: [4, 4],
};

interface Family {
  name: string;
  opts: AsrModelOptions;
  /** Label smoothing of the seq loss; null: a CTC-only recipe. */
  smoothing: number | null;
}

const FAMILIES: Family[] = [
  {
    name: "conmamba+transformer",
    opts: { ...BASE, encoder: "conmamba", decoder: "transformer" },
    smoothing: 0,
  },
  {
    name: "conmamba+mamba",
    opts: { ...BASE, encoder: "conmamba", decoder: "mamba" },
    smoothing: 0.1,
  },
  {
    name: "conformer+transformer",
    opts: { ...BASE, encoder: "conformer", decoder: "transformer", crossName: "mutihead_attn" },
    smoothing: 0.1,
  },
  { name: "conmamba CTC", opts: { ...BASE, encoder: "conmamba", decoder: null }, smoothing: null },
];

// The batch: T = 40 frames -> T' = 10; relative lengths [1, 0.75] -> encoder lengths [10, 8]
// (round half even of 7.5). Utterance 2's frames >= 30 are zero (the batcher's padding).
const B = 2, T = 40, MELS = 16, V = 12, D = 16, REL = [1, 0.75];
const IDS = [[3, 5, 7, 4], [6, 3]];
const S = 4, U = S + 1; // ids per row (padded), decoder steps ([bos] + ids)
const pad = (row: number[]) => [...row, ...new Array(U - row.length).fill(0)];
const TOKENS = IDS.flatMap((ids) => [...ids, ...new Array(S - ids.length).fill(0)]);
const BOS = IDS.flatMap((ids) => pad([1, ...ids]));
const EOS = IDS.flatMap((ids) => pad([...ids, 2]));
const TOKEN_LENS = IDS.map((ids) => ids.length);

function makeFeats(): Float32Array {
  const x = randn(B * T * MELS, 3);
  for (let t = Math.round(REL[1] * T); t < T; t++) x.fill(0, (T + t) * MELS, (T + t + 1) * MELS);
  return x;
}

interface Setup {
  be: WasmBackend;
  model: AsrModel;
  feats: Tensor;
}

async function withFamily(fam: Family, fn: (s: Setup) => void): Promise<void> {
  const be = await WasmBackend.create({ threads: 2 });
  try {
    const model = new AsrModel(be, fam.opts);
    // dt in [0.1, 1] instead of [1e-3, 0.1]: at the recipe's dt the scans barely depend on A_log,
    // x_proj and dt_proj (derivatives ~1e-5), too close to the finite differences' noise floor.
    initialize(model, 1234, { dtMin: 0.1, dtMax: 1 });
    // Every 1-D parameter (biases, LayerNorm affines, D, dt_proj.bias) and the CNN's (F', C)
    // LayerNorm affines moved by N(0, 0.1^2) off their init values.
    let k = 50;
    for (const [n, p] of model.namedParameters()) {
      if (p.shape.length !== 1 && !/\.norm_0\.norm\./.test(n)) continue;
      const x = p.toArray(), r = randn(p.size, k++, 0.1);
      p.backend.upload(p.storage, x.map((v, i) => v + r[i]));
    }
    const feats = Tensor.from(be, [B, T, MELS], makeFeats(), "param"); // survives resetStep
    fn({ be, model, feats });
    feats.free();
    model.free();
  } finally {
    be.close();
  }
}

interface Forward {
  r: ObjectiveResult;
  /** Log-probs (and with `probes`, every output and captured activation) on the host. */
  got: Map<string, Float32Array>;
  encLengths: number[];
}

/** One eval forward and the objective. */
function forward(fam: Family, s: Setup, tape: Tape, probes = false): Forward {
  const got = new Map<string, Float32Array>();
  const ctx = evalContext(tape, probes ? (n, t) => got.set(n, t.toArray()) : undefined);
  const enc = s.model.encode(ctx, s.feats, REL);
  const dec = fam.opts.decoder
    ? s.model.decode(ctx, BOS, [B, U], enc.encOut, enc.encLengths)
    : null;
  const r = objectives(enc, dec, { B, tokens: TOKENS, tokenLens: TOKEN_LENS, tokensEos: EOS }, {
    blank: 0,
    ctcWeight: fam.smoothing === null ? null : 0.3,
    labelSmoothing: fam.smoothing ?? 0,
    gradAccumulation: 1,
  });
  got.set("logProbs", enc.logProbs.toArray());
  if (dec) got.set("seqLogProbs", dec.seqLogProbs.toArray());
  if (probes) {
    for (const [n, t] of Object.entries({ ...enc, ...dec })) {
      if (t instanceof Tensor) got.set(n, t.toArray());
    }
  }
  return { r, got, encLengths: enc.encLengths };
}

/**
 * The recipe's loss recomputed in float64 on the host from the float32 log-probabilities: the
 * CTC alpha recursion and the smoothed NLL / KL of tests/ops/reference.ts, with the weights of
 * CONMAMBA_SPEC.md 7.2 (smoothing: rows whose target is not 0; NLL: u <= token count), ctc_weight
 * 0.3, batchmean (G17).
 */
function hostLoss(fam: Family, f: Forward): { loss: number; ctc: number; seq: number | null } {
  const lp = f.got.get("logProbs")!, tp = lp.length / (B * V);
  let ctc = 0;
  for (let b = 0; b < B; b++) {
    ctc += ctcNllRef(lp.subarray(b * tp * V, (b + 1) * tp * V), V, f.encLengths[b], IDS[b]);
  }
  ctc /= B;
  if (fam.smoothing === null) return { loss: ctc, ctc, seq: null };
  const sp = f.got.get("seqLogProbs")!;
  let seq = 0;
  for (let b = 0; b < B; b++) {
    for (let u = 0; u < U; u++) {
      const k = b * U + u;
      const counted = fam.smoothing > 0 ? EOS[k] !== 0 : u <= TOKEN_LENS[b];
      if (counted) seq += smoothedNllRef(sp.subarray(k * V, (k + 1) * V), EOS[k], fam.smoothing);
    }
  }
  seq /= B;
  return { loss: 0.3 * ctc + 0.7 * seq, ctc, seq };
}

/** The loss (float64 on the host from the model's float32 log-probs), nothing recorded. */
function lossValue(fam: Family, s: Setup): number {
  const tape = new Tape();
  const f = tape.noGrad(() => forward(fam, s, tape));
  s.be.resetStep();
  return hostLoss(fam, f).loss;
}

/**
 * Sign pattern of the CNN's LeakyReLU inputs (both blocks), computed with the modules' own
 * forward functions. The loss is only piecewise smooth in the CNN parameters: a difference
 * quotient across a kink of LeakyReLU (slopes 1 and 0.01) is off by O(|dL/dz| |dz|) at any step.
 */
function cnnSigns(s: Setup): Uint8Array {
  const tape = new Tape();
  const z = tape.noGrad(() => {
    const ctx = evalContext(tape), [b0, b1] = [s.model.CNN.convblock_0, s.model.CNN.convblock_1];
    const x = s.feats.reshape([B, T, MELS, 1]);
    const z0 = b0.convs.norm_0.forward(ctx, b0.convs.conv_0.forward(ctx, x));
    const y0 = b0.forward(ctx, x);
    const z1 = b1.convs.norm_0.forward(ctx, b1.convs.conv_0.forward(ctx, y0));
    return [...z0.toArray(), ...z1.toArray()];
  });
  s.be.resetStep();
  return Uint8Array.from(z, (v) => (v > 0 ? 1 : 0));
}

/**
 * Bound on |computed - exact| of the loss (float32 forward, float64 loss on the host). Measured:
 * 1.5e-7 .. 5.6e-7 over the four families and two kernel builds (max residual about a straight
 * line of L at 30 steps of 1e-8 along a random direction of the input projection, which moves
 * every activation downstream of the CNN). Each test re-measures it and fails above EPS, so a
 * noisier forward cannot silently loosen the gradient check.
 */
const EPS = 1e-6;

interface Probe {
  fd: number;
  h: number;
  /** "central" (4th order) or "+" / "-" (one-sided 2nd order beside a LeakyReLU kink). */
  kind: string;
  /** Noise bound of fd: EPS times the sum of |stencil coefficients| over h. */
  noise: number;
}

/**
 * The derivative of the loss along u by finite differences.
 * - Away from the CNN: the 4th-order central stencil (8 (f(h) - f(-h)) - (f(2h) - f(-2h))) / 12h
 *   at h = 1e-2, noise 1.5 EPS / h = 1.5e-4. Its O(h^4) truncation is <= 5e-6 there (largest for
 *   the depthwise conv bias, whose LayerNorm sees a small-variance input: 3.8e-4 at h = 3e-2 and
 *   3e-2 at 0.1, scaling as h^4). Where |fd| < 1e-2 (the Mamba internals A_log, x_proj, dt_proj:
 *   1e-6 .. 1e-3) that noise would swamp the check, so h = 0.1 (noise 1.5e-5) is used, accepted
 *   only when Richardson's estimate of its truncation, |fd(2h) - fd(h)| / 15, is below
 *   noise + 1e-4 |fd| (else 0.05, 0.025, else back to 1e-2).
 * - CNN parameters: h from 1e-2, halved until no LeakyReLU input changes sign over the stencil;
 *   if one side keeps meeting a kink (an input within ~h of 0; one family has one within
 *   ~1e-5 of 0), the one-sided 2nd-order stencil on the clean side once h <= 2.5e-3 (noise
 *   4 EPS / h; truncation h^2 |f'''| / 3, negligible there).
 */
function probe(s: Setup, fam: Family, p: Tensor, isCnn: boolean, u: Float32Array): Probe {
  const x0 = p.toArray(), signs0 = isCnn ? cnnSigns(s) : null;
  const cache = new Map<number, { loss: number; clean: boolean }>();
  const at = (step: number) => {
    let v = cache.get(step);
    if (!v) {
      p.backend.upload(p.storage, x0.map((x, i) => x + step * u[i]));
      const loss = lossValue(fam, s);
      v = { loss, clean: !signs0 || cnnSigns(s).every((b, i) => b === signs0[i]) };
      cache.set(step, v);
    }
    return v;
  };
  const f = (step: number) => at(step).loss;
  const central = (h: number) => (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h);
  try {
    if (!isCnn) {
      const fd = central(1e-2);
      if (Math.abs(fd) < 1e-2) {
        for (const h of [0.1, 0.05, 0.025]) {
          const a = central(h), noise = 1.5 * EPS / h;
          if (Math.abs(central(2 * h) - a) <= 15 * (noise + 1e-4 * Math.abs(a))) {
            return { fd: a, h, kind: "central", noise };
          }
        }
      }
      return { fd, h: 1e-2, kind: "central", noise: 1.5 * EPS / 1e-2 };
    }
    for (let h = 1e-2; h > 1e-5; h /= 2) {
      const plus = at(h).clean && at(2 * h).clean, minus = at(-h).clean && at(-2 * h).clean;
      if (plus && minus) return { fd: central(h), h, kind: "central", noise: 1.5 * EPS / h };
      if ((plus || minus) && h <= 2.5e-3) {
        const sg = plus ? 1 : -1;
        const fd = sg * (-3 * f(0) + 4 * f(sg * h) - f(2 * sg * h)) / (2 * h);
        return { fd, h, kind: plus ? "+" : "-", noise: 4 * EPS / h };
      }
    }
    throw new Error("LeakyReLU kinks on both sides at every step down to 1e-5");
  } finally {
    p.backend.upload(p.storage, x0);
  }
}

/** Max |residual| about a straight line of L at 30 steps of 1e-8 along the input projection. */
function lossNoise(fam: Family, s: Setup): number {
  const p = s.model.Transformer.custom_src_module.first.w.weight, x0 = p.toArray();
  const d = randn(p.size, 77), n = 30;
  const ls = Array.from({ length: n }, (_, k) => {
    p.backend.upload(p.storage, x0.map((v, i) => v + 1e-8 * k * d[i]));
    return lossValue(fam, s);
  });
  p.backend.upload(p.storage, x0);
  const mk = (n - 1) / 2, ml = ls.reduce((a, b) => a + b) / n;
  let sxy = 0, sxx = 0;
  ls.forEach((l, k) => {
    sxy += (k - mk) * (l - ml);
    sxx += (k - mk) ** 2;
  });
  return Math.max(...ls.map((l, k) => Math.abs(l - ml - (sxy / sxx) * (k - mk))));
}

for (const fam of FAMILIES) {
  Deno.test(`whole model ${fam.name}: tape gradients of every parameter vs finite differences`, async () => {
    await withFamily(fam, (s) => {
      const noise = lossNoise(fam, s);
      if (!(noise <= EPS)) throw new Error(`loss noise ${noise} above EPS = ${EPS}`);
      const tape = new Tape();
      tape.backwardFrom(forward(fam, s, tape).r.seeds);
      tape.reset();
      s.be.resetStep();
      const params = [...s.model.namedParameters()];
      // Tolerance: twice the noise bound (the noise, and as much again for truncation) plus 1e-4
      // relative. Measured over all 879 probes: |tape - fd| <= 0.33 tol (<= 0.8 x the noise bound).
      const rows: { line: string; ratio: number }[] = [];
      params.forEach(([name, p], j) => {
        if (!p.grad) throw new Error(`${name}: no gradient reached it`);
        const g = p.grad.toArray();
        let big = 0;
        for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[big])) big = i;
        const dir = randn(p.size, 1000 + j), dNorm = Math.hypot(...dir), gNorm = Math.hypot(...g);
        const oneHot = new Float32Array(p.size);
        oneHot[big] = 1;
        const directions: [string, Float32Array][] = [
          ["random", dir.map((v) => v / dNorm)],
          [`[${big}]`, oneHot],
          ["g/|g|", g.map((v) => v / (gNorm || 1))],
        ];
        for (const [what, u] of directions) {
          const pr = probe(s, fam, p, name.startsWith("CNN."), u);
          const tapeD = g.reduce((acc, gi, i) => acc + gi * u[i], 0);
          const err = Math.abs(pr.fd - tapeD);
          const tol = 2 * pr.noise + 1e-4 * Math.max(Math.abs(tapeD), Math.abs(pr.fd));
          rows.push({
            ratio: err / tol,
            line: `${name} ${what} (${pr.kind}, h ${pr.h.toExponential(1)}): tape ` +
              `${tapeD.toExponential(4)} fd ${pr.fd.toExponential(4)} |diff| ` +
              `${err.toExponential(2)} = ${(err / tol).toFixed(2)} tol`,
          });
        }
      });
      rows.sort((a, b) => b.ratio - a.ratio);
      const bad = rows.filter((r) => !(r.ratio <= 1));
      console.log(
        `${fam.name}: ${params.length} tensors, ${rows.length} probes, loss noise ` +
          `${noise.toExponential(1)}; worst:\n  ${
            rows.slice(0, 4).map((r) => r.line).join("\n  ")
          }`,
      );
      if (bad.length) {
        throw new Error(
          `${bad.length} gradient probes fail:\n${bad.map((r) => r.line).join("\n")}`,
        );
      }
    });
  });
}

/** max_i |a_i - ref.y_i| / ref.mag_i (ref.mag: the scale of the terms of each element). */
function worstRatio(a: ArrayLike<number>, ref: Result): number {
  if (a.length !== ref.y.length) throw new Error(`${a.length} values, expected ${ref.y.length}`);
  let w = 0;
  for (let i = 0; i < a.length; i++) {
    const r = Math.abs(a[i] - ref.y[i]) / (ref.mag[i] + Number.MIN_VALUE);
    w = Number.isNaN(r) ? Infinity : Math.max(w, r);
  }
  return w;
}

/** x W^T + b in float64 (x (rows, in), W (out, in)). */
const linearRef = (x: ArrayLike<number>, w: Tensor, b: Tensor | null, rows: number): Result =>
  matmulRef(x, w.toArray(), {
    batch: 1,
    m: rows,
    n: w.shape[0],
    k: w.shape[1],
    transA: false,
    transB: true,
    strideA: 0,
    strideB: 0,
    bias: b?.toArray(),
  });

for (const fam of FAMILIES) {
  Deno.test(`whole model ${fam.name}: float64 recomputation of the heads, norms and loss`, async () => {
    await withFamily(fam, (s) => {
      const tape = new Tape();
      const f = tape.noGrad(() => forward(fam, s, tape, true));
      const m = s.model, got = f.got, tp = 10;
      if (f.encLengths.join() !== "10,8") throw new Error(`encoder lengths ${f.encLengths}`);
      // Each check: [what, ratio, allowed]. Elementwise bounds relative to the scale of the
      // terms (mag): a float32 dot product of k <= 64 terms has error <= k u mag ~ 4e-6 mag in
      // the worst case, ~sqrt(k) u mag ~ 5e-7 typically; LayerNorm and log_softmax rows of 12
      // and 16 elements likewise. Bound 2e-6 mag; measured <= 2.8e-7 (see the log).
      const checks: [string, number, number][] = [];
      const lin = m.Transformer.custom_src_module.first.w;
      const cnnOut = got.get("cnnOut")!;
      checks.push([
        "src_proj = flatten(cnnOut) W^T + b",
        worstRatio(got.get("src_proj")!, linearRef(cnnOut, lin.weight, lin.bias, B * tp)),
        2e-6,
      ]);
      // Both encoders and both decoders end in `norm` (SbLayerNorm, eps 1e-6, CONMAMBA_SPEC.md 4.16).
      const normOf = (x: unknown) => (x as { norm: SbLayerNorm }).norm.norm;
      const heads: [string, string, string, string, LayerNorm, SbLinear][] = [
        [
          "encoder.layers.0",
          "encOut",
          "logits",
          "logProbs",
          normOf(m.Transformer.encoder),
          m.ctc_lin,
        ],
      ];
      if (fam.opts.decoder) {
        heads.push([
          "decoder.layers.0",
          "decOut",
          "seqLogits",
          "seqLogProbs",
          normOf(m.Transformer.decoder),
          m.seq_lin!,
        ]);
      }
      for (const [pre, out, logits, lp, norm, head] of heads) {
        const rows = got.get(out)!.length / D, x = got.get(pre)!;
        const gamma = norm.weight.toArray(), beta = norm.bias.toArray();
        const ln = layerNormRef(x, gamma, beta, rows, D, 1e-6);
        checks.push([`${out} = LN(${pre}), eps 1e-6`, worstRatio(got.get(out)!, ln), 2e-6]);
        // Before the affine: mean 0 and variance v / (v + eps) per row (ln.rstd = 1/sqrt(v+eps)).
        const y = got.get(out)!;
        let meanErr = 0, varErr = 0;
        for (let r = 0; r < rows; r++) {
          let mu = 0, sq = 0;
          for (let j = 0; j < D; j++) {
            const z = (y[r * D + j] - beta[j]) / gamma[j];
            mu += z / D;
            sq += z * z / D;
          }
          const v = 1 / ln.rstd[r] ** 2 - 1e-6;
          meanErr = Math.max(meanErr, Math.abs(mu));
          varErr = Math.max(varErr, Math.abs(sq - mu * mu - v / (v + 1e-6)));
        }
        // float32 y with |z| <= 4 divided by |gamma| >= 0.7: per element <= 5e-7 absolute.
        checks.push([`${out} rows: |mean| before the affine`, meanErr, 1e-6]);
        checks.push([`${out} rows: |variance - v/(v+eps)|`, varErr, 4e-6]);
        checks.push([
          `${logits} = ${out} W^T + b`,
          worstRatio(got.get(logits)!, linearRef(got.get(out)!, head.w.weight, head.w.bias, rows)),
          2e-6,
        ]);
        checks.push([
          `${lp} = log_softmax(${logits})`,
          worstRatio(got.get(lp)!, logSoftmaxRef(got.get(logits)!, rows, V)),
          2e-6,
        ]);
        // Probabilities per row sum to 1: |log sum exp(row)| in float64.
        const p = got.get(lp)!;
        let sumErr = 0;
        for (let r = 0; r < rows; r++) {
          let sum = 0;
          for (let k = 0; k < V; k++) sum += Math.exp(p[r * V + k]);
          sumErr = Math.max(sumErr, Math.abs(Math.log(sum)));
        }
        checks.push([`${lp}: |log sum_k p|`, sumErr, 1e-6]);
      }
      // The objective against float64 from the same float32 log-probs: per-utterance values
      // are float32 (relative rounding 6e-8) summed in float64; bound 1e-6 relative.
      const host = hostLoss(fam, f);
      const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
      checks.push(["loss", rel(f.r.loss, host.loss), 1e-6]);
      checks.push(["loss_ctc", rel(f.r.lossCtc, host.ctc), 1e-6]);
      if (host.seq !== null) checks.push(["loss_seq", rel(f.r.lossSeq!, host.seq), 1e-6]);
      s.be.resetStep();
      const lines = checks.map(([w, r, a]) =>
        `${w}: ${r.toExponential(2)} (<= ${a.toExponential(0)})${r <= a ? "" : "  FAIL"}`
      );
      console.log(`${fam.name}:\n  ${lines.join("\n  ")}`);
      if (checks.some(([, r, a]) => !(r <= a))) throw new Error("float64 recomputation differs");
    });
  });
}
