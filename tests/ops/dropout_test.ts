import { dropout, dropoutBackward } from "../../src/tensor/dropout.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, withBackend } from "./helpers.ts";

Deno.test("dropout: kept values scaled by 1/(1-p), rate near p, repeatable, seed/stream matter", async () => {
  await withBackend(2, (be) => {
    const n = 100003, p = 0.1, xv = randn(n, 3);
    const x = Tensor.from(be, [n], xv);
    const o = { p, seed: 7775, stream: 12 };
    const y = dropout(x, o).toArray();
    let dropped = 0;
    for (let i = 0; i < n; i++) {
      if (y[i] === 0) dropped++;
      else if (y[i] !== Math.fround(xv[i] * Math.fround(1 / Math.fround(1 - p)))) {
        throw new Error(`element ${i}: ${y[i]} is not x / (1 - p)`);
      }
    }
    // Binomial(n, 0.1): sd = sqrt(n p (1 - p)) ~ 95; 6 sd never fails by chance.
    if (Math.abs(dropped - n * p) > 6 * Math.sqrt(n * p * (1 - p))) {
      throw new Error(`dropped ${dropped} of ${n}, expected about ${n * p}`);
    }
    const same = dropout(x, o).toArray();
    if (same.some((v, i) => v !== y[i])) throw new Error("the same seed and stream differ");
    // The backward applies the same mask to dy.
    const dy = randn(n, 4), dx = dropoutBackward(Tensor.from(be, [n], dy), o).toArray();
    for (let i = 0; i < n; i++) {
      if ((dx[i] === 0) !== (y[i] === 0)) throw new Error(`backward mask differs at ${i}`);
    }
    for (const other of [{ ...o, stream: 13 }, { ...o, seed: 7776 }]) {
      const z = dropout(x, other).toArray();
      let agree = 0;
      for (let i = 0; i < n; i++) if ((z[i] === 0) === (y[i] === 0)) agree++;
      // independent masks agree on (1 - p)^2 + p^2 = 82% of elements
      if (agree > 0.84 * n) throw new Error(`masks for ${JSON.stringify(other)} look correlated`);
    }
  });
});
