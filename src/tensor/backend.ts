/**
 * The Backend interface: memory plus one entry point that runs an op of ffi/ops.ts. Model code
 * never calls a backend directly; src/tensor/ops.ts validates shapes and builds the parameter
 * structs, and a backend (Wasm now, CUDA later) only runs kernels.
 */

/** Where a buffer lives: "param" (parameters, gradients, optimiser state: freed one by one) or
 * "step" (activations and their gradients: freed one by one when the tape knows they are dead,
 * the rest all at once by `resetStep()`). */
export type Lifetime = "param" | "step";

/** A float32 buffer on a backend. `ptr` is a device address (a byte offset for Wasm). */
export interface Storage {
  readonly ptr: number;
  /** Number of float32 elements. */
  readonly length: number;
  readonly lifetime: Lifetime;
  /** Set when the buffer is freed: any later use is a bug and throws (see `assertLive`). */
  released?: boolean;
  /**
   * A range of another storage (`viewStorage`): freeing it only marks it released; the storage
   * it lies in is freed by its owner.
   */
  readonly view?: boolean;
}

/** Elements [offset, offset + length) of `parent` as a storage of their own (see Storage.view). */
export function viewStorage(parent: Storage, offset: number, length: number): Storage {
  if (!(offset >= 0 && length >= 0 && offset + length <= parent.length)) {
    throw new RangeError(`view [${offset}, ${offset + length}) of a buffer of ${parent.length}`);
  }
  return { ptr: parent.ptr + 4 * offset, length, lifetime: parent.lifetime, view: true };
}

/** A pointer argument: a storage and an element offset into it, or null for an optional one. */
export type BufferArg = { storage: Storage; offset?: number } | null;

export interface Backend {
  readonly name: string;
  /** Threads the backend splits big kernels over (1 = the calling thread only). */
  readonly threads: number;
  alloc(length: number, lifetime: Lifetime): Storage;
  /** Frees a buffer now (marks it released; freeing it again throws). */
  free(storage: Storage): void;
  /** Frees every "step" buffer still live, at once (after each optimiser step). */
  resetStep(): void;
  upload(storage: Storage, data: Float32Array, offset?: number): void;
  download(storage: Storage, offset?: number, length?: number): Float32Array;
  /**
   * Runs op `name` of ffi/ops.ts with its parameter struct given field by field (missing fields
   * are 0) and its pointer arguments in table order.
   */
  run(name: string, params: Readonly<Record<string, number>>, args: readonly BufferArg[]): void;
  /** Bytes of memory the backend holds now (Wasm: its linear memory; CUDA: live device blocks). */
  memoryBytes(): number;
  /**
   * "bf16": matrix products round their inputs to bf16 (nearest even) and accumulate in fp32
   * (the recipe's `precision: bf16`; autograd then keeps saved matmul operands packed in bf16,
   * which loses nothing). "fp32" (the default) otherwise; backends without the mode omit it.
   */
  readonly matmulPrecision?: "fp32" | "bf16";
  /** Stops worker threads; the backend is unusable afterwards. */
  close(): void;
}

/** A freed buffer was used: the error names the op and the argument. */
export class UseAfterFreeError extends Error {}

/** Throws UseAfterFreeError when `storage` was freed (a kernel argument, upload or download). */
export function assertLive(storage: Storage, what: string): void {
  if (storage.released) {
    throw new UseAfterFreeError(
      `${what}: a ${storage.lifetime} buffer of ${storage.length} elements was used after it was ` +
        `freed (by the tape after its last use, by free(), or by resetStep())`,
    );
  }
}

/** Marks `storage` freed; throws when it already was. */
export function markReleased(storage: Storage): void {
  if (storage.released) {
    throw new UseAfterFreeError(`double free of a ${storage.lifetime} buffer of ${storage.length}`);
  }
  storage.released = true;
}

/** Collectors of `collectAllocations`, innermost last. */
const collectors: Storage[][] = [];

/** Every backend calls this for each buffer it allocates. */
export function noteAllocation(s: Storage): void {
  if (collectors.length > 0) collectors[collectors.length - 1].push(s);
}

/** Runs fn and returns its result and the buffers allocated meanwhile (by any backend). */
export function collectAllocations<T>(fn: () => T): [T, Storage[]] {
  const mine: Storage[] = [];
  collectors.push(mine);
  try {
    return [fn(), mine];
  } finally {
    collectors.pop();
    if (collectors.length > 0) collectors[collectors.length - 1].push(...mine);
  }
}
