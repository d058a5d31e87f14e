/**
 * The CUDA backend: build/libconmamba_cuda.so (`make cuda`) through Deno.dlopen. The library
 * exports the op table of ffi/ops.ts (`cm_<op>(const cm_<struct>* p, float* ...)` on device
 * pointers, the same C signatures as the Wasm kernels) and a small runtime (`cm_cuda_*`: device,
 * one stream, a caching allocator, copies). Every op is queued on the stream without a host
 * synchronisation; `download` and `cm_cuda_last_error` synchronise and surface kernel faults.
 * Storages hold device addresses as numbers (below 2^53 on every driver). Parameter buffers are
 * freed one by one; "step" buffers all go back to the allocator's cache at `resetStep()`.
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

export const CUDA_LIBRARY = new URL("../../build/libconmamba_cuda.so", import.meta.url);

export class CudaUnavailableError extends Error {}
export class CudaError extends Error {}

const RUNTIME = {
  cm_cuda_device_count: { parameters: [], result: "i32" },
  cm_cuda_init: { parameters: ["i32"], result: "i32" },
  cm_cuda_device_name: { parameters: ["buffer", "i32"], result: "i32" },
  cm_cuda_last_error: { parameters: ["buffer", "i32"], result: "i32" },
  cm_cuda_malloc: { parameters: ["u64"], result: "u64" },
  cm_cuda_free: { parameters: ["u64"], result: "void" },
  cm_cuda_memory_stats: { parameters: ["buffer"], result: "void" },
  cm_cuda_reset_peak: { parameters: [], result: "void" },
  cm_cuda_upload: { parameters: ["u64", "buffer", "u64"], result: "i32" },
  cm_cuda_download: { parameters: ["buffer", "u64", "u64"], result: "i32" },
  cm_cuda_copy: { parameters: ["u64", "u64", "u64"], result: "i32" },
  cm_cuda_synchronize: { parameters: [], result: "i32" },
  cm_cuda_set_matmul_precision: { parameters: ["i32"], result: "void" },
  cm_cuda_get_matmul_precision: { parameters: [], result: "i32" },
  cm_cuda_cublas_available: { parameters: [], result: "i32" },
} as const;

/** The matmul's input precision: fp32 (the SIMT kernel, the default) or bf16 (tensor cores). */
export type MatmulPrecision = "fp32" | "bf16";

/**
 * The library's matmul modes (cuda/matmul.cuh): 0 our fp32 SIMT kernel, 1 our bf16 tensor-core
 * kernel (sm_80+), 2 cuBLAS fp32, 3 cuBLAS bf16 (cuBLAS loaded at run time when present).
 */
const MATMUL_MODES: readonly { precision: MatmulPrecision; library: "ours" | "cublas" }[] = [
  { precision: "fp32", library: "ours" },
  { precision: "bf16", library: "ours" },
  { precision: "fp32", library: "cublas" },
  { precision: "bf16", library: "cublas" },
];

/** The runtime's exported names (the export test checks the library has exactly these + ops). */
export const CUDA_RUNTIME_SYMBOLS: readonly string[] = Object.keys(RUNTIME);

type Lib = Deno.DynamicLibrary<Record<string, Deno.ForeignFunction>>;

function opSymbols(): Record<string, Deno.ForeignFunction> {
  const out: Record<string, Deno.ForeignFunction> = {};
  for (const op of OPS) {
    out[`cm_${op.name}`] = {
      parameters: ["buffer", ...op.args.map(() => "u64" as const)],
      result: "void",
    };
  }
  return out;
}

const text = (buf: Uint8Array) => new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));

/** An op ready to call: its symbol, parameter block and pointer slots (see CudaBackend.run). */
interface BoundOp {
  fn: (...a: unknown[]) => void;
  block: Uint8Array;
  view: DataView;
  fields: string[];
  floats: boolean[];
  ptrs: number[];
}

export interface CudaBackendOptions {
  device?: number;
  library?: URL | string;
}

export class CudaBackend implements Backend {
  readonly name = "cuda";
  readonly threads = 1;
  readonly deviceName: string;
  #lib: Lib;
  #index = new Map<string, OpSpec>(OPS.map((op) => [op.name, op]));
  #calls = new Map<string, BoundOp>();
  /** Live "step" buffers (back to the cache together at resetStep unless freed before). */
  #step = new Set<Storage>();
  #closed = false;
  #precision: MatmulPrecision = "fp32";

  private constructor(lib: Lib, deviceName: string) {
    this.#lib = lib;
    this.deviceName = deviceName;
  }

  /**
   * Loads the library and selects a device; throws CudaUnavailableError saying why when the
   * library is not built, cannot load (no driver), or no GPU is present.
   */
  static open(o: CudaBackendOptions = {}): CudaBackend {
    const path = o.library ?? CUDA_LIBRARY;
    let lib: Lib;
    try {
      lib = Deno.dlopen(path, { ...RUNTIME, ...opSymbols() }) as unknown as Lib;
    } catch (e) {
      throw new CudaUnavailableError(
        `cannot load ${path instanceof URL ? path.pathname : path} (${(e as Error).message}); ` +
          "build it with `make cuda` on a machine with the CUDA driver",
      );
    }
    const s = lib.symbols;
    const count = s.cm_cuda_device_count() as number;
    if (count < 1) {
      lib.close();
      throw new CudaUnavailableError("the CUDA driver reports no GPU");
    }
    const device = o.device ?? 0;
    if ((s.cm_cuda_init(device) as number) !== 0) {
      const msg = new Uint8Array(512);
      s.cm_cuda_last_error(msg, msg.length);
      lib.close();
      throw new CudaUnavailableError(`cannot initialise GPU ${device}: ${text(msg)}`);
    }
    const name = new Uint8Array(256);
    s.cm_cuda_device_name(name, name.length);
    return new CudaBackend(lib, text(name));
  }

  /** Why CUDA cannot be used here, or null when it can (loads and releases the library). */
  static unavailableReason(o: CudaBackendOptions = {}): string | null {
    try {
      CudaBackend.open(o).close();
      return null;
    } catch (e) {
      if (e instanceof CudaUnavailableError) return e.message;
      throw e;
    }
  }

  alloc(length: number, lifetime: Lifetime): Storage {
    this.#live();
    const ptr = Number(this.#lib.symbols.cm_cuda_malloc(BigInt(Math.max(1, length) * 4)));
    if (ptr === 0) {
      throw new CudaError(
        `out of GPU memory allocating ${(length * 4 / 2 ** 20).toFixed(1)} MiB (${
          this.memoryStats().liveBytes / 2 ** 30
        } GiB live)`,
      );
    }
    const s: Storage = { ptr, length, lifetime };
    if (lifetime === "step") this.#step.add(s);
    noteAllocation(s);
    return s;
  }

  // Freeing is stream-ordered without a synchronisation: every op runs on the one stream, so a
  // kernel queued later on a reused block runs after the kernels queued on it before.
  free(storage: Storage): void {
    markReleased(storage);
    if (storage.view) return; // its owner frees the storage it lies in
    this.#step.delete(storage);
    this.#lib.symbols.cm_cuda_free(BigInt(storage.ptr));
  }

  resetStep(): void {
    for (const s of this.#step) {
      s.released = true;
      this.#lib.symbols.cm_cuda_free(BigInt(s.ptr));
    }
    this.#step.clear();
  }

  upload(storage: Storage, data: Float32Array, offset = 0): void {
    assertLive(storage, "upload");
    if (offset + data.length > storage.length) {
      throw new RangeError(`upload of ${data.length} at ${offset} overruns ${storage.length}`);
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.#check(
      this.#lib.symbols.cm_cuda_upload(
        BigInt(storage.ptr + 4 * offset),
        bytes,
        BigInt(bytes.length),
      ),
      "upload",
    );
  }

  download(storage: Storage, offset = 0, length = storage.length - offset): Float32Array {
    assertLive(storage, "download");
    const out = new Float32Array(length);
    const bytes = new Uint8Array(out.buffer);
    this.#check(
      this.#lib.symbols.cm_cuda_download(
        bytes,
        BigInt(storage.ptr + 4 * offset),
        BigInt(bytes.length),
      ),
      "download",
    );
    return out;
  }

  run(name: string, params: Readonly<Record<string, number>>, args: readonly BufferArg[]): void {
    this.#live();
    const call = this.#calls.get(name) ?? this.#bind(name);
    if (args.length !== call.ptrs.length) {
      throw new CudaError(`${name} takes ${call.ptrs.length} pointers, got ${args.length}`);
    }
    // The struct goes by pointer and every launcher copies what it needs before returning (the
    // kernels take their parameters by value), so one block per op is reused call after call.
    const { fields, floats, view, ptrs } = call;
    for (let i = 0; i < fields.length; i++) {
      const v = params[fields[i]] ?? 0;
      if (floats[i]) view.setFloat32(4 * i, v, true);
      else view.setInt32(4 * i, v, true);
    }
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === null) {
        ptrs[i] = 0;
        continue;
      }
      assertLive(a.storage, `${name}: pointer argument ${i}`);
      ptrs[i] = a.storage.ptr + 4 * (a.offset ?? 0); // an address below 2^53: a number is exact
    }
    call.fn(call.block, ...ptrs);
  }

  /** The op's symbol and a reusable parameter block, made at its first call. */
  #bind(name: string): BoundOp {
    const op = this.#index.get(name);
    if (!op) throw new CudaError(`ffi/ops.ts has no op named "${name}"`);
    const block = new Uint8Array(structBytes(op.params));
    const call: BoundOp = {
      fn: this.#lib.symbols[`cm_${name}`] as (...a: unknown[]) => void,
      block,
      view: new DataView(block.buffer),
      fields: op.params.fields.map(([field]) => field),
      floats: op.params.fields.map(([, type]) => type === "f32"),
      ptrs: new Array<number>(op.args.length).fill(0),
    };
    this.#calls.set(name, call);
    return call;
  }

  /**
   * Selects how every later matmul runs: "fp32" (default; the fp32 SIMT kernel, what the parity
   * suite's fp32 bounds are for) or "bf16" (inputs rounded to bf16, fp32 accumulation, on tensor
   * cores). With `cublas: true` the product goes through cuBLAS when the library found one at
   * run time (see `cublasVersion`), else through our kernel of that precision. `matmulMode`
   * says what is used now.
   */
  setMatmulPrecision(precision: MatmulPrecision, o: { cublas?: boolean } = {}): void {
    this.#live();
    if (precision !== "fp32" && precision !== "bf16") {
      throw new CudaError(`matmul precision must be "fp32" or "bf16", got "${precision}"`);
    }
    const mode = (precision === "bf16" ? 1 : 0) + (o.cublas ? 2 : 0);
    this.#lib.symbols.cm_cuda_set_matmul_precision(mode);
    this.#check(0, "setMatmulPrecision");
    this.#precision = this.matmulMode().precision;
  }

  /** The precision setMatmulPrecision selected (what `matmulMode()` reports, kept host-side). */
  get matmulPrecision(): MatmulPrecision {
    return this.#precision;
  }

  /** The matmul path in use (after falling back from what this machine lacks). */
  matmulMode(): { precision: MatmulPrecision; library: "ours" | "cublas" } {
    this.#live();
    const mode = this.#lib.symbols.cm_cuda_get_matmul_precision() as number;
    return MATMUL_MODES[mode] ?? MATMUL_MODES[0];
  }

  /** cuBLAS's version (e.g. 120903) when the library could load it at run time, else 0. */
  cublasVersion(): number {
    this.#live();
    return this.#lib.symbols.cm_cuda_cublas_available() as number;
  }

  /** Waits for every queued op; throws the first kernel or launch error since the last check. */
  synchronize(): void {
    this.#check(0, "synchronize");
  }

  memoryStats(): { liveBytes: number; cachedBytes: number; peakBytes: number } {
    const out = new BigUint64Array(3);
    this.#lib.symbols.cm_cuda_memory_stats(new Uint8Array(out.buffer));
    return { liveBytes: Number(out[0]), cachedBytes: Number(out[1]), peakBytes: Number(out[2]) };
  }

  memoryBytes(): number {
    return this.memoryStats().liveBytes;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lib.close();
  }

  #live(): void {
    if (this.#closed) throw new CudaError("the CUDA backend is closed");
  }

  #check(code: unknown, what: string): void {
    const msg = new Uint8Array(512);
    const had = this.#lib.symbols.cm_cuda_last_error(msg, msg.length) as number;
    if (had !== 0 || code !== 0) {
      throw new CudaError(`CUDA ${what}: ${text(msg) || `error code ${code}`}`);
    }
  }
}
