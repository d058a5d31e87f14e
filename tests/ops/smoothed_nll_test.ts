import { smoothedNll } from "../../src/tensor/loss_ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { smoothedNllRef } from "./reference.ts";
import { randn, withBackend } from "./helpers.ts";

// conmamba_large seq loss: eps 0.1 over V = 5000 (KL, padding by target value 0); small models:
// eps 0 (NLL, padding by length). The kernel sums V terms in float64 and rounds once: 1e-6
// relative to the sum of |terms| is generous.
for (
  const { label, V, eps } of [
    { label: "large: KL, eps 0.1, V 5000", V: 5000, eps: 0.1 },
    { label: "small: NLL, eps 0, V 31", V: 31, eps: 0 },
  ]
) {
  Deno.test(`smoothed nll: ${label}`, async () => {
    await withBackend(2, (be) => {
      const [B, U] = [2, 3];
      const raw = randn(B * U * V, 5);
      const lp = new Float32Array(B * U * V);
      for (let r = 0; r < B * U; r++) {
        let s = 0;
        for (let k = 0; k < V; k++) s += Math.exp(raw[r * V + k]);
        for (let k = 0; k < V; k++) lp[r * V + k] = raw[r * V + k] - Math.log(s);
      }
      const targets = [5, 2, 0, 7, 1, 2]; // utterance 0: 2 tokens + pad
      const weights = eps > 0 ? targets.map((t) => (t !== 0 ? 1 : 0)) : [1, 1, 0, 1, 1, 1];
      const r = smoothedNll(Tensor.from(be, [B, U, V], lp), targets, weights, eps);
      let want = 0, scale = 0;
      for (let i = 0; i < B * U; i++) {
        const v = weights[i] * smoothedNllRef(lp.subarray(i * V, (i + 1) * V), targets[i], eps);
        want += v;
        scale += Math.abs(v) + 1;
        if (Math.abs(r.perUtterance[i] - v) > 1e-6 * (Math.abs(v) + 1)) {
          throw new Error(`position ${i}: ${r.perUtterance[i]}, reference ${v}`);
        }
      }
      if (Math.abs(r.loss - want / B) > 1e-6 * scale) {
        throw new Error(`loss ${r.loss} vs ${want / B}`);
      }
      // d loss / d lp = -w q / B exactly (q rounded to float32).
      const g = r.grad.toArray();
      for (let i = 0; i < B * U; i++) {
        for (let k = 0; k < V; k += 7) {
          const q = k === targets[i] ? 1 - eps : eps / (V - 1);
          const want = (-weights[i] * q) / B;
          if (Math.abs(g[i * V + k] - want) > 2 ** -23 * Math.abs(want)) {
            throw new Error(`grad[${i}, ${k}] = ${g[i * V + k]}, want ${want}`);
          }
        }
      }
    });
  });
}
