/**
 * The backend a run computes on (`--device`, CONMAMBA_DEVICE): CUDA when asked for, or by default
 * when build/libconmamba_cuda.so loads and a GPU is present; else our WebAssembly kernels with
 * `threads` workers. A run setting: never part of a cache key.
 */
import { UserError } from "../pipeline/errors.ts";
import { CudaBackend } from "./cuda_backend.ts";
import { WasmBackend } from "./wasm_backend.ts";

export type Device = "wasm" | "cuda";

function requested(): "auto" | Device {
  const want = Deno.env.get("CONMAMBA_DEVICE") ?? "auto";
  if (want !== "auto" && want !== "wasm" && want !== "cuda") {
    throw new UserError(`--device: expected wasm or cuda, got "${want}"`);
  }
  return want;
}

/** The device this run will use; `--device cuda` without a usable GPU is an error saying why. */
export function selectDevice(): Device {
  const want = requested();
  if (want === "wasm") return "wasm";
  const why = CudaBackend.unavailableReason();
  if (why === null) return "cuda";
  if (want === "cuda") throw new UserError(`--device cuda: ${why}; use --device wasm`);
  return "wasm";
}

/** A backend on the selected device (Wasm: `threads` compute threads). */
export async function createBackend(threads: number): Promise<WasmBackend | CudaBackend> {
  return selectDevice() === "cuda" ? CudaBackend.open() : await WasmBackend.create({ threads });
}
