/**
 * Tensor: a shape, a dtype, contiguous row-major storage on a backend.
 *
 * "f32" is what every op reads and writes. "bf16" is packed bf16 (bf16_pack's layout: two values
 * per float32 slot, element 2i in the low half): what autograd keeps of a matmul's activation
 * operands in bf16 matmul mode, read directly by the matmul (its a_bf16 / b_bf16 flags) and by
 * bf16_unpack; no other op takes it (src/tensor/bf16.ts).
 */
import type { Backend, Lifetime, Storage } from "./backend.ts";

export type DType = "f32" | "bf16";

/** float32 slots that `size` elements of `dtype` take. */
export const slotsOf = (size: number, dtype: DType) =>
  dtype === "bf16" ? Math.ceil(size / 2) : size;

export class ShapeError extends Error {}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** What the autograd tape keeps of the op that made a tensor (src/tensor/autograd.ts). */
export interface TapeNode {
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  /**
   * Input gradients from output gradients (null: no gradient reached that output). `into[j]`,
   * when not null, holds input j's gradient so far (a parameter's `grad`, or an activation's
   * gradient nothing else shares): the closure may add its gradient to it in place (a kernel's
   * accumulate flag) and return it (a Tensor on the same storage), sparing the tape an add.
   */
  readonly backward: (
    dOutputs: readonly (Tensor | null)[],
    into: readonly (Tensor | null)[],
  ) => readonly (Tensor | null)[];
  /**
   * The inputs and outputs `backward` reads (e.g. matmul: both operands; add: none); undefined
   * means all of them. `Tape.scope` frees the outputs nobody saved when the scope ends.
   */
  readonly saved?: readonly (Tensor | null)[];
}

export class Tensor {
  readonly size: number;
  /** A trainable parameter (a leaf whose gradient the tape accumulates into `grad`). */
  requiresGrad = false;
  /** The gradient of a parameter: "param" lifetime, accumulated by every backward. */
  grad: Tensor | null = null;
  /** The recorded op that made this tensor, or null for a leaf or an untracked result. */
  node: TapeNode | null = null;

  constructor(
    readonly backend: Backend,
    readonly shape: readonly number[],
    /** Replaced only by `rehome` (before any step); otherwise fixed for the tensor's life. */
    public storage: Storage,
    readonly dtype: DType = "f32",
  ) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`bad shape [${shape}]`);
    }
    this.size = sizeOf(shape);
    if (storage.length < slotsOf(this.size, dtype)) {
      throw new ShapeError(
        `storage of ${storage.length} float32 slots is too small for ${dtype} [${shape}]`,
      );
    }
  }

  /** An uninitialised tensor; "step" (the default) lives until the next `backend.resetStep()`. */
  static empty(
    backend: Backend,
    shape: readonly number[],
    lifetime: Lifetime = "step",
    dtype: DType = "f32",
  ): Tensor {
    return new Tensor(
      backend,
      shape,
      backend.alloc(slotsOf(sizeOf(shape), dtype), lifetime),
      dtype,
    );
  }

  static from(
    backend: Backend,
    shape: readonly number[],
    data: ArrayLike<number>,
    lifetime: Lifetime = "step",
  ): Tensor {
    const t = Tensor.empty(backend, shape, lifetime);
    if (data.length !== t.size) {
      throw new ShapeError(`${data.length} values given for shape [${shape}] (${t.size})`);
    }
    backend.upload(t.storage, data instanceof Float32Array ? data : Float32Array.from(data));
    return t;
  }

  /** Same storage, another shape of the same size (untracked: use autograd's reshape on the tape). */
  reshape(shape: readonly number[]): Tensor {
    if (sizeOf(shape) !== this.size) {
      throw new ShapeError(`cannot reshape [${this.shape}] to [${shape}]`);
    }
    return new Tensor(this.backend, shape, this.storage, this.dtype);
  }

  /** A parameter: "param" lifetime and tracked by the tape. */
  static param(backend: Backend, shape: readonly number[], data: ArrayLike<number>): Tensor {
    const t = Tensor.from(backend, shape, data, "param");
    t.requiresGrad = true;
    return t;
  }

  /** The values as float32 (a bf16 tensor widened exactly, on the host). */
  toArray(): Float32Array {
    if (this.dtype === "f32") return this.backend.download(this.storage, 0, this.size);
    const slots = new Uint32Array(
      this.backend.download(this.storage, 0, slotsOf(this.size, "bf16")).buffer,
    );
    const out = new Float32Array(this.size), bits = new Uint32Array(out.buffer);
    for (let i = 0; i < this.size; i++) {
      bits[i] = i % 2 === 0 ? slots[i >> 1] << 16 : slots[i >> 1] & 0xffff0000;
    }
    return out;
  }

  /**
   * Moves the values to `to` (at least size elements, typically a range of one flat buffer, see
   * AsrTrainer) through the host, bit for bit, and frees the old storage. For parameters before
   * training: the tape must hold no reference to the old storage.
   */
  rehome(to: Storage): void {
    if (to.length < this.size) {
      throw new ShapeError(`rehome: ${to.length} elements for [${this.shape}]`);
    }
    this.backend.upload(to, this.toArray());
    this.backend.free(this.storage);
    this.storage = to;
  }

  /** Frees the tensor's storage now (views share it; any later use throws UseAfterFreeError). */
  free(): void {
    this.backend.free(this.storage);
  }
}
