/**
 * bf16 packing of tensors autograd saves for backward (cm_bf16_pack / cm_bf16_unpack): values
 * rounded to bf16 (nearest even), two per float32 slot, so a saved operand takes half the memory.
 * In bf16 matmul mode the backward's products round their inputs to bf16 anyway, so a matmul that
 * keeps its operands packed computes exactly the same gradients.
 */
import type { Storage } from "./backend.ts";
import { Tensor } from "./tensor.ts";

/** A tensor of `shape` held as packed bf16 (ceil(size / 2) float32 slots). */
export interface PackedBf16 {
  readonly shape: readonly number[];
  readonly storage: Storage;
}

/** x packed to bf16 (x.size must be even, the kernel works on pairs); x is left as it was. */
export function packBf16(x: Tensor): PackedBf16 {
  if (x.size % 2 !== 0) throw new RangeError(`packBf16: ${x.size} elements, need an even count`);
  const pairs = x.size / 2, storage = x.backend.alloc(pairs, "step");
  x.backend.run("bf16_pack", { pairs }, [{ storage: x.storage }, { storage }]);
  return { shape: x.shape, storage };
}

/** A fresh float32 tensor with the packed values (exact widening). */
export function unpackBf16(backend: Tensor["backend"], p: PackedBf16): Tensor {
  const y = Tensor.empty(backend, p.shape);
  backend.run("bf16_unpack", { pairs: y.size / 2 }, [{ storage: p.storage }, {
    storage: y.storage,
  }]);
  return y;
}
