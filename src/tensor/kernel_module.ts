/**
 * Loading build/kernels.wasm and binding its exports from the op table (ffi/ops.ts).
 */
import { OPS, symbolOf } from "../../ffi/ops.ts";

export const KERNELS_WASM = new URL("../../build/kernels.wasm", import.meta.url);

/** Pages (64 KiB) of the shared memory at start and at most (wasm32: 4 GiB). */
export const INITIAL_PAGES = 64;
export const MAXIMUM_PAGES = 65536;

export class KernelModuleError extends Error {}

// deno-lint-ignore no-explicit-any
export type KernelFn = (...args: number[]) => any;

/** Compiles the kernel module; a missing file says how to build it. */
export function compileKernels(url: URL = KERNELS_WASM): WebAssembly.Module {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Deno.readFileSync(url);
  } catch (e) {
    throw new KernelModuleError(`${url.pathname} is missing: build it with \`make wasm\``, {
      cause: e,
    });
  }
  return new WebAssembly.Module(bytes);
}

export function createSharedMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES, shared: true });
}

export interface KernelInstance {
  /** Kernels in OPS order. */
  readonly fns: readonly KernelFn[];
  /** First byte after the module's static data and the main stack (where the heap starts). */
  readonly heapBase: number;
  /** Points this instance's C stack at the region ending at `top` (stacks grow down). */
  setStackTop(top: number): void;
}

/** Instantiates the module on `memory` and binds every op of the table; throws if one lacks. */
export function instantiateKernels(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
): KernelInstance {
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const fns = OPS.map((op) => {
    const fn = exports[symbolOf(op)];
    if (typeof fn !== "function") {
      throw new KernelModuleError(
        `build/kernels.wasm does not export ${symbolOf(op)} (listed in ffi/ops.ts); rebuild it`,
      );
    }
    return fn as KernelFn;
  });
  const sp = exports.__stack_pointer as WebAssembly.Global;
  const heapBase = (exports.__heap_base as WebAssembly.Global).value as number;
  return {
    fns,
    heapBase,
    setStackTop(top: number) {
      sp.value = top;
    },
  };
}
