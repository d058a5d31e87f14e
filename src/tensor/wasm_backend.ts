/**
 * The WebAssembly backend: build/kernels.wasm on one shared WebAssembly.Memory, a free-list heap
 * in that memory (parameters and step buffers alike), and a pool of Deno Workers (each with its own instance and C
 * stack) that take parts of big kernels. The calling thread runs part 0 and waits for the rest.
 */
import { OPS, type OpSpec, structBytes } from "../../ffi/ops.ts";
import {
  assertLive,
  type Backend,
  type BufferArg,
  type Lifetime,
  markReleased,
  noteAllocation,
  type Storage,
} from "./backend.ts";
import {
  compileKernels,
  createSharedMemory,
  instantiateKernels,
  type KernelFn,
} from "./kernel_module.ts";
import { LinearAllocator } from "./linear_allocator.ts";
import { splitCall } from "./split.ts";
import {
  ARGS,
  DONE,
  ERROR,
  MAX_ARGS,
  OP,
  PARAMS,
  QUIT,
  SEQ,
  SLOT,
  type WorkerInit,
} from "./worker_protocol.ts";

export interface WasmBackendOptions {
  /** Threads including the caller's (`--threads N`). Default: all cores. */
  threads?: number;
  /** Least work (elements, or multiply-adds for matmul) worth a thread of its own. Default 32768;
   * tests set 1 to force every split. */
  minWorkPerThread?: number;
  /** Bytes of C stack per worker (the kernels keep packed matmul blocks there). Default 1 MiB,
   * the size the main instance is linked with. */
  stackBytes?: number;
}

export class KernelError extends Error {}

const PARAM_BLOCK = 128; // bytes of a parameter struct (matmul's is the largest: 88)

export class WasmBackend implements Backend {
  readonly name = "wasm";
  readonly memory: WebAssembly.Memory;
  readonly heap: LinearAllocator;
  #bf16 = false;
  /** Live "step" buffers (freed together by resetStep unless freed before). */
  #step = new Set<Storage>();
  #fns: readonly KernelFn[];
  #index = new Map<string, number>(OPS.map((op, i) => [op.name, i]));
  #workers: Worker[];
  #control: Int32Array;
  /** One parameter block per thread. */
  #paramPtrs: number[];
  #minWork: number;
  #closed = false;

  private constructor(
    memory: WebAssembly.Memory,
    heap: LinearAllocator,
    fns: readonly KernelFn[],
    workers: Worker[],
    control: Int32Array,
    minWork: number,
  ) {
    this.memory = memory;
    this.heap = heap;
    this.#fns = fns;
    this.#workers = workers;
    this.#control = control;
    this.#minWork = minWork;
    this.#paramPtrs = Array.from({ length: workers.length + 1 }, () => heap.alloc(PARAM_BLOCK));
  }

  static async create(options: WasmBackendOptions = {}): Promise<WasmBackend> {
    const threads = options.threads ?? navigator.hardwareConcurrency;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`threads must be a positive integer, got ${threads}`);
    }
    const stackBytes = options.stackBytes ?? 1 << 20;
    const module = compileKernels();
    const memory = createSharedMemory();
    const main = instantiateKernels(module, memory);
    const heap = new LinearAllocator(memory, main.heapBase);
    const control = new SharedArrayBuffer(threads * SLOT * 4);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let slot = 1; slot < threads; slot++) {
      const worker = new Worker(new URL("./_kernel_worker.ts", import.meta.url), {
        type: "module",
      });
      ready.push(
        new Promise((resolve, reject) => {
          worker.onmessage = () => resolve();
          worker.onerror = (e) => {
            e.preventDefault();
            reject(new KernelError(`kernel worker ${slot} failed to start: ${e.message}`));
          };
        }),
      );
      const stackTop = heap.alloc(stackBytes) + stackBytes;
      const init: WorkerInit = { module, memory, control, slot, stackTop };
      worker.postMessage(init);
      workers.push(worker);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    return new WasmBackend(
      memory,
      heap,
      main.fns,
      workers,
      new Int32Array(control),
      options.minWorkPerThread ?? 32768,
    );
  }

  get threads(): number {
    return this.#workers.length + 1;
  }

  alloc(length: number, lifetime: Lifetime): Storage {
    const s: Storage = { ptr: this.heap.alloc(length * 4), length, lifetime };
    if (lifetime === "step") this.#step.add(s);
    noteAllocation(s);
    return s;
  }

  free(storage: Storage): void {
    markReleased(storage);
    if (storage.view) return; // its owner frees the storage it lies in
    this.#step.delete(storage);
    this.heap.free(storage.ptr);
  }

  resetStep(): void {
    for (const s of this.#step) {
      s.released = true;
      this.heap.free(s.ptr);
    }
    this.#step.clear();
  }

  /** Bytes held by live buffers now, and the most held since the last `resetPeak()`. */
  memoryStats(): { liveBytes: number; peakBytes: number } {
    return { liveBytes: this.heap.liveBytes, peakBytes: this.heap.peakLiveBytes };
  }

  resetPeak(): void {
    this.heap.resetPeak();
  }

  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  upload(storage: Storage, data: Float32Array, offset = 0): void {
    assertLive(storage, "upload");
    if (offset + data.length > storage.length) {
      throw new RangeError(`upload of ${data.length} at ${offset} overruns ${storage.length}`);
    }
    new Float32Array(this.memory.buffer, storage.ptr + 4 * offset, data.length).set(data);
  }

  download(storage: Storage, offset = 0, length = storage.length - offset): Float32Array {
    assertLive(storage, "download");
    return new Float32Array(this.memory.buffer, storage.ptr + 4 * offset, length).slice();
  }

  /** Per-op wall time in ms and call counts, when profiling (`profile()`); else null. */
  #profile: Map<string, { ms: number; calls: number }> | null = null;

  /** Starts (or restarts) per-op timing; returns the live table. */
  profile(): Map<string, { ms: number; calls: number }> {
    this.#profile = new Map();
    return this.#profile;
  }

  /** Matrix products with bf16 inputs and fp32 accumulation ("bf16") or fp32 ("fp32", default). */
  setMatmulPrecision(precision: "fp32" | "bf16"): void {
    if (precision !== "fp32" && precision !== "bf16") {
      throw new KernelError(`matmul precision must be "fp32" or "bf16", got "${precision}"`);
    }
    this.#bf16 = precision === "bf16";
  }

  get matmulPrecision(): "fp32" | "bf16" {
    return this.#bf16 ? "bf16" : "fp32";
  }

  run(name: string, params: Readonly<Record<string, number>>, args: readonly BufferArg[]): void {
    if (this.#bf16 && name === "matmul") params = { ...params, bf16_inputs: 1 };
    if (!this.#profile) return this.#run(name, params, args);
    const t0 = performance.now();
    this.#run(name, params, args);
    const e = this.#profile.get(name) ?? { ms: 0, calls: 0 };
    e.ms += performance.now() - t0;
    e.calls++;
    this.#profile.set(name, e);
  }

  #run(name: string, params: Readonly<Record<string, number>>, args: readonly BufferArg[]): void {
    if (this.#closed) throw new KernelError("the backend is closed");
    const index = this.#index.get(name);
    if (index === undefined) throw new KernelError(`ffi/ops.ts has no op named "${name}"`);
    const op = OPS[index];
    if (args.length !== op.args.length) {
      throw new KernelError(`${name} takes ${op.args.length} pointers, got ${args.length}`);
    }
    for (let i = 0; i < args.length; i++) {
      if (args[i]) assertLive(args[i]!.storage, `${name}: pointer argument ${i}`);
    }
    const parts = splitCall(op, params, this.threads, this.#minWork);
    const ptrs = parts.map((part) =>
      args.map((a, i) => a === null ? 0 : a.storage.ptr + 4 * ((a.offset ?? 0) + part.offsets[i]))
    );
    parts.forEach((part, t) => this.#writeParams(op, part.params, this.#paramPtrs[t]));
    const ctl = this.#control;
    for (let t = 1; t < parts.length; t++) {
      const base = t * SLOT;
      ctl[base + OP] = index;
      ctl[base + PARAMS] = this.#paramPtrs[t];
      for (let i = 0; i < MAX_ARGS; i++) ctl[base + ARGS + i] = ptrs[t][i] ?? 0;
      Atomics.add(ctl, base + SEQ, 1);
      Atomics.notify(ctl, base + SEQ);
    }
    this.#fns[index](this.#paramPtrs[0], ...ptrs[0]);
    let failed = false;
    for (let t = 1; t < parts.length; t++) {
      const base = t * SLOT;
      const seq = Atomics.load(ctl, base + SEQ);
      for (;;) {
        const done = Atomics.load(ctl, base + DONE);
        if (done === seq) break;
        Atomics.wait(ctl, base + DONE, done);
      }
      failed ||= ctl[base + ERROR] !== 0;
    }
    if (failed) throw new KernelError(`cm_${name} trapped in a worker thread`);
  }

  #writeParams(op: OpSpec, values: Readonly<Record<string, number>>, ptr: number): void {
    const fields = op.params.fields;
    const i32 = new Int32Array(this.memory.buffer, ptr, fields.length);
    const f32 = new Float32Array(this.memory.buffer, ptr, fields.length);
    if (structBytes(op.params) > PARAM_BLOCK) throw new KernelError(`${op.name}: struct too big`);
    fields.forEach(([field, type], i) => {
      const v = values[field] ?? 0;
      if (type === "f32") f32[i] = v;
      else i32[i] = v;
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const ctl = this.#control;
    this.#workers.forEach((w, i) => {
      const base = (i + 1) * SLOT;
      ctl[base + OP] = QUIT;
      Atomics.add(ctl, base + SEQ, 1);
      Atomics.notify(ctl, base + SEQ);
      w.terminate();
    });
  }
}
