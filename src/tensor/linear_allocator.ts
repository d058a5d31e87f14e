/**
 * A first-fit free-list allocator over a WebAssembly linear memory, kept on the TypeScript side
 * (the kernels never allocate). Blocks are aligned to ALIGN bytes; freed neighbours coalesce; the
 * memory grows when no free block fits.
 */

export const ALIGN = 64;
const PAGE = 65536;

export class OutOfMemoryError extends Error {
  constructor(bytes: number, cause: unknown) {
    super(
      `could not grow the kernel memory by ${bytes} bytes (wasm32 maximum is 4 GiB); ` +
        `lower the batch size (or free tensors)`,
      { cause },
    );
  }
}

interface Block {
  ptr: number;
  bytes: number;
}

const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;

export class LinearAllocator {
  /** Free blocks sorted by address. */
  #free: Block[] = [];
  /** ptr -> bytes of every live allocation. */
  #live = new Map<number, number>();
  #liveBytes = 0;
  #peakLiveBytes = 0;

  /** Manages [base, memory end) of `memory`; `base` is typically the module's __heap_base. */
  constructor(readonly memory: WebAssembly.Memory, base: number) {
    const start = alignUp(base, ALIGN);
    const end = memory.buffer.byteLength;
    if (end > start) this.#free.push({ ptr: start, bytes: end - start });
  }

  /** Address of a fresh block of at least `bytes` bytes (ALIGN-aligned, contents undefined). */
  alloc(bytes: number): number {
    const size = alignUp(Math.max(bytes, 1), ALIGN);
    let i = this.#free.findIndex((b) => b.bytes >= size);
    if (i < 0) i = this.#grow(size);
    const block = this.#free[i];
    const ptr = block.ptr;
    if (block.bytes === size) this.#free.splice(i, 1);
    else {
      block.ptr += size;
      block.bytes -= size;
    }
    this.#live.set(ptr, size);
    this.#liveBytes += size;
    if (this.#liveBytes > this.#peakLiveBytes) this.#peakLiveBytes = this.#liveBytes;
    return ptr;
  }

  free(ptr: number): void {
    const bytes = this.#live.get(ptr);
    if (bytes === undefined) throw new Error(`free of ${ptr}: not a live allocation`);
    this.#live.delete(ptr);
    this.#liveBytes -= bytes;
    // Insertion point by binary search (the free list stays sorted by address).
    let i = 0, hi = this.#free.length;
    while (i < hi) {
      const mid = (i + hi) >> 1;
      if (this.#free[mid].ptr < ptr) i = mid + 1;
      else hi = mid;
    }
    this.#free.splice(i, 0, { ptr, bytes });
    this.#coalesce(i);
    if (i > 0) this.#coalesce(i - 1);
  }

  /** Bytes held by live allocations. */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** The most bytes live at once since construction or the last `resetPeak()`. */
  get peakLiveBytes(): number {
    return this.#peakLiveBytes;
  }

  resetPeak(): void {
    this.#peakLiveBytes = this.#liveBytes;
  }

  /** Number of free blocks (1 after everything is freed: coalescing works). */
  get freeBlocks(): number {
    return this.#free.length;
  }

  /** Merges free block i with block i + 1 when they touch. */
  #coalesce(i: number): void {
    const a = this.#free[i], b = this.#free[i + 1];
    if (a && b && a.ptr + a.bytes === b.ptr) {
      a.bytes += b.bytes;
      this.#free.splice(i + 1, 1);
    }
  }

  /** Grows the memory so that a block of `size` bytes fits at its end; returns its index. */
  #grow(size: number): number {
    const end = this.memory.buffer.byteLength;
    const last = this.#free[this.#free.length - 1];
    const tail = last && last.ptr + last.bytes === end ? last.bytes : 0;
    const pages = Math.ceil((size - tail) / PAGE);
    try {
      this.memory.grow(pages);
    } catch (e) {
      throw new OutOfMemoryError(pages * PAGE, e);
    }
    if (tail > 0) last.bytes += pages * PAGE;
    else this.#free.push({ ptr: end, bytes: pages * PAGE });
    return this.#free.length - 1;
  }
}
