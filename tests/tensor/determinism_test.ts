import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import * as ops from "../../src/tensor/ops.ts";
import { randn } from "../ops/helpers.ts";

/** Every op's outputs on one backend, as raw bytes, for a fixed set of random inputs. */
function runAll(be: WasmBackend): Uint8Array[] {
  const out: Tensor[] = [];
  const x = Tensor.from(be, [37, 144], randn(37 * 144, 61));
  const w = Tensor.from(be, [260, 144], randn(260 * 144, 62)); // (out, in), N > NC edge
  const b = Tensor.from(be, [260], randn(260, 63));
  const y = ops.matmul(x, w, { transB: true, bias: b }); // (37, 260)
  const dy = Tensor.from(be, [37, 260], randn(37 * 260, 64));
  const g = ops.matmulBackward(dy, x, w, { transB: true, bias: b });
  out.push(y, g.da, g.db, g.dbias!);
  const gamma = Tensor.from(be, [260], randn(260, 65)),
    beta = Tensor.from(be, [260], randn(260, 66));
  const ln = ops.layerNorm(y, gamma, beta, 1e-5);
  const lg = ops.layerNormBackward(dy, y, gamma, ln);
  out.push(ln.y, ln.mean, ln.rstd, lg.dx, lg.dgamma, lg.dbeta);
  out.push(ops.gelu(y), ops.geluBackward(y, dy), ops.silu(y), ops.siluBackward(y, dy));
  const s = ops.softmax(y), l = ops.logSoftmax(y);
  out.push(s, ops.softmaxBackward(s, dy), l, ops.logSoftmaxBackward(l, dy));
  out.push(ops.add(y, dy), ops.mul(y, dy), ops.scale(y, 0.3));
  return out.map((t) => new Uint8Array(t.toArray().buffer));
}

Deno.test("1 thread and 2 threads give bitwise identical results for every op", async () => {
  const one = await WasmBackend.create({ threads: 1 });
  const two = await WasmBackend.create({ threads: 2, minWorkPerThread: 1 });
  try {
    const a = runAll(one), b = runAll(two);
    a.forEach((bytes, i) => {
      const other = b[i];
      if (bytes.length !== other.length || bytes.some((v, j) => v !== other[j])) {
        throw new Error(`output ${i} differs between 1 and 2 threads`);
      }
    });
    // The same backend twice: repeatable too.
    const again = runAll(two);
    again.forEach((bytes, i) => {
      if (bytes.some((v, j) => v !== b[i][j])) throw new Error(`output ${i} not repeatable`);
    });
  } finally {
    one.close();
    two.close();
  }
});
