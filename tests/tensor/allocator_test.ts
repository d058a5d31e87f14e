import { ALIGN, LinearAllocator } from "../../src/tensor/linear_allocator.ts";
import { splitCall } from "../../src/tensor/split.ts";
import { opByName } from "../../ffi/ops.ts";

const memory = () => new WebAssembly.Memory({ initial: 1, maximum: 1024, shared: true });

Deno.test("allocator: aligned, disjoint, coalesces on free, grows the memory", () => {
  const mem = memory();
  const heap = new LinearAllocator(mem, 100);
  const blocks = [10, 1000, 64, 70000, 3].map((bytes) => ({ ptr: heap.alloc(bytes), bytes }));
  for (const b of blocks) if (b.ptr % ALIGN !== 0) throw new Error(`unaligned ${b.ptr}`);
  const sorted = [...blocks].sort((a, b) => a.ptr - b.ptr);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1].ptr + sorted[i - 1].bytes > sorted[i].ptr) throw new Error("overlap");
  }
  if (mem.buffer.byteLength < 70000) throw new Error("memory did not grow");
  for (const b of [blocks[1], blocks[3], blocks[0], blocks[4], blocks[2]]) heap.free(b.ptr);
  if (heap.liveBytes !== 0 || heap.freeBlocks !== 1) {
    throw new Error(`after freeing all: ${heap.liveBytes} live, ${heap.freeBlocks} free blocks`);
  }
  // First fit reuses the lowest address again.
  if (heap.alloc(8) !== sorted[0].ptr) throw new Error("freed space not reused");
});

Deno.test("allocator: live and peak bytes follow allocs and frees", () => {
  const heap = new LinearAllocator(memory(), 0);
  const a = heap.alloc(100), b = heap.alloc(1000); // 128 + 1024 bytes after alignment
  heap.free(a);
  const c = heap.alloc(64);
  if (heap.liveBytes !== 1024 + 64 || heap.peakLiveBytes !== 128 + 1024) {
    throw new Error(`live ${heap.liveBytes}, peak ${heap.peakLiveBytes}`);
  }
  if (c !== a) throw new Error("first fit did not reuse the freed block");
  heap.resetPeak();
  heap.free(b);
  heap.free(c);
  if (heap.liveBytes !== 0 || heap.peakLiveBytes !== 1024 + 64) {
    throw new Error(`after reset: live ${heap.liveBytes}, peak ${heap.peakLiveBytes}`);
  }
});

Deno.test("split: parts tile the range in units and shift pointers by layout", () => {
  const mm = opByName("matmul");
  const p = { batch: 1, m: 37, n: 8, k: 8, lda: 8, ldb: 8, ldc: 8, trans_a: 0 };
  const parts = splitCall(mm, p, 3, 1);
  const ms = parts.map((x) => x.params.m);
  if (ms.reduce((a, b) => a + b) !== 37 || ms.slice(0, -1).some((m) => m % 4)) {
    throw new Error(`matmul rows split badly: ${ms}`);
  }
  // a, c and the epilogue's y move by rows * ld, b and bias stay; row0 (the epilogue's dropout
  // index base) is the part's first row.
  const second = parts[1].offsets;
  if (
    second[0] !== ms[0] * 8 || second[1] !== 0 || second[2] !== 0 || second[3] !== ms[0] * 8 ||
    second[4] !== ms[0] * 8 || parts[1].params.row0 !== ms[0]
  ) {
    throw new Error(`matmul part offsets ${second}, row0 ${parts[1].params.row0}`);
  }
  const ln = splitCall(opByName("layernorm_forward"), { rows: 5, cols: 3, ld: 3 }, 2, 1);
  // x, gamma, beta, y, mean, rstd: matrix, per_col, per_col, matrix, per_row, per_row.
  if (ln[1].offsets.join() !== [6, 0, 0, 6, 2, 2].join()) { // rows 2..4
    throw new Error(`layernorm offsets ${ln[1].offsets}`);
  }
  if (splitCall(opByName("add"), { n: 100 }, 8, 1000).length !== 1) {
    throw new Error("a small call was split");
  }
});

Deno.test("split: axis splits move pointers by their products, splitBase gets the part's start", () => {
  const scan = opByName("selective_scan_forward");
  const p = { batch: 2, seqlen: 5, channels: 10, dstate: 16, ld_u: 10, ld_bc: 41, ld_z: 20 };
  const parts = splitCall(scan, p, 2, 1);
  // channels 10 in 3 units of 4, over 2 parts: [0, 4) and [4, 10); u, delta, D, z, delta_bias and
  // out and other move by 1 per channel, A and states by dstate, B and C stay.
  if (parts.map((x) => x.params.channels).join() !== "4,6") throw new Error("scan channel split");
  if (parts[1].offsets.join() !== [4, 4, 64, 0, 0, 4, 4, 4, 4, 64, 4].join()) {
    throw new Error(`scan offsets ${parts[1].offsets}`);
  }
  const drop = splitCall(opByName("dropout"), { n: 10, index0: 100 }, 2, 1);
  if (drop.map((x) => `${x.params.n}@${x.params.index0}`).join() !== "4@100,6@104") {
    throw new Error(`dropout parts ${drop.map((x) => JSON.stringify(x.params))}`);
  }
});
