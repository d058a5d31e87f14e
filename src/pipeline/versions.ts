/** Versions recorded in every manifest: the runtime and the kernel binaries that computed it. */
import { fileURLToPath as fromFileUrl } from "node:url";
import { exists } from "./fs_util.ts";
import { sha256File } from "./hash.ts";

export interface Versions {
  deno: string;
  v8: string;
  typescript: string;
  /** sha256 of build/kernels.wasm, or null when not built. */
  kernels_wasm: string | null;
  /** sha256 of build/libconmamba_cuda.so, or null when not built. */
  kernels_cuda: string | null;
}

let cached: Promise<Versions> | null = null;

export function runtimeVersions(): Promise<Versions> {
  cached ??= (async () => {
    const build = fromFileUrl(new URL("../../build/", import.meta.url));
    const hashOf = async (name: string) =>
      (await exists(build + name)) ? await sha256File(build + name) : null;
    return {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      kernels_wasm: await hashOf("kernels.wasm"),
      kernels_cuda: await hashOf("libconmamba_cuda.so"),
    };
  })();
  return cached;
}
