/**
 * The step arena: activations of one training step are bump-allocated from a few large chunks and
 * all released by one `reset()` after the optimiser step (no per-tensor frees, no finalisers).
 * Chunks stay allocated across resets, so after the first step the arena stops allocating.
 */
import { ALIGN, type LinearAllocator } from "./linear_allocator.ts";

export class StepArena {
  #chunks: { ptr: number; bytes: number }[] = [];
  /** Index of the chunk being filled and the offset in it. */
  #chunk = 0;
  #offset = 0;

  constructor(readonly heap: LinearAllocator, readonly chunkBytes = 64 << 20) {}

  alloc(bytes: number): number {
    const size = Math.ceil(Math.max(bytes, 1) / ALIGN) * ALIGN;
    while (this.#chunk < this.#chunks.length) {
      const c = this.#chunks[this.#chunk];
      if (this.#offset + size <= c.bytes) {
        const ptr = c.ptr + this.#offset;
        this.#offset += size;
        return ptr;
      }
      this.#chunk++;
      this.#offset = 0;
    }
    const bytesNew = Math.max(size, this.chunkBytes);
    this.#chunks.push({ ptr: this.heap.alloc(bytesNew), bytes: bytesNew });
    this.#offset = size;
    return this.#chunks[this.#chunk].ptr;
  }

  /** Frees every allocation made since the last reset, in one call. */
  reset(): void {
    this.#chunk = 0;
    this.#offset = 0;
  }

  /** Returns the chunks to the heap. */
  release(): void {
    for (const c of this.#chunks) this.heap.free(c.ptr);
    this.#chunks = [];
    this.reset();
  }

  /** Bytes reserved from the heap. */
  get reservedBytes(): number {
    return this.#chunks.reduce((s, c) => s + c.bytes, 0);
  }
}
