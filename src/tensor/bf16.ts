/**
 * Packed bf16 tensors (cm_bf16_pack / cm_bf16_unpack): values rounded to bf16 (nearest even), two
 * per float32 slot, so a saved operand takes half the memory. In bf16 matmul mode the products
 * round their inputs to bf16 anyway, so a matmul that reads its operand packed (the op's a_bf16 /
 * b_bf16) computes exactly what it computes from the float32 original: autograd keeps the
 * activations a matmul saves for backward this way and hands them to the backward's products
 * as they are.
 */
import { tensorArg } from "./col_view.ts";
import { slotsOf, Tensor } from "./tensor.ts";

/** x packed to bf16 (a "bf16" tensor; x.size must be even, the kernel works on pairs). */
export function packBf16(x: Tensor): Tensor {
  if (x.size % 2 !== 0) throw new RangeError(`packBf16: ${x.size} elements, need an even count`);
  const pairs = x.size / 2, storage = x.backend.alloc(pairs, "step");
  x.backend.run("bf16_pack", { pairs }, [tensorArg(x), { storage }]);
  return new Tensor(x.backend, x.shape, storage, "bf16");
}

/** A fresh float32 tensor with the packed values (exact widening). */
export function unpackBf16(p: Tensor): Tensor {
  if (p.dtype !== "bf16") throw new RangeError(`unpackBf16: a ${p.dtype} tensor, not bf16`);
  if (p.size % 2 !== 0) throw new RangeError(`unpackBf16: ${p.size} elements, need an even count`);
  const y = Tensor.empty(p.backend, p.shape);
  p.backend.run("bf16_unpack", { pairs: slotsOf(p.size, "bf16") }, [
    { storage: p.storage },
    tensorArg(y),
  ]);
  return y;
}
