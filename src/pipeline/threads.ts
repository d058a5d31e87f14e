import { UserError } from "./errors.ts";

/**
 * How many threads compute may use: `--threads N` on the command line (which sets
 * CONMAMBA_THREADS for the run), else every core. Results never depend on it (every kernel
 * split is bitwise neutral), so it is not part of any key.
 */
export function defaultThreads(): number {
  const env = Number(Deno.env.get("CONMAMBA_THREADS"));
  return Number.isInteger(env) && env > 0 ? env : navigator.hardwareConcurrency;
}

/** Compute devices: our WebAssembly kernels, or the CUDA library through FFI. */
export type Device = "wasm" | "cuda";

/**
 * The device of this run: `--device` (which sets CONMAMBA_DEVICE), else CUDA when its library and
 * a GPU are present, else Wasm. A run setting like --threads: never part of a key. This build has
 * no CUDA backend wired into the stages yet, so `cuda` is refused with the reason.
 */
export function selectDevice(): Device {
  const want = Deno.env.get("CONMAMBA_DEVICE") ?? "auto";
  if (want !== "auto" && want !== "wasm" && want !== "cuda") {
    throw new UserError(`--device: expected wasm or cuda, got "${want}"`);
  }
  if (want === "cuda") {
    throw new UserError(
      "--device cuda: this build's stages run on the WebAssembly backend only (the CUDA " +
        "library build/libconmamba_cuda.so is not part of it yet); use --device wasm",
    );
  }
  return "wasm";
}
