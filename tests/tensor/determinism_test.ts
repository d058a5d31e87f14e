import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import * as ops from "../../src/tensor/ops.ts";
import { randn } from "../ops/helpers.ts";
import { colView } from "../../src/tensor/col_view.ts";
import * as conv from "../../src/tensor/conv_ops.ts";
import { dropout } from "../../src/tensor/dropout.ts";
import * as loss from "../../src/tensor/loss_ops.ts";
import * as mamba from "../../src/tensor/mamba_ops.ts";
import { adamStep, sumSquares } from "../../src/tensor/optimizer_ops.ts";
import * as attn from "../../src/tensor/attention_ops.ts";
import * as layout from "../../src/tensor/layout_ops.ts";
import * as reduce from "../../src/tensor/reduce_ops.ts";

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
  runModelOps(be, out);
  runAttentionOps(be, out);
  return out.map((t) => new Uint8Array(t.toArray().buffer));
}

/** The Mamba, convolution, dropout, loss and optimiser ops (issue 3), on shapes that split. */
function runModelOps(be: WasmBackend, out: Tensor[]): void {
  const [B, T, Di, Ns, W] = [3, 70, 22, 16, 41]; // 70 steps: two scan chunks; Di not a multiple of 4
  const t = (shape: number[], seed: number, std = 1, mean = 0) =>
    Tensor.from(be, shape, randn(shape.reduce((a, b) => a * b), seed, std, mean));
  const xz = t([B, T, 2 * Di], 70), xdbl = t([B, T, W], 71);
  const cw = t([Di, 4], 72, 0.5), cb = t([Di], 73);
  const u = mamba.conv1dDepthwise(colView(xz, 0, Di), cw, cb, { padLeft: 3, silu: true });
  const dyc = t([B, T, Di], 74);
  const cg = mamba.conv1dDepthwiseBackward(dyc, colView(xz, 0, Di), cw, cb, {
    padLeft: 3,
    silu: true,
  });
  out.push(u, cg.dx.tensor, cg.dw, cg.dbias);
  const q = {
    u,
    delta: t([B, T, Di], 75, 0.5),
    A: conv.exp(t([Di, Ns], 76, 0.5)),
    B: colView(xdbl, 9, Ns),
    C: colView(xdbl, 9 + Ns, Ns),
    D: t([Di], 77),
    z: colView(xz, Di, Di),
    deltaBias: t([Di], 78, 0.5, -2),
  };
  const saved = mamba.selectiveScan(q);
  const g = mamba.selectiveScanBackward(dyc, q, saved);
  out.push(saved.out, saved.states, g.du, g.ddelta, g.dA, g.dB.tensor, g.dD!, g.dz!.tensor);
  out.push(g.ddeltaBias!, mamba.flipTime(xz), conv.glu(xz), conv.gluBackward(xz, dyc));
  out.push(conv.leakyRelu(xz), conv.leakyReluBackward(xz, xz));
  out.push(dropout(xz, { p: 0.1, seed: 1, stream: 2 }));
  const img = t([2, 9, 10, 3], 79), cw2 = t([5, 3, 3, 3], 80), cb2 = t([5], 81);
  const c2 = conv.conv2d(img, cw2, cb2);
  const c2g = conv.conv2dBackward(t(c2.y.shape.slice(), 82), img, cw2, cb2, c2);
  out.push(c2.y, c2g.dx, c2g.dw);
  const lp = ops.logSoftmax(t([B, T, 7], 83));
  const ctc = loss.ctcLoss(lp, [1, 2, 2, 3, 4, 0, 5, 0, 0], [70, 50, 3], [3, 2, 1]);
  const nll = loss.smoothedNll(
    lp,
    Array.from({ length: B * T }, (_, i) => i % 7),
    Array(B * T).fill(1),
    0.1,
  );
  out.push(ctc.grad, nll.grad, Tensor.from(be, [4], [ctc.loss, nll.loss, sumSquares(xz), 0]));
  const p = t([B * T * 2 * Di], 84), m = t([p.size], 85), v = conv.exp(t([p.size], 86));
  adamStep(p, xz, m, v, {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.98,
    eps: 1e-9,
    weightDecay: 0.01,
    decoupled: true,
    step: 3,
  });
  out.push(p, m, v);
}

/** Embedding, time copies, axis swaps, attention pieces and reductions, on shapes that split. */
function runAttentionOps(be: WasmBackend, out: Tensor[]): void {
  const t = (shape: number[], seed: number) =>
    Tensor.from(be, shape, randn(shape.reduce((a, b) => a * b), seed, 3));
  const table = t([11, 37], 90), ids = Tensor.from(be, [2, 9], [...Array(18)].map((_, i) => i % 5));
  const emb = layout.embedding(table, ids); // (2, 9, 37), repeated ids
  out.push(emb, layout.embeddingBackward(emb, ids, 11));
  const mem = t([2, 13, 37], 91), cat = layout.concatTime([mem, emb]);
  out.push(cat, layout.sliceTimeBackward(layout.sliceTime(cat, 13, 9), 13, 22));
  const heads = layout.swapAxes(cat, 1);
  const scores = t([2, 3, 9, 9], 92), dy = t([2, 3, 9, 9], 93);
  const mask = { scale: 0.4, causal: true, keyLengths: Tensor.from(be, [2], [9, 5]) };
  const p = attn.attnSoftmax(scores, mask);
  out.push(heads, p, attn.attnSoftmaxBackward(p, dy, mask));
  const bd = t([6, 9, 17], 94);
  out.push(attn.relShift(bd), attn.relShiftBackward(dy.reshape([6, 9, 9])));
  const m = reduce.maxLast(cat);
  out.push(reduce.sumAxis(cat, 1), reduce.meanAxis(cat, 0), m.values, m.indices);
  out.push(reduce.sumAxisBackward(reduce.meanAxis(cat, 1), cat.shape, 1, true));
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
