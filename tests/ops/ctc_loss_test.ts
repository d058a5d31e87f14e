import { ctcLoss } from "../../src/tensor/loss_ops.ts";
import { logSoftmaxBackward } from "../../src/tensor/ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { readNpy } from "./npy.ts";
import { ctcNllRef } from "./reference.ts";
import { randn, withBackend } from "./helpers.ts";
import { relL2 } from "../fixtures/compare.ts";

const GOLDEN = new URL("../fixtures/golden/ctc_loss/", import.meta.url);
const npy = (name: string) => readNpy(new URL(`${name}.npy`, GOLDEN));

Deno.test("ctc loss against PyTorch's golden values (tests/fixtures/golden/ctc_loss)", async () => {
  await withBackend(2, (be) => {
    const lp = npy("log_probs"), targets = npy("targets").data;
    const inLen = npy("input_lengths").data, tgtLen = npy("target_lengths").data;
    const json = JSON.parse(Deno.readTextFileSync(new URL("ctc.json", GOLDEN)));
    const logProbs = Tensor.from(be, lp.shape, Float32Array.from(lp.data));
    const r = ctcLoss(logProbs, targets, inLen, tgtLen);
    // Our recursion runs in float64 on float32 inputs: against torch's float64 recomputation the
    // per-utterance losses agree to a few float32 ulps (1e-6 relative covers the final rounding
    // and the golden's own float64 evaluation of the same float32 inputs).
    const want: number[] = json.loss_per_utt_float64;
    want.forEach((w, b) => {
      if (Math.abs(r.perUtterance[b] - w) > 1e-6 * w) {
        throw new Error(`utterance ${b}: loss ${r.perUtterance[b]}, golden ${w}`);
      }
    });
    // batchmean = sum / B (SpeechBrain's value for these lengths).
    if (Math.abs(r.loss - json.speechbrain_ctc_loss_batchmean) > 1e-6 * r.loss) {
      throw new Error(`batchmean ${r.loss}, golden ${json.speechbrain_ctc_loss_batchmean}`);
    }
    // Gradients: ours is d(batchmean)/d log_probs = -occupancy / B. The golden's float32 runs
    // differ from float64 by rel L2 1.7e-5 (README), so 1e-4 is the stated float32 tolerance.
    const g = r.grad.toArray().map((v) => v * 3);
    const eTrue = relL2(g, npy("grad_logprobs_true").data);
    if (!(eTrue < 1e-4)) throw new Error(`grad wrt log_probs: rel L2 ${eTrue}`);
    const dLogits = logSoftmaxBackward(logProbs, r.grad).toArray().map((v) => v * 3);
    const eLogits = relL2(dLogits, npy("grad_logits").data);
    if (!(eLogits < 1e-4)) throw new Error(`grad wrt logits: rel L2 ${eLogits}`);
    // Beyond each input length the gradient is exactly 0.
    const [, T, V] = lp.shape;
    for (let b = 0; b < 3; b++) {
      for (let i = inLen[b] * V; i < T * V; i++) {
        if (g[b * T * V + i] !== 0) throw new Error(`utterance ${b}: gradient past its length`);
      }
    }
  });
});

Deno.test("ctc loss: repeated labels, empty target, infeasible (zero_infinity), vs reference", async () => {
  await withBackend(2, (be) => {
    const [B, T, V, S] = [4, 6, 5, 4];
    const raw = randn(B * T * V, 77);
    const lp = new Float32Array(B * T * V); // log_softmax of random logits, in float64
    for (let r = 0; r < B * T; r++) {
      let m = -Infinity, s = 0;
      for (let k = 0; k < V; k++) m = Math.max(m, raw[r * V + k]);
      for (let k = 0; k < V; k++) s += Math.exp(raw[r * V + k] - m);
      for (let k = 0; k < V; k++) lp[r * V + k] = raw[r * V + k] - m - Math.log(s);
    }
    // "a a" needs a blank between (3 frames); "" is blanks only; 4 labels in 2 frames: infeasible.
    const labels = [[2, 2], [], [1, 3, 3, 1], [4, 1, 2, 3]];
    const inLen = [3, 6, 6, 2];
    const targets = labels.flatMap((l) => [...l, ...Array(S - l.length).fill(0)]);
    const r = ctcLoss(Tensor.from(be, [B, T, V], lp), targets, inLen, labels.map((l) => l.length));
    for (let b = 0; b < B; b++) {
      const ref = ctcNllRef(lp.subarray(b * T * V), V, inLen[b], labels[b]);
      const want = Number.isFinite(ref) ? ref : 0; // zero_infinity
      if (Math.abs(r.perUtterance[b] - want) > 1e-6 * (1 + want)) {
        throw new Error(`utterance ${b}: ${r.perUtterance[b]}, reference ${want}`);
      }
    }
    // The gradient against central differences of the float64 reference (utterance 2).
    const g = r.grad.toArray(),
      b = 2,
      lp64 = Float64Array.from(lp.subarray(b * T * V, (b + 1) * T * V));
    for (let i = 0; i < T * V; i += 2) {
      const keep = lp64[i], h = 1e-5;
      lp64[i] = keep + h;
      const up = ctcNllRef(lp64, V, inLen[b], labels[b]);
      lp64[i] = keep - h;
      const down = ctcNllRef(lp64, V, inLen[b], labels[b]);
      lp64[i] = keep;
      const fd = (up - down) / (2 * h) / B; // batchmean
      if (Math.abs(g[b * T * V + i] - fd) > 1e-6) {
        throw new Error(`d loss / d lp[${i}]: ${g[b * T * V + i]}, finite difference ${fd}`);
      }
    }
    if (g.subarray(3 * T * V).some((v) => v !== 0)) throw new Error("infeasible: gradient not 0");
  });
});
