import { matmul, matmulBackward } from "../../src/tensor/ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { matmulBackwardRef, matmulRef } from "./reference.ts";
import { assertWithin, randn, U, withBackend } from "./helpers.ts";

interface Case {
  label: string;
  batch: number; // 0: plain 2-D operands
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  bias?: boolean;
  /** The second operand is a 2-D weight shared by every batch. */
  sharedB?: boolean;
}

const CASES: Case[] = [
  // conmamba_small encoder FFN1: frames x d=144 -> F=1024, weight stored (out, in) as nn.Linear.
  { label: "conmamba_small FFN1", batch: 0, m: 37, n: 1024, k: 144, transB: true, bias: true },
  // conmamba_large encoder FFN2: frames x F=2048 -> d=512 (k crosses 8 blocks of 256).
  { label: "conmamba_large FFN2", batch: 0, m: 13, n: 512, k: 2048, transB: true, bias: true },
  { label: "1 x 1 x 1", batch: 0, m: 1, n: 1, k: 1, bias: true },
  { label: "awkward 5 x 7 x 3", batch: 0, m: 5, n: 7, k: 3 },
  { label: "awkward A^T", batch: 0, m: 9, n: 13, k: 300, transA: true },
  {
    label: "awkward A^T B^T",
    batch: 0,
    m: 6,
    n: 11,
    k: 17,
    transA: true,
    transB: true,
    bias: true,
  },
  { label: "batched 3 x (7 x 9 . 9 x 11)", batch: 3, m: 7, n: 11, k: 9 },
  { label: "batched, B^T (attention scores)", batch: 2, m: 10, n: 10, k: 36, transB: true },
  { label: "batched, A^T", batch: 2, m: 5, n: 6, k: 7, transA: true },
  { label: "batched x shared weight", batch: 2, m: 6, n: 9, k: 5, sharedB: true, bias: true },
  {
    label: "batched x shared weight, A^T B^T",
    batch: 3,
    m: 4,
    n: 3,
    k: 6,
    transA: true,
    transB: true,
    sharedB: true,
  },
];

// Tolerance: each C element is a sequential float32 sum of k products plus a bias, so its error is
// at most gamma_(k+2) sum |a b| + |bias| ~ (k + 2) U mag (Higham, Accuracy and Stability, 3.1).
// Gradients are such sums too (inner length m or n, plus one sum over batches for a shared operand).
for (const c of CASES) {
  Deno.test(`matmul forward and backward: ${c.label}`, async () => {
    await withBackend(2, (be) => {
      const bt = c.batch ? [c.batch] : [], nb = c.batch || 1;
      const shapeA = [...bt, ...(c.transA ? [c.k, c.m] : [c.m, c.k])];
      const shapeB = [...(c.sharedB ? [] : bt), ...(c.transB ? [c.n, c.k] : [c.k, c.n])];
      const av = randn(nb * c.m * c.k, 1), bv = randn((c.sharedB ? 1 : nb) * c.k * c.n, 2);
      const biasv = c.bias ? randn(c.n, 3) : null;
      const a = Tensor.from(be, shapeA, av), b = Tensor.from(be, shapeB, bv);
      const bias = biasv ? Tensor.from(be, [c.n], biasv) : null;
      const q = {
        batch: nb,
        m: c.m,
        n: c.n,
        k: c.k,
        transA: !!c.transA,
        transB: !!c.transB,
        strideA: c.m * c.k,
        strideB: c.sharedB ? 0 : c.k * c.n,
        bias: biasv,
      };
      const y = matmul(a, b, { transA: c.transA, transB: c.transB, bias });
      assertWithin("C", y.toArray(), matmulRef(av, bv, q), (c.k + 2) * U);

      const dcv = randn(nb * c.m * c.n, 4);
      const grads = matmulBackward(Tensor.from(be, y.shape, dcv), a, b, {
        transA: c.transA,
        transB: c.transB,
        bias,
      });
      const ref = matmulBackwardRef(dcv, av, bv, q);
      assertWithin("dA", grads.da.toArray(), ref.da, (c.n + 2) * U);
      assertWithin("dB", grads.db.toArray(), ref.db, (c.m + nb + 2) * U);
      if (bias) assertWithin("dbias", grads.dbias!.toArray(), ref.dbias, (nb * c.m + 2) * U);
    });
  });
}

Deno.test("matmul accumulate adds to C", async () => {
  await withBackend(2, (be) => {
    const [m, n, k] = [9, 10, 11];
    const av = randn(m * k, 5), bv = randn(k * n, 6), c0 = randn(m * n, 7);
    const c = Tensor.from(be, [m, n], c0);
    matmul(Tensor.from(be, [m, k], av), Tensor.from(be, [k, n], bv), { out: c, accumulate: true });
    const q = { batch: 1, m, n, k, transA: false, transB: false, strideA: 0, strideB: 0 };
    const ref = matmulRef(av, bv, q);
    for (let i = 0; i < m * n; i++) {
      ref.y[i] += c0[i];
      ref.mag[i] += Math.abs(c0[i]);
    }
    assertWithin("C + AB", c.toArray(), ref, (k + 2) * U);
  });
});
